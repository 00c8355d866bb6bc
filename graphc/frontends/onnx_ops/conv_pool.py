"""Convolution and pooling beyond graphc's 2-D ops, decomposed exactly onto them.

* Pooling is separable: a max or a sum over an N-d window is the same reduction done one
  spatial axis at a time. Each axis is a 1-D window op on the tensor viewed as [B, 1, L, R]:
  ``max_pool2d`` with a (k, 1) window for max, ``conv2d`` with a (k, 1) kernel of ones for
  sums (both take a dilation; padding is made explicit, so any width works, and ceil_mode
  just pads enough for the last window). Average pooling divides the sum by a constant: per
  output position, the window taps ONNX counts, a product over the axes. This serves 3-D
  MaxPool/AveragePool, dilated or widely padded AveragePool and LpPool.
* A 3-D convolution is a 2-D one over (H, W): the kernel's depth taps are stacked into the
  channels (depth im2col) and the output depths folded into the batch.
* A transposed convolution is ``conv2d_grad_input`` in 1-D and 2-D; in 3-D the convolution
  of the stride-dilated input with the flipped kernel. Col2Im is a transposed convolution
  with a one-hot kernel per channel.
* MaxPool's Indices output reads the row and column of each window's first maximum with
  ``max_pool2d_select`` and combines them into ONNX's flat index.
"""
from __future__ import annotations

import math

import numpy as np

from ... import dtypes
from ...ops.window import Axis
from ...tensor import Tensor
from ..onnx import NodeContext, converter
from ._common import cast_to, spatial_pads
from ._compose import stack

# ---------------------------------------------------------------------------------------
# window geometry from a node's attributes (any number of spatial axes)
# ---------------------------------------------------------------------------------------


def _ints_attr(ctx: NodeContext, name: str, n: int, default: int) -> list[int]:
    values = [int(v) for v in (ctx.attr(name, None) or [default] * n)]
    if len(values) != n:
        raise ctx.error(f"{name} {values} should have {n} entries (one per spatial axis)")
    return values


def _window_axes(ctx: NodeContext, x: Tensor, kernel) -> list[Axis]:
    """One `Axis` per spatial axis of x: kernel, strides, dilations, pads (or auto_pad), ceil_mode."""
    n = x.ndim - 2
    kernel = [int(k) for k in kernel]
    if n < 1 or len(kernel) != n:
        raise ctx.error(f"kernel {kernel} does not fit the input {list(x.shape)} ([N, C, spatial...])")
    strides, dilations = _ints_attr(ctx, "strides", n, 1), _ints_attr(ctx, "dilations", n, 1)
    begin, end = spatial_pads(ctx, x.shape[2:], kernel, strides, dilations)
    ceil = bool(ctx.attr("ceil_mode", 0))
    axes = [Axis(int(size), k, s, lo, hi, d, ceil) for size, k, s, lo, hi, d in zip(x.shape[2:], kernel, strides, begin, end, dilations)]
    for ax in axes:
        if min(ax.k, ax.s, ax.d) < 1 or min(ax.lo, ax.hi) < 0 or ax.out < 1:
            raise ctx.error(f"the window (kernel {kernel}, strides {strides}, dilations {dilations}, pads {begin + end}) does not fit the input {list(x.shape)}")
    return axes


def _end_pad(ax: Axis) -> int:
    """Padding after the input that the windows read (ceil_mode may read more than the pads; a
    negative value: trailing input no window reads)."""
    return (ax.out - 1) * ax.s + ax.extent - ax.size - ax.lo


# ---------------------------------------------------------------------------------------
# separable pooling: one spatial axis at a time
# ---------------------------------------------------------------------------------------


def _along_axis(ctx: NodeContext, x: Tensor, axis: int, fn) -> Tensor:
    """fn applied to x viewed as [B, 1, L, R] (L: `axis`), reshaped back with fn's new length."""
    lead, rest = math.prod(x.shape[:axis]), math.prod(x.shape[axis + 1 :])
    y = fn(ctx.op("reshape", x, shape=(lead, 1, x.shape[axis], rest)))
    return ctx.op("reshape", y, shape=x.shape[:axis] + (y.shape[2],) + x.shape[axis + 1 :])


def _lowest(x: Tensor) -> float:
    return -math.inf if dtypes.is_float(x.dtype) else int(np.iinfo(dtypes.to_numpy(x.dtype)).min)


def _window_max(ctx: NodeContext, x: Tensor, axis: int, ax: Axis) -> Tensor:
    def pool(v):
        hi = max(_end_pad(ax), 0)
        if ax.lo or hi:
            v = ctx.op("pad", v, pads=(0, 0, ax.lo, 0, 0, 0, hi, 0), value=_lowest(v))
        return ctx.op("max_pool2d", v, kernel=(ax.k, 1), stride=(ax.s, 1), dilation=(ax.d, 1))

    return _along_axis(ctx, x, axis, pool)


def _window_sum(ctx: NodeContext, x: Tensor, axis: int, ax: Axis) -> Tensor:
    ones = ctx.constant(np.ones((1, 1, ax.k, 1), dtypes.to_numpy(x.dtype)))

    def total(v):
        pad = (ax.lo, 0, max(_end_pad(ax), 0), 0)
        return ctx.op("conv2d", v, ones, stride=(ax.s, 1), pad=pad, dilation=(ax.d, 1))

    return _along_axis(ctx, x, axis, total)


def _pooled(ctx: NodeContext, x: Tensor, axes: list[Axis], reduce) -> Tensor:
    for i, ax in enumerate(axes):
        x = reduce(ctx, x, 2 + i, ax)
    return x


def _tap_counts(ax: Axis, include_pad: bool) -> np.ndarray:
    """[out]: the taps of each window that ONNX's average counts: those inside the input, or (with
    count_include_pad) inside the padded input; never the ceil_mode overhang past the pads."""
    taps = ax.taps()  # padded-input positions
    inside = (taps < ax.size + ax.lo + ax.hi) if include_pad else (taps >= ax.lo) & (taps < ax.lo + ax.size)
    return inside.sum(axis=1)


def average_pool(ctx: NodeContext) -> Tensor:
    """AveragePool of any rank, dilation and padding: a window sum over a constant tap count."""
    x = ctx.input(0)
    if not dtypes.is_float(x.dtype):
        raise ctx.error(f"needs a float input, got {x.dtype}")
    axes = _window_axes(ctx, x, ctx.attr("kernel_shape"))
    include_pad = bool(ctx.attr("count_include_pad", 0))
    counts = np.ones(())
    for ax in axes:
        counts = np.multiply.outer(counts, _tap_counts(ax, include_pad))
    total = _pooled(ctx, x, axes, _window_sum)
    return ctx.op("div", total, ctx.constant(counts.astype(dtypes.to_numpy(x.dtype))))


def needs_general_pool(ctx: NodeContext, x: Tensor, average: bool) -> bool:
    """Whether a MaxPool / AveragePool node is beyond graphc's 2-D pool ops (with the importer's
    explicit padding for wide pads): rank 5, a dilated average, MaxPool's Indices output, or pads
    wider than half the window that cannot be made explicit (with ceil_mode, or an average that
    does not count the padding)."""
    if x.ndim not in (3, 4) or (not average and ctx.output_used(1)):
        return True
    if average and any(d != 1 for d in (ctx.attr("dilations", None) or [])):
        return True
    wide = any(2 * max(ax.lo, ax.hi) > ax.extent for ax in _window_axes(ctx, x, ctx.attr("kernel_shape")))
    return wide and (bool(ctx.attr("ceil_mode", 0)) or (average and not ctx.attr("count_include_pad", 0)))


def max_pool(ctx: NodeContext):
    """MaxPool of any rank (separable), with the Indices output when it is used (rank <= 4)."""
    x = ctx.input(0)
    if x.dtype == "bool":
        raise ctx.error("needs a numeric input, got bool")
    axes = _window_axes(ctx, x, ctx.attr("kernel_shape"))
    y = _pooled(ctx, x, axes, _window_max)
    return (y, _max_indices(ctx, x, axes)) if ctx.output_used(1) else y


def _max_indices(ctx: NodeContext, x: Tensor, axes: list[Axis]) -> Tensor:
    """int64 flat index into x of each window's first maximum (storage_order 1: column-major rows and columns)."""
    if x.ndim > 4:
        raise ctx.error(f"the Indices output is supported for 1-D and 2-D pooling, not a rank-{x.ndim} input")
    one_d = x.ndim == 3
    if one_d:  # a single row
        x, axes = ctx.op("unsqueeze", x, axes=(2,)), [Axis(1, 1, 1, 0, 0)] + axes
    n, c, h, w = x.shape
    ah, aw = axes
    hi_h, hi_w = max(_end_pad(ah), 0), max(_end_pad(aw), 0)
    padded = ctx.op("pad", x, pads=(0, 0, ah.lo, aw.lo, 0, 0, hi_h, hi_w), value=_lowest(x))
    window = {"kernel": (ah.k, aw.k), "stride": (ah.s, aw.s), "dilation": (ah.d, aw.d)}
    # each window's maximum: its row and column numbers, read in a type holding them and x exactly
    narrow = x.dtype in ("f16", "bf16", "i8", "u8")
    source = ctx.op("cast", padded, dtype="f32") if narrow else padded
    np_dtype = dtypes.to_numpy(source.dtype)
    rows = np.arange(padded.shape[2]).reshape(-1, 1) - ah.lo
    cols = np.arange(padded.shape[3]).reshape(1, -1) - aw.lo
    row, col = (
        ctx.op("cast", ctx.op("max_pool2d_select", ctx.op("broadcast_to", ctx.constant(p.astype(np_dtype)), shape=padded.shape), source, **window), dtype="i64")
        for p in (rows, cols)
    )
    if ctx.attr("storage_order", 0):
        within = ctx.op("add", row, ctx.op("mul", col, ctx.scalar(h, col)))
    else:
        within = ctx.op("add", ctx.op("mul", row, ctx.scalar(w, row)), col)
    planes = ctx.constant((np.arange(n * c, dtype=np.int64) * h * w).reshape(n, c, 1, 1))
    index = ctx.op("add", within, planes)
    return ctx.op("squeeze", index, axes=(2,)) if one_d else index


@converter("LpPool")
def _lp_pool(ctx: NodeContext):
    """(sum over the window of |x|^p)^(1/p), the padding adding nothing."""
    x = ctx.input(0)
    if not dtypes.is_float(x.dtype):
        raise ctx.error(f"needs a float input, got {x.dtype}")
    p = float(ctx.attr("p", 2))
    if p <= 0:
        raise ctx.error(f"p must be positive, got {p}")
    axes = _window_axes(ctx, x, ctx.attr("kernel_shape"))
    powered = ctx.op("abs", x) if p == 1 else ctx.op("pow", ctx.op("abs", x), ctx.scalar(p, x))
    total = _pooled(ctx, powered, axes, _window_sum)
    if p == 1:
        return total
    return ctx.op("sqrt", total) if p == 2 else ctx.op("pow", total, ctx.scalar(1.0 / p, total))


# ---------------------------------------------------------------------------------------
# convolutions
# ---------------------------------------------------------------------------------------


def _conv3d(ctx: NodeContext, x: Tensor, w: Tensor, axes: list[Axis], groups: int) -> Tensor:
    """x [N, C, D, H, W] convolved with w [O, C/groups, KD, KH, KW] as one conv2d over (H, W):
    the KD depth taps of each output depth stacked into channels (c * KD + kd, matching w's
    layout), the output depths folded into the batch."""
    ad, ah, aw = axes
    n, c = x.shape[:2]
    o = w.shape[0]
    hi = _end_pad(ad)
    x = ctx.op("pad", x, pads=(0, 0, ad.lo, 0, 0, 0, 0, hi, 0, 0)) if ad.lo or hi else x
    taps = [ctx.op("slice", x, starts=(kd * ad.d,), ends=(kd * ad.d + (ad.out - 1) * ad.s + 1,), axes=(2,), steps=(ad.s,)) for kd in range(ad.k)]
    stacked = stack(ctx, taps, 2)  # [N, C, KD, OD, H, W]
    folded = ctx.op("reshape", ctx.op("transpose", stacked, perm=(0, 3, 1, 2, 4, 5)), shape=(n * ad.out, c * ad.k, *x.shape[3:]))
    w2 = ctx.op("reshape", w, shape=(o, w.shape[1] * ad.k, ah.k, aw.k))
    y = ctx.op(
        "conv2d", folded, w2, stride=(ah.s, aw.s), pad=(ah.lo, aw.lo, ah.hi, aw.hi), dilation=(ah.d, aw.d), groups=groups,
    )
    y = ctx.op("reshape", y, shape=(n, ad.out, o, ah.out, aw.out))
    return ctx.op("transpose", y, perm=(0, 2, 1, 3, 4))


def conv(ctx: NodeContext) -> Tensor:
    """Conv of a 3-D input ([N, C, D, H, W])."""
    x, w = ctx.input(0), ctx.input(1)
    if w.ndim != x.ndim:
        raise ctx.error(f"weight {list(w.shape)} and input {list(x.shape)} ranks differ")
    _check_kernel_shape(ctx, w)
    axes = _window_axes(ctx, x, w.shape[2:])
    groups = int(ctx.attr("group", 1))
    if x.shape[1] != w.shape[1] * groups or w.shape[0] % groups:
        raise ctx.error(f"weight {list(w.shape)} does not fit {x.shape[1]} input channels in {groups} groups")
    y = _conv3d(ctx, x, w, axes, groups)
    return _add_channel_bias(ctx, y)


def _check_kernel_shape(ctx: NodeContext, w: Tensor) -> None:
    given = ctx.attr("kernel_shape", None)
    if given and list(given) != list(w.shape[2:]):
        raise ctx.error(f"kernel_shape {list(given)} does not match the weight's {list(w.shape[2:])}")


def _add_channel_bias(ctx: NodeContext, y: Tensor, index: int = 2) -> Tensor:
    if not ctx.has_input(index):
        return y
    bias = ctx.input(index)
    return ctx.op("add", y, ctx.op("reshape", bias, shape=(bias.shape[0],) + (1,) * (y.ndim - 2)))


def _dilate(ctx: NodeContext, x: Tensor, axis: int, stride: int) -> Tensor:
    """stride - 1 zeros between the elements of x along axis."""
    if stride == 1:
        return x
    length = x.shape[axis]
    spread = ctx.op("unsqueeze", x, axes=(axis + 1,))
    pads = [0] * (2 * spread.ndim)
    pads[spread.ndim + axis + 1] = stride - 1
    spread = ctx.op("pad", spread, pads=tuple(pads))
    merged = ctx.op("reshape", spread, shape=x.shape[:axis] + (length * stride,) + x.shape[axis + 1 :])
    return ctx.op("slice", merged, starts=(0,), ends=((length - 1) * stride + 1,), axes=(axis,))


def _transposed_conv(ctx: NodeContext, x: Tensor, w: Tensor, strides, dilations, begin, end, groups: int) -> Tensor:
    """x [N, Cin, spatial...] transposed-convolved with w [Cin, Cout/groups, k...]; the full output
    (length (in - 1) * stride + extent per axis) cropped by `begin` / `end` (negative: zeros added)."""
    if x.ndim == 5:
        return _conv_transpose_3d(ctx, x, w, strides, dilations, begin, end, groups)
    lifted = x.ndim == 3
    if lifted:
        x, w = ctx.op("unsqueeze", x, axes=(2,)), ctx.op("unsqueeze", w, axes=(2,))
        strides, dilations, begin, end = [1, *strides], [1, *dilations], [0, *begin], [0, *end]
    extents = [(k - 1) * d + 1 for k, d in zip(w.shape[2:], dilations)]
    # conv2d_grad_input crops by the non-negative pads; what is left to add is zeros
    inner = [max(b, 0) for b in begin] + [max(e, 0) for e in end]
    sizes = [(x.shape[2 + i] - 1) * strides[i] + extents[i] - inner[i] - inner[2 + i] for i in range(2)]
    y = ctx.op(
        "conv2d_grad_input", x, w, stride=tuple(strides), pad=tuple(inner), dilation=tuple(dilations), groups=groups,
        input_shape=(x.shape[0], w.shape[1] * groups, *sizes),
    )
    zeros = [max(-b, 0) for b in begin] + [max(-e, 0) for e in end]
    if any(zeros):
        y = ctx.op("pad", y, pads=(0, 0, zeros[0], zeros[1], 0, 0, zeros[2], zeros[3]))
    return ctx.op("squeeze", y, axes=(2,)) if lifted else y


def _conv_transpose_3d(ctx: NodeContext, x: Tensor, w: Tensor, strides, dilations, begin, end, groups: int) -> Tensor:
    """The convolution of the stride-dilated input, padded by extent - 1 - pad per side (negative:
    cropped), with the flipped kernel whose in and out channels are swapped within each group."""
    kernel = w.shape[2:]
    for i, s in enumerate(strides):
        x = _dilate(ctx, x, 2 + i, s)
    cin, per_group = w.shape[:2]
    swapped = ctx.op("transpose", ctx.op("reshape", w, shape=(groups, cin // groups, per_group, *kernel)), perm=(0, 2, 1, 3, 4, 5))
    flipped = ctx.op(
        "slice", ctx.op("reshape", swapped, shape=(groups * per_group, cin // groups, *kernel)),
        starts=(-1,) * 3, ends=(-(2**62),) * 3, axes=(2, 3, 4), steps=(-1,) * 3,
    )
    lo = [(k - 1) * d - b for k, d, b in zip(kernel, dilations, begin)]
    hi = [(k - 1) * d - e for k, d, e in zip(kernel, dilations, end)]
    if min(lo + hi) < 0:  # padding by a negative amount crops
        crops = [min(p, 0) for p in lo + hi]
        x = ctx.op("pad", x, pads=(0, 0, *crops[:3], 0, 0, *crops[3:]))
        lo, hi = [max(p, 0) for p in lo], [max(p, 0) for p in hi]
    axes = [Axis(x.shape[2 + i], kernel[i], 1, lo[i], hi[i], dilations[i]) for i in range(3)]
    return _conv3d(ctx, x, flipped, axes, groups)


def _transposed_pads(ctx: NodeContext, sizes, kernel, strides, dilations, output_padding) -> tuple[list[int], list[int]]:
    """How much of the full transposed-convolution output each side crops (negative: extends it with
    zeros): the pads, or what output_shape / SAME auto_pad ask for; output_padding given back at the end."""
    n = len(sizes)
    auto_pad = ctx.attr("auto_pad", "NOTSET") or "NOTSET"
    output_shape = ctx.attr("output_shape", None)
    if output_shape is not None or auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        full = [(size - 1) * s + (k - 1) * d + 1 for size, s, k, d in zip(sizes, strides, kernel, dilations)]
        shape = list(output_shape)[-n:] if output_shape is not None else [size * s for size, s in zip(sizes, strides)]
        total = [f + p - o for f, p, o in zip(full, output_padding, shape)]
        small, large = [t // 2 for t in total], [t - t // 2 for t in total]
        begin, end = (small, large) if auto_pad == "SAME_UPPER" else (large, small)
    elif auto_pad == "VALID":
        begin, end = [0] * n, [0] * n
    else:
        pads = _ints_attr(ctx, "pads", 2 * n, 0)
        begin, end = pads[:n], pads[n:]
    return begin, [e - p for e, p in zip(end, output_padding)]


@converter("ConvTranspose")
def _conv_transpose(ctx: NodeContext):
    x, w = ctx.input(0), ctx.input(1)
    n = x.ndim - 2
    if n not in (1, 2, 3) or w.ndim != x.ndim:
        raise ctx.error(f"needs an input [N, C, spatial...] with 1 to 3 spatial axes and a weight of the same rank, got {list(x.shape)} and {list(w.shape)}")
    groups = int(ctx.attr("group", 1))
    if w.shape[0] != x.shape[1] or x.shape[1] % groups:
        raise ctx.error(f"weight {list(w.shape)} ([C_in, C_out / group, k...]) does not fit {x.shape[1]} input channels in {groups} groups")
    _check_kernel_shape(ctx, w)
    kernel = list(w.shape[2:])
    strides, dilations = _ints_attr(ctx, "strides", n, 1), _ints_attr(ctx, "dilations", n, 1)
    output_padding = _ints_attr(ctx, "output_padding", n, 0)
    begin, end = _transposed_pads(ctx, x.shape[2:], kernel, strides, dilations, output_padding)
    y = _transposed_conv(ctx, x, w, strides, dilations, begin, end, groups)
    return _add_channel_bias(ctx, y)


@converter("Col2Im")
def _col2im(ctx: NodeContext):
    """[N, C * prod(block), L] columns summed back into [N, C, *image_shape]: the transposed
    convolution of the columns (as [N, C * prod(block), *windows]) with a one-hot kernel per channel."""
    cols = ctx.input(0)
    image, block = ctx.ints(1, "image_shape"), ctx.ints(2, "block_shape")
    n = len(image)
    if len(block) != n or cols.ndim != 3 or cols.shape[1] % math.prod(block):
        raise ctx.error(f"input {list(cols.shape)} does not hold [N, C * prod(block_shape {block}), L] columns")
    strides, dilations = _ints_attr(ctx, "strides", n, 1), _ints_attr(ctx, "dilations", n, 1)
    pads = _ints_attr(ctx, "pads", 2 * n, 0)
    axes = [Axis(size, k, s, lo, hi, d) for size, k, s, lo, hi, d in zip(image, block, strides, pads[:n], pads[n:], dilations)]
    windows = [ax.out for ax in axes]
    if math.prod(windows) != cols.shape[2]:
        raise ctx.error(f"the {block} blocks over a {image} image padded by {pads} give {math.prod(windows)} windows, the input has {cols.shape[2]}")
    channels, taps = cols.shape[1] // math.prod(block), math.prod(block)
    one_hot = np.eye(taps, dtype=dtypes.to_numpy(cols.dtype)).reshape(taps, 1, *block)
    w = ctx.constant(np.tile(one_hot, (channels, 1) + (1,) * n))  # [C * taps, 1, *block]
    x = ctx.op("reshape", cols, shape=(cols.shape[0], cols.shape[1], *windows))
    begin = [ax.lo for ax in axes]
    end = [(ax.out - 1) * ax.s + ax.extent - ax.lo - ax.size for ax in axes]
    return _transposed_conv(ctx, x, w, strides, dilations, begin, end, channels)


@converter("MaxUnpool")
def _max_unpool(ctx: NodeContext):
    """Zeros of the pooled input's shape with X written at the flat positions I, then (as the
    ONNX reference does) padded with zeros at the end of each axis to output_shape."""
    x, indices = ctx.input(0), ctx.input(1)
    n = x.ndim - 2
    if indices.shape != x.shape or indices.dtype not in ("i32", "i64"):
        raise ctx.error(f"indices must be an int tensor shaped like X {list(x.shape)}, got {indices.type}")
    kernel = _ints_attr(ctx, "kernel_shape", n, 1)
    strides = _ints_attr(ctx, "strides", n, 1)
    pads = _ints_attr(ctx, "pads", 2 * n, 0)
    inferred = (*x.shape[:2], *((size - 1) * s - pads[i] - pads[n + i] + k for i, (size, s, k) in enumerate(zip(x.shape[2:], strides, kernel))))
    zeros = ctx.op("broadcast_to", ctx.scalar(0, x), shape=(1, math.prod(inferred)))
    flat = ctx.op("scatter_elements", zeros, ctx.op("reshape", indices, shape=(1, x.type.numel)), ctx.op("reshape", x, shape=(1, x.type.numel)), axis=1)
    y = ctx.op("reshape", flat, shape=inferred)
    if not ctx.has_input(2):
        return y
    shape = ctx.ints(2, "output_shape")
    if len(shape) != x.ndim or any(o < i for o, i in zip(shape, inferred)):
        raise ctx.error(f"output_shape {shape} must have rank {x.ndim} and be at least the unpooled shape {list(inferred)}")
    extra = tuple(o - i for o, i in zip(shape, inferred))
    return ctx.op("pad", y, pads=(0,) * x.ndim + extra) if any(extra) else y


@converter("CausalConvWithState")
def _causal_conv_with_state(ctx: NodeContext):
    """Depthwise 1-D convolution over [past (or zeros), input] (valid: one output per input step),
    optionally followed by SiLU; present_state is the last k - 1 steps of that sequence."""
    x, w = ctx.input(0), ctx.input(1)
    if x.ndim != 3 or w.ndim != 3 or w.shape[:2] != (x.shape[1], 1):
        raise ctx.error(f"needs input [B, C, L] and weight [C, 1, k], got {list(x.shape)} and {list(w.shape)}")
    activation = ctx.attr("activation", "none") or "none"
    if activation not in ("none", "silu", "swish"):
        raise ctx.error(f"activation must be 'none', 'silu' or 'swish', got {activation!r}")
    batch, channels, length = x.shape
    carry = w.shape[2] - 1
    if ctx.has_input(3):
        past = ctx.input(3)
        if past.shape != (batch, channels, carry):
            raise ctx.error(f"past_state must be [{batch}, {channels}, {carry}], got {list(past.shape)}")
        sequence = ctx.op("concat", past, x, axis=2) if carry else x
    else:
        sequence = ctx.op("pad", x, pads=(0, 0, carry, 0, 0, 0)) if carry else x
    # 16-bit inputs accumulate in f32 (as the ONNX reference does), rounding once at the end
    compute = "f32" if x.dtype in ("f16", "bf16") else x.dtype
    seq32, w32 = (cast_to(ctx, t, compute) for t in (sequence, w))
    y = ctx.op("conv2d", ctx.op("unsqueeze", seq32, axes=(2,)), ctx.op("unsqueeze", w32, axes=(2,)), groups=channels)
    y = ctx.op("squeeze", y, axes=(2,))
    if ctx.has_input(2):
        bias = ctx.input(2)
        y = ctx.op("add", y, ctx.op("reshape", cast_to(ctx, bias, compute), shape=(channels, 1)))
    if activation != "none":
        y = ctx.op("silu", y)
    present = ctx.op("slice", sequence, starts=(length,), ends=(length + carry,), axes=(2,))
    return cast_to(ctx, y, x.dtype), present
