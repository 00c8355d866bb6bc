"""Shape, layout and indexing ATen ops (views are copies in graphc: values, not storage)."""
from __future__ import annotations

import sys

from ... import dtypes
from ...tensor import resolve_reshape
from ..indexing import advanced_index, gather_elements
from ..torch import AtenContext, aten


def _axis(dim: int, rank: int) -> int:
    """A dim counted from 0 (torch has checked its range; a 0-d tensor's only dim is 0)."""
    return dim % rank if rank else 0


@aten("clone.default", "alias.default")
def _identity(ctx: AtenContext, x, *_):
    return x


@aten("view.default")
def _view(ctx: AtenContext, x, size):
    shape = resolve_reshape(x.shape, [int(d) for d in size])
    return x if shape == x.shape else ctx.op("reshape", x, shape=shape)


@aten("permute.default")
def _permute(ctx: AtenContext, x, dims):
    perm = tuple(_axis(d, x.ndim) for d in dims)
    return x if perm == tuple(range(x.ndim)) else ctx.op("transpose", x, perm=perm)


@aten("expand.default")
def _expand(ctx: AtenContext, x, size, implicit=False):
    lead = len(size) - x.ndim
    shape = tuple(x.shape[i - lead] if d == -1 else int(d) for i, d in enumerate(size))
    return x if shape == x.shape else ctx.op("broadcast_to", x, shape=shape)


@aten("unsqueeze.default")
def _unsqueeze(ctx: AtenContext, x, dim):
    return ctx.op("unsqueeze", x, axes=(_axis(dim, x.ndim + 1),))


@aten("squeeze.dims")
def _squeeze(ctx: AtenContext, x, dims):
    """Squeezing an axis whose size is not 1 leaves it (torch semantics)."""
    if x.ndim == 0:
        return x
    axes = tuple(a for a in sorted({_axis(d, x.ndim) for d in dims}) if x.shape[a] == 1)
    return ctx.op("squeeze", x, axes=axes) if axes else x


@aten("slice.Tensor")
def _slice(ctx: AtenContext, x, dim=0, start=None, end=None, step=1):
    a = _axis(dim, x.ndim)
    size = x.shape[a]

    def clamp(v, default):
        v = default if v is None else int(v)
        return min(max(v + size if v < 0 else v, 0), size)

    s, e = clamp(start, 0), clamp(end, size)
    if (s, e, step) == (0, size, 1):
        return x
    return ctx.op("slice", x, starts=(s,), ends=(max(e, s),), axes=(a,), steps=(int(step),))


@aten("select.int")
def _select(ctx: AtenContext, x, dim, index):
    a = _axis(dim, x.ndim)
    i = index % x.shape[a]
    return ctx.op("squeeze", ctx.op("slice", x, starts=(i,), ends=(i + 1,), axes=(a,)), axes=(a,))


@aten("cat.default")
def _cat(ctx: AtenContext, tensors, dim=0):
    out_type = ctx.out_type()
    axis = _axis(dim, out_type.rank)
    # torch skips legacy empty 1-d tensors and zero-size pieces
    pieces = [ctx.cast(t, out_type.dtype) for t in tensors if t.type.numel > 0]
    if len(pieces) == 1:
        return pieces[0]
    return ctx.op("concat", *pieces, axis=axis)


@aten("split_with_sizes.default")
def _split(ctx: AtenContext, x, split_sizes, dim=0):
    if len(split_sizes) == 1:
        return (x,)
    return ctx.op("split", x, axis=_axis(dim, x.ndim), sections=tuple(int(s) for s in split_sizes))


@aten("constant_pad_nd.default")
def _constant_pad_nd(ctx: AtenContext, x, pad, value=0):
    """torch pads the last axes first: [begin_last, end_last, begin_second_last, ...]; negative pads crop."""
    begins, ends = [0] * x.ndim, [0] * x.ndim
    for k in range(len(pad) // 2):
        begins[x.ndim - 1 - k], ends[x.ndim - 1 - k] = int(pad[2 * k]), int(pad[2 * k + 1])
    if not any(begins + ends):
        return x
    value = bool(value) if x.dtype == "bool" else float(value) if dtypes.is_float(x.dtype) else int(value)
    return ctx.op("pad", x, pads=tuple(begins + ends), mode="constant", value=value)


@aten("repeat.default")
def _repeat(ctx: AtenContext, x, repeats):
    lead = len(repeats) - x.ndim  # new leading axes
    if lead:
        x = ctx.op("reshape", x, shape=(1,) * lead + x.shape)
    return x if all(r == 1 for r in repeats) else ctx.op("tile", x, repeats=tuple(int(r) for r in repeats))


@aten("flip.default")
def _flip(ctx: AtenContext, x, dims):
    axes = tuple(sorted({_axis(d, x.ndim) for d in dims}))
    if not axes:
        return x
    before_start = -sys.maxsize  # an end before index 0, walking backwards
    return ctx.op("slice", x, starts=(-1,) * len(axes), ends=(before_start,) * len(axes), axes=axes, steps=(-1,) * len(axes))


# ---------------------------------------------------------------------------------------
# gathers
# ---------------------------------------------------------------------------------------


@aten("embedding.default")
def _embedding(ctx: AtenContext, weight, indices, padding_idx=-1, *_):
    out = ctx.op("gather", weight, indices, axis=0)
    if padding_idx < 0:
        return out
    # nn.Embedding's padding row gets no gradient; the value is the same (canonicalize drops this again)
    is_pad = ctx.op("unsqueeze", ctx.op("equal", indices, ctx.constant(padding_idx, indices.dtype)), axes=(indices.ndim,))
    return ctx.op("where", is_pad, ctx.op("stop_gradient", out), out)


@aten("index_select.default")
def _index_select(ctx: AtenContext, x, dim, index):
    if index.ndim == 0:
        index = ctx.op("reshape", index, shape=(1,))
    return ctx.op("gather", x, index, axis=_axis(dim, x.ndim))


@aten("gather.default")
def _gather(ctx: AtenContext, x, dim, index, sparse_grad=False):
    return gather_elements(ctx, x, index, _axis(dim, x.ndim))


@aten("index.Tensor")
def _index(ctx: AtenContext, x, indices):
    for i, t in enumerate(indices):
        if t is not None and t.dtype in ("bool", "u8"):
            raise ctx.error(f"index {i} is a mask: the result's shape depends on the data, which graphc cannot compile")
    return advanced_index(ctx, x, list(indices) + [None] * (x.ndim - len(indices)))

