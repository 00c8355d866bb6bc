"""Shape and layout ops: reshape, transpose, flatten, squeeze, unsqueeze, broadcast_to, concat,
split, slice, pad, gather, tile, and the backward-only slice_grad and gather_grad.

Every op here moves elements without arithmetic, so each lowering is one `te.compute`
whose element i reads one input element at an index computed from i (written out
directly rather than through topi, whose edge-case semantics differ from ONNX's).
Attribute checking and normalization (negative axes, ONNX slice clamping, pad
cropping) live in plain-Python helpers shared by inference, reference and lowering.
"""
from __future__ import annotations

import builtins
import math

import numpy as np

from .. import dtypes
from ..ir import TensorType, check_infer
from ._grad import unbroadcast, zeros_like
from ._lazy import expr_dtype, te, tir
from ._lazy import ops as O
from .registry import INJECTIVE, OPAQUE, REQUIRED, Sample, broadcast_shapes, defop, norm_axis, prod, rand
from .te_util import te_shape

# an ONNX slice end meaning "through the first element" for negative steps
_BEFORE_START = -(2**62)

# ---------------------------------------------------------------------------------------
# attribute helpers (shared by inference, reference, lowering and gradients)
# ---------------------------------------------------------------------------------------


def _ints(v, what: str) -> tuple[int, ...]:
    check_infer(
        isinstance(v, tuple) and all(isinstance(d, int) and not isinstance(d, bool) for d in v),
        f"{what} must be a list of ints, got {v!r}",
    )
    return v


def _unique_axes(axes, rank: int, what: str = "axes") -> tuple[int, ...]:
    """Normalize (negative) axes against `rank`; duplicates are an error."""
    out = tuple(norm_axis(a, rank, "axis") for a in _ints(axes, what))
    check_infer(len(set(out)) == len(out), f"{what} {list(axes)} name an axis twice")
    return out


def _axis_of(rank: int, axis: int) -> int:
    """A single axis of a tensor that must have at least one dimension."""
    check_infer(rank >= 1, "needs a tensor of rank >= 1, got a 0-d tensor")
    return norm_axis(axis, rank)


def _flatten_shape(shape, start_dim, end_dim) -> tuple[int, ...]:
    rank = max(len(shape), 1)  # torch: a 0-d tensor flattens like a [1] tensor
    s, e = norm_axis(start_dim, rank, "start_dim"), norm_axis(end_dim, rank, "end_dim")
    check_infer(s <= e, f"start_dim {start_dim} comes after end_dim {end_dim}")
    shape = tuple(shape) or (1,)
    return shape[:s] + (prod(shape[s : e + 1]),) + shape[e + 1 :]


def _squeeze_axes(shape, axes) -> tuple[int, ...]:
    axes = _unique_axes(axes, len(shape))
    for a in axes:
        check_infer(shape[a] == 1, f"cannot squeeze axis {a} of shape {list(shape)}: its size is {shape[a]}, not 1")
    return axes


def _squeezed_shape(shape, axes) -> tuple[int, ...]:
    axes = _squeeze_axes(shape, axes)
    return tuple(d for k, d in enumerate(shape) if k not in axes)


def _unsqueeze_axes(shape, axes) -> tuple[int, ...]:
    """Positions of the new unit axes in the output (ONNX Unsqueeze-13)."""
    return _unique_axes(axes, len(shape) + len(_ints(axes, "axes")))


def _unsqueeze_shape(shape, axes) -> tuple[int, ...]:
    axes = _unsqueeze_axes(shape, axes)
    rest = iter(shape)
    return tuple(1 if k in axes else next(rest) for k in range(len(shape) + len(axes)))


def _split_offsets(dim: int, sections) -> list[int]:
    sections = _ints(sections, "sections")
    check_infer(len(sections) >= 1 and all(s >= 0 for s in sections), f"sections must be non-negative sizes, got {list(sections)}")
    check_infer(sum(sections) == dim, f"sections {list(sections)} sum to {sum(sections)}, but the axis has size {dim}")
    return [sum(sections[:k]) for k in range(len(sections))]


def _slice_params(shape, starts, ends, axes, steps) -> list[tuple[int, int, int]]:
    """ONNX Slice, resolved: (start, step, length) for every axis of `shape`."""
    starts, ends = _ints(starts, "starts"), _ints(ends, "ends")
    axes = tuple(range(len(starts))) if axes is None else _unique_axes(axes, len(shape))
    steps = (1,) * len(starts) if steps is None else _ints(steps, "steps")
    check_infer(
        len(starts) == len(ends) == len(axes) == len(steps),
        f"starts, ends, axes and steps differ in length ({len(starts)}, {len(ends)}, {len(axes)}, {len(steps)})",
    )
    check_infer(all(a < len(shape) for a in axes), f"axes {list(axes)} out of range for rank {len(shape)}")
    params = [(0, 1, d) for d in shape]
    for a, s, e, st in zip(axes, starts, ends, steps):
        check_infer(st != 0, "slice steps must be non-zero")
        d = shape[a]
        s, e = (s + d if s < 0 else s), (e + d if e < 0 else e)
        if st > 0:
            s, e = min(max(s, 0), d), min(max(e, 0), d)
        else:  # walking backwards: the first element read is at most d-1, the end may be -1 (before 0)
            s, e = min(max(s, 0), d - 1), min(max(e, -1), d - 1)
        params[a] = (s, st, max(0, -((s - e) // st)))  # ceil((e - s) / st) elements
    return params


def _sliced_shape(shape, starts, ends, axes, steps) -> tuple[int, ...]:
    return tuple(n for _, _, n in _slice_params(shape, starts, ends, axes, steps))


def _pad_params(shape, pads, mode) -> list[tuple[int, int, int, int]]:
    """Per axis (begin, end, lo, m): pad amounts and the kept input range [lo, lo + m).

    Negative pads crop: the input is cropped first, then the cropped tensor is padded.
    """
    pads = _ints(pads, "pads")
    rank = len(shape)
    check_infer(len(pads) == 2 * rank, f"pads needs 2 * rank = {2 * rank} entries, got {len(pads)}")
    check_infer(mode in ("constant", "reflect", "edge"), f"mode must be 'constant', 'reflect' or 'edge', got {mode!r}")
    out = []
    for a, (d, b, e) in enumerate(zip(shape, pads[:rank], pads[rank:])):
        lo, m = max(0, -b), d - max(0, -b) - max(0, -e)
        check_infer(m >= 0, f"pads {b}, {e} crop more than the {d} elements of axis {a}")
        if mode == "reflect":
            check_infer(max(b, e) <= 0 or max(b, e) < m, f"reflect pads {b}, {e} on axis {a} must be smaller than its size {m}")
        if mode == "edge" and max(b, e) > 0:
            check_infer(m > 0, f"edge padding axis {a} needs at least one element")
        out.append((b, e, lo, m))
    return out


def _padded_shape(params) -> tuple[int, ...]:
    return tuple(max(0, b) + m + max(0, e) for b, e, _, m in params)


def _fill(value, dtype: str):
    """The pad value as a Python scalar of the tensor's kind."""
    if dtype == "bool":
        return bool(value)
    if dtypes.is_int(dtype):
        return int(value)
    return float(value)


def _gather_shape(data_shape, axis, indices_shape) -> tuple[int, ...]:
    return tuple(data_shape[:axis]) + tuple(indices_shape) + tuple(data_shape[axis + 1 :])


def _check_indices(indices: TensorType) -> None:
    check_infer(indices.dtype in ("i32", "i64"), f"indices must be i32 or i64, got {indices.dtype}")


# ---------------------------------------------------------------------------------------
# lowering helpers
# ---------------------------------------------------------------------------------------



def _remap(x, shape, index, name: str):
    """out[i] = x[index(i)]: the lowering of every op that only moves elements."""
    return te.compute(tuple(shape), lambda *i: x[tuple(index(i))], name=name)


def _te_reshape(x, shape, name: str = "reshape"):
    """Row-major reshape: flatten the output index, unflatten it in the input's shape."""
    in_shape = te_shape(x)

    def index(i):
        flat = tir.const(0, "int32")
        for k, d in zip(i, shape):
            flat = flat * d + k
        out = []
        for d in reversed(in_shape[1:]):
            out.append(tir.floormod(flat, d))
            flat = tir.floordiv(flat, d)
        if in_shape:
            out.append(flat)  # the leading index needs no modulo: flat < numel
        return reversed(out)

    return _remap(x, shape, index, name)


def _shifted(t, axis: int, by):
    """Tuple t (an index or a shape) with `by` added to its entry at axis."""
    return t[:axis] + (t[axis] + by,) + t[axis + 1 :]


def _wrap_index(v, dim: int):
    """An index read from a tensor, negative ones counting from the end (ONNX)."""
    return tir.Select(v < tir.const(0, expr_dtype(v)), v + tir.const(dim, expr_dtype(v)), v)


# ---------------------------------------------------------------------------------------
# reshape, flatten, squeeze, unsqueeze (views: no data moves)
# ---------------------------------------------------------------------------------------


def _reshape_infer(x: TensorType, shape):
    shape = _ints(shape, "shape")
    check_infer(all(d >= 0 for d in shape), f"reshape target {list(shape)} must be fully resolved (no -1)")
    check_infer(
        prod(shape) == x.numel,
        f"cannot reshape {list(x.shape)} ({x.numel} elements) to {list(shape)} ({prod(shape)} elements)",
    )
    return x.with_shape(shape)


def _reshape_back(g, x, out, **_):
    """Gradient of every view op: reshape the cotangent back to the input's shape."""
    return (O.reshape(g, shape=tuple(x.shape)),)


def _unary_samples(*cases):
    """Samples for a one-input op from (shape, dtype, attrs, note) tuples."""

    def samples(rng):
        return [Sample((rand(rng, *shape, dtype=dtype, low=-9, high=9),), attrs, note=note) for shape, dtype, attrs, note in cases]

    return samples


reshape = defop(
    "reshape",
    infer=_reshape_infer,
    ref=lambda x, shape: x.reshape(shape),
    lower=lambda x, shape: _te_reshape(x, shape),
    grad=_reshape_back,
    fusion=INJECTIVE,
    attrs={"shape": REQUIRED},
    samples=_unary_samples(
        ((2, 3, 4), "float32", {"shape": (4, 6)}, ""),
        ((6,), "int32", {"shape": (2, 1, 3)}, "int32, unit axis"),
        ((), "float32", {"shape": (1, 1)}, "0-d to 2-d"),
        ((1, 1), "float32", {"shape": ()}, "to 0-d"),
        ((2, 3, 2), "bool", {"shape": (12,)}, "bool"),
    ),
)


def _flatten_infer(x: TensorType, start_dim, end_dim):
    return x.with_shape(_flatten_shape(x.shape, start_dim, end_dim))


flatten = defop(
    "flatten",
    infer=_flatten_infer,
    ref=lambda x, start_dim, end_dim: x.reshape(_flatten_shape(x.shape, start_dim, end_dim)),
    lower=lambda x, start_dim, end_dim: _te_reshape(x, _flatten_shape(te_shape(x), start_dim, end_dim), "flatten"),
    grad=_reshape_back,
    fusion=INJECTIVE,
    attrs={"start_dim": 0, "end_dim": -1},
    samples=_unary_samples(
        ((2, 3, 4), "float32", {}, "all"),
        ((2, 3, 4, 5), "float32", {"start_dim": 1, "end_dim": 2}, "middle"),
        ((2, 3, 4), "int32", {"start_dim": -2}, "negative start"),
        ((), "float32", {}, "0-d to [1]"),
    ),
)


def _squeeze_lower(x, axes):
    shape = te_shape(x)
    axes = _squeeze_axes(shape, axes)

    def index(i):
        rest = iter(i)
        return tuple(0 if k in axes else next(rest) for k in range(len(shape)))

    return _remap(x, _squeezed_shape(shape, axes), index, "squeeze")


squeeze = defop(
    "squeeze",
    infer=lambda x, axes: x.with_shape(_squeezed_shape(x.shape, axes)),
    ref=lambda x, axes: x.reshape(_squeezed_shape(x.shape, axes)),
    lower=_squeeze_lower,
    grad=_reshape_back,
    fusion=INJECTIVE,
    attrs={"axes": REQUIRED},
    samples=_unary_samples(
        ((1, 3, 1, 4), "float32", {"axes": (0, -2)}, "negative axis"),
        ((3, 1), "int64", {"axes": (1,)}, "int64"),
        ((1,), "float32", {"axes": (0,)}, "to 0-d"),
        ((2, 1, 3), "bool", {"axes": (-2,)}, "bool"),
    ),
)


def _unsqueeze_lower(x, axes):
    shape = te_shape(x)
    new = _unsqueeze_axes(shape, axes)
    return _remap(x, _unsqueeze_shape(shape, axes), lambda i: tuple(v for k, v in enumerate(i) if k not in new), "unsqueeze")


unsqueeze = defop(
    "unsqueeze",
    infer=lambda x, axes: x.with_shape(_unsqueeze_shape(x.shape, axes)),
    ref=lambda x, axes: x.reshape(_unsqueeze_shape(x.shape, axes)),
    lower=_unsqueeze_lower,
    grad=_reshape_back,
    fusion=INJECTIVE,
    attrs={"axes": REQUIRED},
    samples=_unary_samples(
        ((3, 4), "float32", {"axes": (0, -1)}, "front and back"),
        ((2, 3), "float32", {"axes": (1, 3)}, "interleaved"),
        ((), "float32", {"axes": (0,)}, "0-d"),
        ((2, 2), "bool", {"axes": (-3,)}, "bool"),
    ),
)

# ---------------------------------------------------------------------------------------
# transpose, broadcast_to, tile
# ---------------------------------------------------------------------------------------


def _transpose_infer(x: TensorType, perm):
    perm = _ints(perm, "perm")
    check_infer(sorted(perm) == list(range(x.rank)), f"perm {list(perm)} is not a permutation of the {x.rank} axes")
    return x.with_shape(tuple(x.shape[p] for p in perm))


def _transpose_lower(x, perm):
    def index(i):
        src = [None] * len(perm)
        for k, p in enumerate(perm):  # output axis k is input axis p
            src[p] = i[k]
        return src

    return _remap(x, tuple(te_shape(x)[p] for p in perm), index, "transpose")


def _transpose_grad(g, x, out, perm):
    return (O.transpose(g, perm=tuple(perm.index(k) for k in range(len(perm)))),)


transpose = defop(
    "transpose",
    infer=_transpose_infer,
    ref=lambda x, perm: np.transpose(x, perm),
    lower=_transpose_lower,
    grad=_transpose_grad,
    fusion=INJECTIVE,
    attrs={"perm": REQUIRED},
    samples=_unary_samples(
        ((2, 3, 4), "float32", {"perm": (2, 0, 1)}, ""),
        ((2, 3, 4, 5), "float32", {"perm": (0, 2, 3, 1)}, "NCHW to NHWC"),
        ((3, 5), "int64", {"perm": (1, 0)}, "int64"),
        ((2, 3), "bool", {"perm": (1, 0)}, "bool"),
        ((), "float32", {"perm": ()}, "0-d"),
    ),
)


def _broadcast_to_infer(x: TensorType, shape):
    shape = _ints(shape, "shape")
    ok = len(shape) >= x.rank and broadcast_shapes(x.shape, shape) == shape
    check_infer(ok, f"cannot broadcast {list(x.shape)} to {list(shape)}")
    return x.with_shape(shape)


def _broadcast_to_lower(x, shape):
    in_shape = te_shape(x)
    lead = len(shape) - len(in_shape)
    return _remap(x, shape, lambda i: tuple(0 if d == 1 else i[lead + k] for k, d in enumerate(in_shape)), "broadcast_to")


broadcast_to = defop(
    "broadcast_to",
    infer=_broadcast_to_infer,
    ref=lambda x, shape: np.broadcast_to(x, shape),
    lower=_broadcast_to_lower,
    grad=lambda g, x, out, shape: (unbroadcast(g, tuple(x.shape)),),
    fusion=INJECTIVE,
    attrs={"shape": REQUIRED},
    samples=_unary_samples(
        ((3, 1), "float32", {"shape": (2, 3, 4)}, "new leading axis and unit axis"),
        ((), "float32", {"shape": (2, 3)}, "0-d"),
        ((4,), "float32", {"shape": (3, 4)}, ""),
        ((2, 3), "float32", {"shape": (2, 3)}, "identity"),
        ((1, 5), "int32", {"shape": (2, 5)}, "int32"),
        ((2, 1), "bool", {"shape": (2, 3)}, "bool"),
    ),
)


def _tile_infer(x: TensorType, repeats):
    repeats = _ints(repeats, "repeats")
    check_infer(len(repeats) == x.rank, f"repeats {list(repeats)} needs one entry per axis of {list(x.shape)}")
    check_infer(all(r >= 0 for r in repeats), f"repeats must be non-negative, got {list(repeats)}")
    return x.with_shape(tuple(d * r for d, r in zip(x.shape, repeats)))


def _tile_lower(x, repeats):
    shape = te_shape(x)
    out_shape = tuple(d * r for d, r in zip(shape, repeats))
    return _remap(x, out_shape, lambda i: tuple(v if r == 1 else tir.floormod(v, d) for v, d, r in zip(i, shape, repeats)), "tile")


def _tile_grad(g, x, out, repeats):
    """Sum the copies: view g as [r0, d0, r1, d1, ...] and reduce the repeat axes."""
    if all(r == 1 for r in repeats):
        return (g,)
    pairs = tuple(v for r, d in zip(repeats, x.shape) for v in (r, d))
    copies = O.reshape(g, shape=pairs)
    return (O.sum(copies, axes=tuple(range(0, len(pairs), 2)), keepdims=False),)


tile = defop(
    "tile",
    infer=_tile_infer,
    ref=lambda x, repeats: np.tile(x, repeats),
    lower=_tile_lower,
    grad=_tile_grad,
    fusion=INJECTIVE,
    attrs={"repeats": REQUIRED},
    samples=_unary_samples(
        ((2, 3), "float32", {"repeats": (2, 1)}, ""),
        ((3,), "float32", {"repeats": (4,)}, "1-d"),
        ((2, 1, 3), "float32", {"repeats": (1, 3, 2)}, "unit axis"),
        ((2, 2), "int32", {"repeats": (3, 2)}, "int32"),
        ((2,), "bool", {"repeats": (3,)}, "bool"),
    ),
)

# ---------------------------------------------------------------------------------------
# concat, split
# ---------------------------------------------------------------------------------------


def _concat_infer(*xs: TensorType, axis):
    check_infer(len(xs) >= 1, "needs at least one input")
    first = xs[0]
    a = _axis_of(first.rank, axis)
    for k, x in enumerate(xs[1:], 1):
        check_infer(x.dtype == first.dtype, f"input {k} has dtype {x.dtype}, input 0 has {first.dtype}")
        same = x.rank == first.rank and all(d == e for j, (d, e) in enumerate(zip(x.shape, first.shape)) if j != a)
        check_infer(same, f"input {k} {list(x.shape)} does not match input 0 {list(first.shape)} outside axis {a}")
    return first.with_shape(_shifted(first.shape, a, sum(x.shape[a] for x in xs[1:])))


def _concat_lower(*xs, axis):
    a = norm_axis(axis, len(xs[0].shape))
    sizes = [te_shape(x)[a] for x in xs]
    offsets = [sum(sizes[:k]) for k in range(len(xs))]

    def value(*i):
        # a chain of if_then_else (not Select): only the input that holds i is read
        expr = xs[-1][_shifted(i, a, -offsets[-1])]
        for x, off, size in reversed(list(zip(xs[:-1], offsets[:-1], sizes[:-1]))):
            expr = tir.if_then_else(i[a] < off + size, x[_shifted(i, a, -off)], expr)
        return expr

    out_shape = _shifted(te_shape(xs[0]), a, sum(sizes[1:]))
    return te.compute(out_shape, value, name="concat")


def _concat_grad(g, *xs, out, axis):
    parts = O.split(g, axis=axis, sections=tuple(x.shape[axis] for x in xs))
    return parts if len(xs) > 1 else (parts,)


def _concat_samples(rng):
    return [
        Sample((rand(rng, 2, 3), rand(rng, 2, 1), rand(rng, 2, 4)), {"axis": -1}, note="three inputs, last axis"),
        Sample((rand(rng, 1, 3, 2), rand(rng, 2, 3, 2)), {"axis": 0}),
        Sample((rand(rng, 2, 3, 4),), {"axis": 1}, note="one input"),
        Sample((rand(rng, 3, 2, dtype="int64", low=-9, high=9), rand(rng, 3, 3, dtype="int64", low=-9, high=9)), {"axis": 1}, note="int64"),
        Sample((rand(rng, 2, dtype="bool"), rand(rng, 3, dtype="bool")), {"axis": 0}, note="bool"),
    ]


concat = defop(
    "concat",
    infer=_concat_infer,
    ref=lambda *xs, axis: np.concatenate(xs, axis=axis),
    lower=_concat_lower,
    grad=_concat_grad,
    fusion=INJECTIVE,
    attrs={"axis": REQUIRED},
    samples=_concat_samples,
)


def _split_infer(x: TensorType, axis, sections):
    a = _axis_of(x.rank, axis)
    _split_offsets(x.shape[a], sections)
    return tuple(x.with_shape(_shifted(x.shape, a, s - x.shape[a])) for s in sections)


def _split_ref(x, axis, sections):
    a = norm_axis(axis, x.ndim)
    return tuple(np.split(x, np.cumsum(sections)[:-1], axis=a))


def _split_lower(x, axis, sections):
    shape = te_shape(x)
    a = norm_axis(axis, len(shape))
    return [
        _remap(x, _shifted(shape, a, s - shape[a]), lambda i, off=off: _shifted(i, a, off), "split")
        for off, s in zip(_split_offsets(shape[a], sections), sections)
    ]


def _split_grad(g, x, out, axis, sections):
    """Concatenate the output cotangents; an unused output (None) contributes zeros."""
    gs = tuple(g) if isinstance(g, (tuple, list)) else (g,)
    outs = tuple(out) if isinstance(out, (tuple, list)) else (out,)
    parts = [gi if gi is not None else zeros_like(o) for gi, o in zip(gs, outs)]
    return (O.concat(*parts, axis=axis),)


split = defop(
    "split",
    infer=_split_infer,
    ref=_split_ref,
    lower=_split_lower,
    grad=_split_grad,
    fusion=INJECTIVE,
    attrs={"axis": 0, "sections": REQUIRED},
    samples=_unary_samples(
        ((7, 4), "float32", {"sections": (2, 4, 1)}, "three parts"),
        ((3, 6), "float32", {"axis": -1, "sections": (6,)}, "one part"),
        ((2, 5, 3), "float32", {"axis": 1, "sections": (1, 4)}, "middle axis"),
        ((4, 3), "int32", {"sections": (1, 3)}, "int32"),
    ),
)

# ---------------------------------------------------------------------------------------
# slice (ONNX Slice) and its backward helper slice_grad
# ---------------------------------------------------------------------------------------


def _slice_infer(x: TensorType, starts, ends, axes, steps):
    return x.with_shape(_sliced_shape(x.shape, starts, ends, axes, steps))


def _np_slices(params) -> tuple:
    """Python slices for resolved (start, step, length) triples."""
    out = []
    for s, st, n in params:
        stop = s + st * n
        out.append(builtins.slice(s, stop if stop >= 0 else None, st) if n else builtins.slice(0, 0))
    return tuple(out)


def _slice_ref(x, starts, ends, axes, steps):
    return x[_np_slices(_slice_params(x.shape, starts, ends, axes, steps))]


def _slice_lower(x, starts, ends, axes, steps):
    params = _slice_params(te_shape(x), starts, ends, axes, steps)
    return _remap(x, [n for _, _, n in params], lambda i: [s + st * v for v, (s, st, _) in zip(i, params)], "slice")


def _slice_grad(g, x, out, starts, ends, axes, steps):
    params = _slice_params(x.shape, starts, ends, axes, steps)
    if all(st == 1 for _, st, _ in params):  # a contiguous window: pad the cotangent with zeros
        begins = tuple(s for s, _, _ in params)
        afters = tuple(d - s - n for d, (s, _, n) in zip(x.shape, params))
        return (O.pad(g, pads=begins + afters),)
    return (O.slice_grad(g, shape=tuple(x.shape), starts=starts, ends=ends, axes=axes, steps=steps),)


def _slice_samples(rng):
    big = 2**62
    return [
        Sample((rand(rng, 5, 6),), {"starts": (1, -4), "ends": (4, big)}, note="negative start, huge end"),
        Sample((rand(rng, 6, 7),), {"starts": (-1, 1), "ends": (-big, 100), "axes": (0, -1), "steps": (-2, 3)}, note="steps -2 and 3"),
        Sample((rand(rng, 3, 4, 5),), {"starts": (3,), "ends": (0,), "axes": (-1,), "steps": (-1,)}, note="reverse window"),
        Sample((rand(rng, 3, 8, 2),), {"starts": (-100,), "ends": (-2,), "axes": (1,)}, note="clamped start"),
        Sample((rand(rng, 4, 5),), {"starts": (1, 0), "ends": (1, 5)}, note="empty"),
        Sample((rand(rng, 4, 6, dtype="int32", low=-9, high=9),), {"starts": (0, 5), "ends": (4, 0), "steps": (2, -2)}, note="int32"),
        Sample((rand(rng, 6, dtype="bool"),), {"starts": (1,), "ends": (-1,)}, note="bool"),
    ]


slice = defop(  # noqa: A001 - the op is called slice
    "slice",
    infer=_slice_infer,
    ref=_slice_ref,
    lower=_slice_lower,
    grad=_slice_grad,
    fusion=INJECTIVE,
    attrs={"starts": REQUIRED, "ends": REQUIRED, "axes": None, "steps": None},
    samples=_slice_samples,
)


def _slice_grad_infer(g: TensorType, shape, starts, ends, axes, steps):
    shape = _ints(shape, "shape")
    sliced = _sliced_shape(shape, starts, ends, axes, steps)
    check_infer(g.shape == sliced, f"cotangent {list(g.shape)} does not match the slice of {list(shape)}, which is {list(sliced)}")
    return g.with_shape(shape)


def _slice_grad_ref(g, shape, starts, ends, axes, steps):
    out = np.zeros(shape, g.dtype)
    out[_np_slices(_slice_params(shape, starts, ends, axes, steps))] = g
    return out


def _slice_grad_lower(g, shape, starts, ends, axes, steps):
    """out[p] = g[k] where the slice read position p as its k-th element, else 0."""
    params = _slice_params(shape, starts, ends, axes, steps)

    def value(*p):
        conds, k = [], []
        for v, d, (s, st, n) in zip(p, shape, params):
            if (s, st, n) == (0, 1, d):  # an axis the slice did not touch
                k.append(v)
                continue
            q = v - s if st > 0 else s - v  # distance walked from the start
            j = q if abs(st) == 1 else tir.floordiv(q, abs(st))
            conds += [q >= 0, j < n] + ([tir.floormod(q, abs(st)) == 0] if abs(st) > 1 else [])
            k.append(j)
        zero = tir.const(0, str(g.dtype))
        return tir.if_then_else(tir.all(*conds), g[tuple(k)], zero) if conds else g[tuple(k)]

    return te.compute(tuple(shape), value, name="slice_grad")


def _slice_grad_samples(rng):
    cases = [
        ((6, 7), {"starts": (-1, 1), "ends": (_BEFORE_START, 100), "axes": (0, -1), "steps": (-2, 3)}),
        ((3, 4, 5), {"starts": (3,), "ends": (0,), "axes": (-1,), "steps": (-1,)}),
        ((5, 6), {"starts": (1, 0), "ends": (4, 6), "steps": (1, 2)}),
    ]
    out = []
    for shape, attrs in cases:
        sliced = _sliced_shape(shape, attrs["starts"], attrs["ends"], attrs.get("axes"), attrs.get("steps"))
        out.append(Sample((rand(rng, *sliced),), {"shape": shape, **attrs}))
    return out


slice_grad = defop(
    "slice_grad",
    infer=_slice_grad_infer,
    ref=_slice_grad_ref,
    lower=_slice_grad_lower,
    grad=lambda g, x, out, shape, starts, ends, axes, steps: (O.slice(g, starts=starts, ends=ends, axes=axes, steps=steps),),
    fusion=INJECTIVE,
    attrs={"shape": REQUIRED, "starts": REQUIRED, "ends": REQUIRED, "axes": None, "steps": None},
    samples=_slice_grad_samples,
    doc="Backward of slice: scatter g into zeros of `shape` at the positions the slice read.",
)

# ---------------------------------------------------------------------------------------
# pad
# ---------------------------------------------------------------------------------------


def _pad_infer(x: TensorType, pads, mode, value):
    params = _pad_params(x.shape, pads, mode)
    if dtypes.is_int(x.dtype):
        check_infer(math.isfinite(value), f"pad value {value} does not fit an integer tensor")
    return x.with_shape(_padded_shape(params))


def _pad_ref(x, pads, mode, value):
    params = _pad_params(x.shape, pads, mode)
    if x.ndim == 0:
        return x
    kept = x[tuple(builtins.slice(lo, lo + m) for _, _, lo, m in params)]
    width = [(max(0, b), max(0, e)) for b, e, _, _ in params]
    if mode == "constant":
        return np.pad(kept, width, mode="constant", constant_values=_fill(value, dtypes.from_numpy(x.dtype)))
    return np.pad(kept, width, mode=mode)  # numpy's "reflect" and "edge" are ONNX's


def _reflect(c, m: int):
    """Mirror position c into [0, m) without repeating the edge (valid for |overshoot| < m)."""
    return (m - 1) - tir.abs((m - 1) - tir.abs(c))


def _pad_lower(x, pads, mode, value):
    shape = te_shape(x)
    params = _pad_params(shape, pads, mode)
    out_shape = _padded_shape(params)
    if mode == "constant":
        fill = tir.const(_fill(value, dtypes.from_tvm(str(x.dtype))), str(x.dtype))

        def padded(*i):
            p = [v - b for v, (b, _, _, _) in zip(i, params)]  # input position (crops only shift it)
            inside = [q >= 0 for q, (b, _, _, _) in zip(p, params) if b > 0]
            inside += [q < d for q, d, (_, e, _, _) in zip(p, shape, params) if e > 0]
            return tir.if_then_else(tir.all(*inside), x[tuple(p)], fill) if inside else x[tuple(p)]

        return te.compute(out_shape, padded, name="pad")

    def index(i):
        out = []
        for v, (b, e, lo, m) in zip(i, params):
            c = v - max(0, b)  # position in the cropped input
            if b > 0 or e > 0:
                c = _reflect(c, m) if mode == "reflect" else tir.min(tir.max(c, 0), m - 1)
            out.append(lo + c)
        return out

    return _remap(x, out_shape, index, "pad")


def _axis_slice(t, axis: int, start: int, end: int, step: int = 1):
    return O.slice(t, starts=(start,), ends=(end,), axes=(axis,), steps=None if step == 1 else (step,))


def _axis_pad(t, axis: int, begin: int, end: int):
    pads = [0] * (2 * t.ndim)
    pads[axis], pads[t.ndim + axis] = begin, end
    return O.pad(t, pads=tuple(pads))


def _reflect_adjoint(g, axis: int, b: int, e: int):
    """Along one axis: fold the b + e mirrored positions back onto the m elements they copied."""
    m = g.shape[axis] - b - e
    out = _axis_slice(g, axis, b, b + m)
    if b:  # output j < b copied x[b - j]: g[b-1], ..., g[0] land on x[1], ..., x[b]
        out = out + _axis_pad(_axis_slice(g, axis, b - 1, _BEFORE_START, -1), axis, 1, m - 1 - b)
    if e:  # output b + m + j copied x[m - 2 - j]: reversed, they land on x[m-1-e], ..., x[m-2]
        out = out + _axis_pad(_axis_slice(g, axis, b + m + e - 1, b + m - 1, -1), axis, m - 1 - e, 1)
    return out


def _edge_adjoint(g, axis: int, b: int, e: int):
    """Along one axis: every position padded before (after) the data copied its first (last) element."""
    m = g.shape[axis] - b - e
    out = _axis_slice(g, axis, b, b + m)
    if b:
        first = O.sum(_axis_slice(g, axis, 0, b), axes=(axis,), keepdims=True)
        out = out + _axis_pad(first, axis, 0, m - 1)
    if e:
        last = O.sum(_axis_slice(g, axis, b + m, b + m + e), axes=(axis,), keepdims=True)
        out = out + _axis_pad(last, axis, m - 1, 0)
    return out


def _pad_grad(g, x, out, pads, mode, value):
    if mode == "constant":  # padding by -pads crops what was added and zero-fills what was cropped
        return (O.pad(g, pads=tuple(-p for p in pads)),)
    # reflect/edge: undo the padding one axis at a time (it is separable), then the crop
    adjoint = _reflect_adjoint if mode == "reflect" else _edge_adjoint
    for axis, (b, e, _, _) in enumerate(_pad_params(x.shape, pads, mode)):
        if b > 0 or e > 0:
            g = adjoint(g, axis, max(0, b), max(0, e))
    crops = tuple(max(0, -p) for p in pads)
    return (O.pad(g, pads=crops) if any(crops) else g,)


def _pad_samples(rng):
    return [
        Sample((rand(rng, 3, 4),), {"pads": (1, 0, 2, 3), "value": 0.5}, note="constant"),
        Sample((rand(rng, 4, 5),), {"pads": (1, -1, -2, 2), "value": -1.0}, note="constant with crops"),
        Sample((rand(rng, 2, 3, 4),), {"pads": (0, 1, 2, 0, 2, 3), "mode": "reflect"}, note="reflect"),
        Sample((rand(rng, 5, 6),), {"pads": (-1, 2, 1, -2), "mode": "reflect"}, note="reflect with crops"),
        Sample((rand(rng, 3, 4),), {"pads": (2, 1, 0, 3), "mode": "edge"}, note="edge"),
        Sample((rand(rng, 4, 3),), {"pads": (-2, 2, 1, -1), "mode": "edge"}, note="edge with crops"),
        Sample((rand(rng, 1, 3),), {"pads": (2, 0, 1, 0), "mode": "edge"}, note="edge of a single element"),
        Sample((rand(rng, 3, 3, dtype="int32", low=-9, high=9),), {"pads": (1, 1, 1, 1), "value": 7.0}, note="int32"),
        Sample((rand(rng, 2, 3, dtype="bool"),), {"pads": (0, 1, 1, 0), "value": 1.0}, note="bool"),
    ]


pad = defop(
    "pad",
    infer=_pad_infer,
    ref=_pad_ref,
    lower=_pad_lower,
    grad=_pad_grad,
    fusion=INJECTIVE,
    attrs={"pads": REQUIRED, "mode": "constant", "value": 0.0},
    samples=_pad_samples,
)

# ---------------------------------------------------------------------------------------
# gather (ONNX Gather) and its backward helper gather_grad
# ---------------------------------------------------------------------------------------


def _gather_infer(data: TensorType, indices: TensorType, axis):
    _check_indices(indices)
    a = _axis_of(data.rank, axis)
    return data.with_shape(_gather_shape(data.shape, a, indices.shape))


def _np_indices(indices, dim: int):
    return np.where(indices < 0, indices + dim, indices)


def _gather_ref(data, indices, axis):
    a = norm_axis(axis, data.ndim)
    return np.take(data, _np_indices(indices, data.shape[a]), axis=a)


def _gather_lower(data, indices, axis):
    shape = te_shape(data)
    a = norm_axis(axis, len(shape))
    r = len(indices.shape)
    out_shape = _gather_shape(shape, a, te_shape(indices))
    return _remap(data, out_shape, lambda i: i[:a] + (_wrap_index(indices[i[a : a + r]], shape[a]),) + i[a + r :], "gather")


# (data shape, data dtype, indices, axis, note): shared by gather and gather_grad
_GATHER_CASES = [
    ((5, 4), "float32", np.array([[0, -1], [3, -5]], np.int64), 0, "i64 indices, negative and repeated"),
    ((3, 6, 2), "float32", np.array([5, -2, 0, 5], np.int32), -2, "i32 indices, middle axis"),
    ((4, 3), "float32", np.array(-1, np.int64), 1, "0-d index"),
    ((2, 5), "int32", np.array([[2, -1, 0], [4, 4, -5]], np.int32), 1, "int32 data"),
    ((6,), "bool", np.array([1, -1, 0], np.int64), 0, "bool data"),
]


def _gather_samples(rng):
    return [
        Sample((rand(rng, *shape, dtype=dtype, low=-9, high=9), idx.copy()), {"axis": axis}, note=note)
        for shape, dtype, idx, axis, note in _GATHER_CASES
    ]


gather = defop(
    "gather",
    infer=_gather_infer,
    ref=_gather_ref,
    lower=_gather_lower,
    grad=lambda g, data, indices, out, axis: (O.gather_grad(g, indices, axis=axis, shape=tuple(data.shape)), None),
    fusion=INJECTIVE,
    attrs={"axis": 0},
    samples=_gather_samples,
)


def _gather_grad_infer(g: TensorType, indices: TensorType, axis, shape):
    _check_indices(indices)
    shape = _ints(shape, "shape")
    a = _axis_of(len(shape), axis)
    gathered = _gather_shape(shape, a, indices.shape)
    check_infer(g.shape == gathered, f"cotangent {list(g.shape)} does not match a gather from {list(shape)}, which is {list(gathered)}")
    return g.with_shape(shape)


def _gather_grad_ref(g, indices, axis, shape):
    a = norm_axis(axis, len(shape))
    out = np.zeros(shape, g.dtype)
    np.add.at(out, (builtins.slice(None),) * a + (_np_indices(indices, shape[a]),), g)
    return out


def _gather_grad_lower(g, indices, axis, shape):
    """out[.., p, ..] = sum over index positions j with indices[j] == p of g[.., j, ..]."""
    a = norm_axis(axis, len(shape))
    zero = tir.const(0, str(g.dtype))

    def term(p, j):
        hit = _wrap_index(indices[j], shape[a]) == p[a]
        return tir.Select(hit, g[p[:a] + j + p[a + 1 :]], zero)

    if not indices.shape:
        return te.compute(tuple(shape), lambda *p: term(p, ()), name="gather_grad")
    js = tuple(te.reduce_axis((0, d), name=f"j{k}") for k, d in enumerate(te_shape(indices)))
    return te.compute(tuple(shape), lambda *p: te.sum(term(p, js), axis=list(js)), name="gather_grad")


def _gather_grad_samples(rng):
    out = []
    for shape, dtype, idx, axis, note in _GATHER_CASES:
        if dtype == "float32":
            a = axis % len(shape)
            out.append(Sample((rand(rng, *_gather_shape(shape, a, idx.shape)), idx.copy()), {"axis": axis, "shape": shape}, note=note))
    return out


gather_grad = defop(
    "gather_grad",
    infer=_gather_grad_infer,
    ref=_gather_grad_ref,
    lower=_gather_grad_lower,
    grad=lambda g, cotangent, indices, out, axis, shape: (O.gather(g, indices, axis=axis), None),
    fusion=OPAQUE,  # a scatter-add (TVM also keeps scatters out of fusion)
    attrs={"axis": 0, "shape": REQUIRED},
    samples=_gather_grad_samples,
    doc="Backward of gather: scatter-add g into zeros of `shape` along axis (repeated indices accumulate).",
)
