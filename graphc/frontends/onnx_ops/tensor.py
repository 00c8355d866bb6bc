"""Shape and data-movement ONNX ops."""
from __future__ import annotations

import math

import numpy as np

from ... import dtypes
from ...ops.registry import broadcast_shapes
from ...tensor import resolve_reshape
from ..onnx import NodeContext, converter
from ._common import attr_or_input, norm_axes, norm_axis


@converter("Flatten")
def _flatten(ctx: NodeContext):
    x = ctx.input(0)
    axis = int(ctx.attr("axis"))
    if not -x.ndim <= axis <= x.ndim:
        raise ctx.error(f"axis {axis} is out of range for a rank-{x.ndim} input")
    axis = axis + x.ndim if axis < 0 else axis
    shape = (math.prod(x.shape[:axis]), math.prod(x.shape[axis:]))
    return x if shape == x.shape else ctx.op("reshape", x, shape=shape)


@converter("Reshape")
def _reshape(ctx: NodeContext):
    x = ctx.input(0)
    if ctx.opset < 5:  # the target shape was an attribute
        if not ctx.has_attr("shape"):
            raise ctx.error("needs attribute 'shape' (before opset 5 the target shape is an attribute)")
        target = [int(d) for d in ctx.attr("shape")]
    else:
        target = ctx.ints(1, "shape")
    allowzero = ctx.opset >= 14 and bool(ctx.attr("allowzero", 0))
    shape = []
    for i, d in enumerate(target):
        if d == 0 and not allowzero:
            if i >= x.ndim:
                raise ctx.error(f"shape {target}: 0 at position {i} copies a dim the rank-{x.ndim} input does not have")
            d = x.shape[i]
        elif d < -1:
            raise ctx.error(f"shape {target} has an invalid dim {d}")
        shape.append(d)
    try:
        shape = resolve_reshape(x.shape, shape)
    except Exception as e:
        raise ctx.error(str(e)) from None
    if math.prod(shape) != x.type.numel:
        raise ctx.error(f"cannot reshape {list(x.shape)} ({x.type.numel} elements) to {target}")
    return x if tuple(shape) == x.shape else ctx.op("reshape", x, shape=tuple(shape))


@converter("Transpose")
def _transpose(ctx: NodeContext):
    x = ctx.input(0)
    perm = ctx.attr("perm", None)
    perm = tuple(reversed(range(x.ndim))) if perm is None else norm_axes(ctx, perm, x.ndim, "perm")
    if sorted(perm) != list(range(x.ndim)):
        raise ctx.error(f"perm {list(perm)} is not a permutation of {x.ndim} axes")
    return x if perm == tuple(range(x.ndim)) else ctx.op("transpose", x, perm=perm)


@converter("Squeeze")
def _squeeze(ctx: NodeContext):
    x = ctx.input(0)
    axes = attr_or_input(ctx, "axes", 1, 13)
    if not axes:  # absent (or empty): every dim of size 1
        axes = [i for i, d in enumerate(x.shape) if d == 1]
    axes = tuple(sorted(norm_axes(ctx, axes, x.ndim)))
    for a in axes:
        if x.shape[a] != 1:
            raise ctx.error(f"cannot squeeze axis {a} of size {x.shape[a]} (input {list(x.shape)})")
    return ctx.op("squeeze", x, axes=axes) if axes else x


@converter("Unsqueeze")
def _unsqueeze(ctx: NodeContext):
    x = ctx.input(0)
    axes = attr_or_input(ctx, "axes", 1, 13)
    if axes is None:
        raise ctx.error("needs axes")
    out_rank = x.ndim + len(axes)
    return ctx.op("unsqueeze", x, axes=tuple(sorted(norm_axes(ctx, axes, out_rank))))


@converter("Concat")
def _concat(ctx: NodeContext):
    inputs = [ctx.input(i) for i in range(ctx.num_inputs)]
    axis = ctx.attr("axis", 1 if ctx.opset < 4 else None)  # optional (default 1) before opset 4
    if axis is None:
        raise ctx.error("needs attribute 'axis'")
    axis = norm_axis(ctx, int(axis), inputs[0].ndim)
    nonempty = [t for t in inputs if t.shape[axis] != 0] or inputs[:1]
    if len(nonempty) == 1:
        return nonempty[0]
    return ctx.op("concat", *nonempty, axis=axis)


@converter("Split")
def _split(ctx: NodeContext):
    x = ctx.input(0)
    axis = norm_axis(ctx, int(ctx.attr("axis")), x.ndim)
    size = x.shape[axis]
    n = ctx.num_outputs
    # opset 1 took the sizes as an attribute or a second input; opsets 2-12 as an attribute
    sections = attr_or_input(ctx, "split", 1, 13) or (ctx.ints(1, "split") if ctx.opset < 2 and ctx.has_input(1) else None)
    if not sections:
        if ctx.opset >= 18 and ctx.has_attr("num_outputs"):
            n = int(ctx.attr("num_outputs"))
            chunk = -(-size // n)  # ceil: the last chunk may be smaller
            sections = [chunk] * (n - 1) + [size - chunk * (n - 1)]
            if sections[-1] < 0:
                raise ctx.error(f"cannot split size {size} into {n} outputs")
        else:
            if size % n:
                raise ctx.error(f"cannot split size {size} evenly into {n} outputs")
            sections = [size // n] * n
    if sum(sections) != size:
        raise ctx.error(f"split sizes {list(sections)} do not add up to the axis size {size}")
    if len(sections) != ctx.num_outputs:
        raise ctx.error(f"{len(sections)} split sizes for {ctx.num_outputs} outputs")
    if len(sections) == 1:
        return x
    return ctx.op("split", x, axis=axis, sections=tuple(int(s) for s in sections))


@converter("Slice")
def _slice(ctx: NodeContext):
    x = ctx.input(0)
    if ctx.opset < 10:
        starts, ends = list(ctx.attr("starts")), list(ctx.attr("ends"))
        axes, steps = ctx.attr("axes", None), None
    else:
        starts, ends = ctx.ints(1, "starts"), ctx.ints(2, "ends")
        axes = ctx.ints(3, "axes") if ctx.has_input(3) else None
        steps = ctx.ints(4, "steps") if ctx.has_input(4) else None
    axes = list(range(len(starts))) if axes is None else list(axes)
    steps = [1] * len(starts) if steps is None else list(steps)
    if not len(starts) == len(ends) == len(axes) == len(steps):
        raise ctx.error(f"starts {starts}, ends {ends}, axes {axes} and steps {steps} differ in length")
    if any(s == 0 for s in steps):
        raise ctx.error(f"steps {steps} contain 0")
    axes = list(norm_axes(ctx, axes, x.ndim))
    # clamp to [-dim-1, dim]: the same slice, without INT64_MAX sentinels in the IR
    starts = [max(-d - 1, min(d, int(s))) for s, d in zip(starts, (x.shape[a] for a in axes))]
    ends = [max(-d - 1, min(d, int(e))) for e, d in zip(ends, (x.shape[a] for a in axes))]
    if not axes:
        return x
    return ctx.op("slice", x, starts=tuple(starts), ends=tuple(ends), axes=tuple(axes), steps=tuple(steps))


@converter("Gather")
def _gather(ctx: NodeContext):
    x, idx = ctx.input(0), ctx.input(1)
    axis = norm_axis(ctx, int(ctx.attr("axis")), x.ndim)
    if idx.dtype not in ("i64", "i32"):
        raise ctx.error(f"indices must be int32 or int64, got {idx.dtype}")
    return ctx.op("gather", x, idx, axis=axis)


@converter("Expand")
def _expand(ctx: NodeContext):
    x = ctx.input(0)
    shape = ctx.ints(1, "shape")
    try:
        out = broadcast_shapes(x.shape, shape)
    except Exception:
        raise ctx.error(f"input {list(x.shape)} cannot be expanded to {shape}") from None
    return x if out == x.shape else ctx.op("broadcast_to", x, shape=out)


@converter("Tile")
def _tile(ctx: NodeContext):
    x = ctx.input(0)
    if ctx.opset < 6:  # Tile-1: inputs (input, tiles, axis): repeat `tiles` times along one axis
        axis = norm_axis(ctx, ctx.ints(2, "axis")[0], x.ndim)
        repeats = [1] * x.ndim
        repeats[axis] = ctx.ints(1, "tiles")[0]
    else:
        repeats = ctx.ints(1, "repeats")
    if len(repeats) != x.ndim:
        raise ctx.error(f"repeats {repeats} should have one entry per input dim ({x.ndim})")
    return x if all(r == 1 for r in repeats) else ctx.op("tile", x, repeats=tuple(repeats))


@converter("Pad")
def _pad(ctx: NodeContext):
    x = ctx.input(0)
    rank = x.ndim
    mode = ctx.attr("mode", "constant") or "constant"
    if mode not in ("constant", "reflect", "edge"):
        raise ctx.error(f"pad mode {mode!r} is not supported (constant, reflect, edge are)")
    if ctx.opset < 11:
        pads = [int(p) for p in ctx.attr("pads" if ctx.opset >= 2 else "paddings")]  # (named paddings in opset 1)
        value = float(ctx.attr("value", 0.0))
    else:
        pads = ctx.ints(1, "pads")
        value = 0
        if ctx.has_input(2):
            v = np.asarray(ctx.const(2, "constant_value")).reshape(-1)
            value = v[0].item() if v.size else 0
        if ctx.opset >= 18 and ctx.has_input(3):
            axes = norm_axes(ctx, ctx.ints(3, "axes"), rank)
            if len(pads) != 2 * len(axes):
                raise ctx.error(f"pads {pads} should have {2 * len(axes)} entries for axes {list(axes)}")
            full = [0] * (2 * rank)
            for k, a in enumerate(axes):
                full[a], full[rank + a] = pads[k], pads[len(axes) + k]
            pads = full
    if len(pads) != 2 * rank:
        raise ctx.error(f"pads {pads} should have {2 * rank} entries for a rank-{rank} input")
    if any(p < 0 for p in pads):  # negative pads crop: slice first, then pad what is left
        begins, ends = pads[:rank], pads[rank:]
        axes = [a for a in range(rank) if begins[a] < 0 or ends[a] < 0]
        starts = tuple(max(0, -begins[a]) for a in axes)
        stops = tuple(x.shape[a] - max(0, -ends[a]) for a in axes)
        x = ctx.op("slice", x, starts=starts, ends=stops, axes=tuple(axes), steps=(1,) * len(axes))
        pads = [max(0, p) for p in pads]
    if not any(pads):
        return x
    value = float(value) if dtypes.is_float(x.dtype) else (bool(value) if x.dtype == "bool" else int(value))
    return ctx.op("pad", x, pads=tuple(pads), mode=mode, value=value)
