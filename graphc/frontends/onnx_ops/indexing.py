"""Indexing and selection ONNX ops: scatters, ArgMax/ArgMin, TopK, CumSum/CumProd, ReduceProd,
Trilu, OneHot, EyeLike, ReverseSequence, and the ops whose output shape depends on input
values (NonZero, Compress, Unique), which import only when those values are known at
import time (constants, or values a `SpecializingModel` binds)."""
from __future__ import annotations

import numpy as np

from ... import dtypes
from ...tensor import Tensor
from ..onnx import NodeContext, converter, graphc_dtype
from ._common import norm_axis
from .reduce import _reduction

_SCATTER_REDUCTIONS = ("none", "add", "mul", "max", "min")


def _indices(ctx: NodeContext, i: int) -> Tensor:
    t = ctx.input(i)
    if t.dtype not in ("i64", "i32"):
        raise ctx.error(f"input {i} (indices) must be int32 or int64, got {t.dtype}")
    return t


def _reduction_attr(ctx: NodeContext) -> str:
    reduction = ctx.attr("reduction", "none") or "none"
    if reduction not in _SCATTER_REDUCTIONS:
        raise ctx.error(f"reduction must be one of {', '.join(_SCATTER_REDUCTIONS)}, got {reduction!r}")
    return reduction


def _as_i64(ctx: NodeContext, t: Tensor) -> Tensor:
    return t if t.dtype == "i64" else ctx.op("cast", t, dtype="i64")


# ---------------------------------------------------------------------------------------
# scatters
# ---------------------------------------------------------------------------------------
@converter("ScatterElements", "Scatter")
def _scatter_elements(ctx: NodeContext):
    x, idx, updates = ctx.input(0), _indices(ctx, 1), ctx.input(2)
    axis = norm_axis(ctx, int(ctx.attr("axis", 0)), x.ndim)
    return ctx.op("scatter_elements", x, idx, updates, axis=axis, reduction=_reduction_attr(ctx))


@converter("ScatterND")
def _scatter_nd(ctx: NodeContext):
    return ctx.op("scatter_nd", ctx.input(0), _indices(ctx, 1), ctx.input(2), reduction=_reduction_attr(ctx))


@converter("TensorScatter")
def _tensor_scatter(ctx: NodeContext):
    """A KV-cache write: update[b, .., s, ..] goes to cache[b, .., write_indices[b] + s, ..] (mod the
    cache length when circular): a scatter_elements along the sequence axis."""
    cache, update = ctx.input(0), ctx.input(1)
    if cache.ndim < 2:
        raise ctx.error(f"past_cache must have a batch and a sequence axis, got shape {list(cache.shape)}")
    axis = norm_axis(ctx, int(ctx.attr("axis")), cache.ndim)
    if axis == 0:
        raise ctx.error("axis must not be the batch axis 0")
    mode = ctx.attr("mode", "linear")
    if mode not in ("linear", "circular"):
        raise ctx.error(f"mode must be 'linear' or 'circular', got {mode!r}")
    batch, length, seq = cache.shape[0], cache.shape[axis], update.shape[axis]
    steps = np.arange(seq, dtype=np.int64).reshape((seq,) + (1,) * (cache.ndim - axis - 1))
    positions = ctx.constant(steps)
    if ctx.has_input(2):  # one write offset per batch entry, broadcast over the other axes
        offsets = _as_i64(ctx, ctx.input(2))
        offsets = ctx.op("reshape", offsets, shape=(batch,) + (1,) * (cache.ndim - 1))
        positions = ctx.op("add", offsets, positions)
    if mode == "circular":
        positions = ctx.op("mod", positions, ctx.constant(np.array(length, np.int64)))
    index = ctx.op("broadcast_to", positions, shape=tuple(update.shape)) if positions.shape != update.shape else positions
    return ctx.op("scatter_elements", cache, index, update, axis=axis, reduction="none")


# ---------------------------------------------------------------------------------------
# ArgMax / ArgMin, TopK
# ---------------------------------------------------------------------------------------
def _arg(graphc_op: str):
    def convert(ctx: NodeContext):
        x = ctx.input(0)
        axis = norm_axis(ctx, int(ctx.attr("axis")), x.ndim)
        last = ctx.opset >= 12 and bool(ctx.attr("select_last_index", 0))
        return ctx.op(graphc_op, x, axis=axis, keepdims=bool(ctx.attr("keepdims")), select_last_index=last)

    return convert


converter("ArgMax")(_arg("argmax"))
converter("ArgMin")(_arg("argmin"))


@converter("TopK")
def _topk(ctx: NodeContext):
    x = ctx.input(0)
    axis = norm_axis(ctx, int(ctx.attr("axis")), x.ndim)
    ks = [int(ctx.attr("k"))] if ctx.opset < 10 else ctx.ints(1, "K")
    if len(ks) != 1 or not 1 <= ks[0] <= x.shape[axis]:
        raise ctx.error(f"K {ks} must be one value in [1, {x.shape[axis]}] (the size of axis {axis})")
    largest = ctx.opset < 11 or bool(ctx.attr("largest"))
    # sorted=0 leaves the order open: graphc always returns the sorted order
    return ctx.op("topk", x, k=ks[0], axis=axis, largest=largest)


# ---------------------------------------------------------------------------------------
# CumSum / CumProd, ReduceProd
# ---------------------------------------------------------------------------------------
def _cumulative(graphc_op: str):
    def convert(ctx: NodeContext):
        x = ctx.input(0)
        (axis,) = ctx.ints(1, "axis")
        axis = norm_axis(ctx, axis, x.ndim)
        return ctx.op(graphc_op, x, axis=axis, exclusive=bool(ctx.attr("exclusive")), reverse=bool(ctx.attr("reverse")))

    return convert


converter("CumSum")(_cumulative("cumsum"))
converter("CumProd")(_cumulative("cumprod"))
converter("ReduceProd")(_reduction(lambda ctx, x, axes, keepdims: ctx.op("prod", x, axes=axes, keepdims=keepdims)))


# ---------------------------------------------------------------------------------------
# masks and one-hot encodings built from constants
# ---------------------------------------------------------------------------------------
@converter("Trilu")
def _trilu(ctx: NodeContext):
    x = ctx.input(0)
    if x.ndim < 2:
        raise ctx.error(f"needs a tensor of rank >= 2, got shape {list(x.shape)}")
    k = ctx.ints(1, "k")[0] if ctx.has_input(1) else 0
    if x.type.numel == 0:
        return x  # nothing to mask
    rows, cols = x.shape[-2:]
    keep = (np.triu if ctx.attr("upper") else np.tril)(np.ones((rows, cols), bool), k)
    return ctx.op("where", ctx.constant(keep), x, ctx.scalar(0, x))


@converter("EyeLike")
def _eye_like(ctx: NodeContext):
    x = ctx.input(0)
    if x.ndim != 2:
        raise ctx.error(f"needs a 2-D input, got shape {list(x.shape)}")
    code = ctx.attr("dtype", None)
    dtype = x.dtype if code is None else graphc_dtype(int(code), f"{ctx.importer.where}: {ctx.describe()}: attribute 'dtype'")
    return ctx.constant(np.eye(*x.shape, k=int(ctx.attr("k", 0)), dtype=dtypes.to_numpy(dtype)))


@converter("OneHot")
def _one_hot(ctx: NodeContext):
    """values[1] where the (wrapped) index equals the position along the new axis, values[0] elsewhere."""
    indices, values = ctx.input(0), ctx.input(2)
    depth = np.asarray(ctx.const(1, "depth")).reshape(-1)
    if depth.size != 1 or not depth[0] >= 1:
        raise ctx.error(f"depth must be one value >= 1, got {depth.tolist()}")
    depth = int(depth[0])
    if values.shape != (2,):
        raise ctx.error(f"values must have shape [2] (off, on), got {list(values.shape)}")
    rank = indices.ndim + 1
    axis = norm_axis(ctx, int(ctx.attr("axis")), rank)
    idx = _as_i64(ctx, indices)  # (float indices truncate, as the spec says)
    idx = ctx.op("where", ctx.op("less", idx, ctx.scalar(0, idx)), ctx.op("add", idx, ctx.scalar(depth, idx)), idx)
    positions = np.arange(depth, dtype=np.int64).reshape((depth,) + (1,) * (rank - axis - 1))
    hot = ctx.op("equal", ctx.op("unsqueeze", idx, axes=(axis,)), ctx.constant(positions))
    off, on = (ctx.op("reshape", ctx.op("slice", values, starts=(i,), ends=(i + 1,)), shape=()) for i in (0, 1))
    return ctx.op("where", hot, on, off)


@converter("ReverseSequence")
def _reverse_sequence(ctx: NodeContext):
    """Reverse the first lens[b] steps of each batch entry: a gather_elements along the time
    axis with position t < lens[b] ? lens[b] - 1 - t : t."""
    x, lens = ctx.input(0), _as_i64(ctx, _indices(ctx, 1))
    if x.ndim < 2:
        raise ctx.error(f"needs a tensor of rank >= 2, got shape {list(x.shape)}")
    batch_axis = norm_axis(ctx, int(ctx.attr("batch_axis")), x.ndim, "batch_axis")
    time_axis = norm_axis(ctx, int(ctx.attr("time_axis")), x.ndim, "time_axis")
    if batch_axis == time_axis or {batch_axis, time_axis} - {0, 1}:
        raise ctx.error(f"batch_axis {batch_axis} and time_axis {time_axis} must be 0 and 1 in some order")
    steps = x.shape[time_axis]
    grid = [1] * x.ndim
    grid[time_axis] = steps
    t = ctx.constant(np.arange(steps, dtype=np.int64).reshape(grid))
    grid = [1] * x.ndim
    grid[batch_axis] = x.shape[batch_axis]
    n = ctx.op("reshape", lens, shape=tuple(grid))
    reversed_t = ctx.op("sub", ctx.op("sub", n, ctx.scalar(1, n)), t)
    index = ctx.op("where", ctx.op("less", t, n), reversed_t, t)
    return ctx.op("gather_elements", x, ctx.op("broadcast_to", index, shape=tuple(x.shape)), axis=time_axis)


# ---------------------------------------------------------------------------------------
# output shapes that depend on input values: folded at import time
# ---------------------------------------------------------------------------------------
_VALUE_SHAPED = "the output shape depends on its values"


@converter("NonZero")
def _nonzero(ctx: NodeContext):
    x = np.asarray(ctx.const(0, f"input; {_VALUE_SHAPED}"))
    return ctx.constant(np.array(np.nonzero(x), dtype=np.int64).reshape(x.ndim, -1))


@converter("Compress")
def _compress(ctx: NodeContext):
    """A gather of the positions where the condition holds (the condition must be known)."""
    x = ctx.input(0)
    cond = np.asarray(ctx.const(1, f"condition; {_VALUE_SHAPED}")).reshape(-1).astype(bool)
    axis = ctx.attr("axis", None)
    if axis is None:
        x = ctx.op("reshape", x, shape=(x.type.numel,)) if x.ndim != 1 else x
        axis = 0
    axis = norm_axis(ctx, int(axis), x.ndim)
    if cond.size > x.shape[axis]:
        raise ctx.error(f"condition has {cond.size} entries, more than the {x.shape[axis]} of axis {axis}")
    return ctx.op("gather", x, ctx.constant(np.flatnonzero(cond).astype(np.int64)), axis=axis)


@converter("Unique")
def _unique(ctx: NodeContext):
    x = np.asarray(ctx.const(0, f"input; {_VALUE_SHAPED}"))
    axis = ctx.attr("axis", None)
    if axis is not None:
        axis = norm_axis(ctx, int(axis), x.ndim)
    values, first, inverse, counts = np.unique(x, return_index=True, return_inverse=True, return_counts=True, axis=axis)
    if not ctx.attr("sorted", 1):  # in order of first occurrence
        order = np.argsort(first, kind="stable")
        rank = np.empty_like(order)
        rank[order] = np.arange(order.size)
        values = np.take(values, order, axis=0 if axis is None else axis)
        first, counts, inverse = first[order], counts[order], rank[inverse]
    arrays = (values, first, inverse.reshape(-1), counts)
    return [ctx.constant(np.asarray(a, dtype=np.int64 if i else x.dtype)) for i, a in enumerate(arrays)]
