"""Sampling at runtime coordinates: GridSample, DeformConv, RoiAlign; and AffineGrid.

The coordinates are tensors, so the sampling is written with graphc ops: an image becomes a
table of pixels (rows: image and position, columns: channels); every interpolation tap is a
row index computed with floor / clip / integer arithmetic and read with one ``gather``; the
sample is the weighted sum of its taps (2^n for linear, 4^n for cubic, one for nearest).
Taps outside the image read 0, the border pixel, or a reflection, as the padding mode says.
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np

from ... import dtypes
from ...tensor import Tensor
from ..onnx import NodeContext, converter
from ._common import cast_to
from ._compose import stack
from .resize import keys_cubic

_CUBIC_A = -0.75  # GridSample's bicubic kernel (PyTorch's)


@dataclass
class _Table:
    """Images as a [images * prod(sizes), C] pixel table; `base` is each sample's image's first row."""

    rows: Tensor
    sizes: tuple[int, ...]
    base: Tensor  # i64, broadcasting against the sample coordinates


def _image_table(ctx: NodeContext, x: Tensor) -> Tensor:
    """[N, C, *S] -> [N * prod(S), C]."""
    channels_last = ctx.op("transpose", x, perm=(0, *range(2, x.ndim), 1))
    return ctx.op("reshape", channels_last, shape=(math.prod(x.shape) // x.shape[1], x.shape[1]))


def _image_base(ctx: NodeContext, images: tuple[int, ...], rows_per_image: int, sample_rank: int) -> Tensor:
    """i64 [*images, 1, ...] (rank sample_rank): the first table row of each image, the images
    numbered row-major over the leading sample axes `images`."""
    first = np.arange(math.prod(images), dtype=np.int64) * rows_per_image
    return ctx.constant(first.reshape(images + (1,) * (sample_rank - len(images))))


def _clip(ctx: NodeContext, t: Tensor, lo: float, hi: float) -> Tensor:
    return ctx.op("minimum", ctx.op("maximum", t, ctx.scalar(lo, t)), ctx.scalar(hi, t))


def _reflect(ctx: NodeContext, t: Tensor, lo: float, hi: float) -> Tensor:
    """t mirrored into [lo, hi] (repeatedly, as a triangle wave)."""
    span = hi - lo
    if span <= 0:  # a single position (lo == hi == 0)
        return ctx.op("mul", t, ctx.scalar(0, t))
    shifted = ctx.op("sub", t, ctx.scalar(lo, t))
    period = ctx.scalar(2 * span, t)
    phase = ctx.op("sub", shifted, ctx.op("mul", ctx.op("floor", ctx.op("div", shifted, period)), period))  # in [0, 2 span)
    return ctx.op("sub", ctx.scalar(lo + span, t), ctx.op("abs", ctx.op("sub", phase, ctx.scalar(span, t))))


def _cubic_weights(ctx: NodeContext, t: Tensor) -> list[Tensor]:
    """The cubic kernel at the distances of the taps floor - 1 .. floor + 2 (t = x - floor)."""
    near, far = keys_cubic(_CUBIC_A)

    def poly(coefficients, u):  # Horner
        acc = ctx.scalar(coefficients[0], u)
        for c in coefficients[1:]:
            acc = ctx.op("add", ctx.op("mul", acc, u), ctx.scalar(c, u))
        return acc

    one, two = ctx.scalar(1, t), ctx.scalar(2, t)
    return [poly(far, ctx.op("add", t, one)), poly(near, t), poly(near, ctx.op("sub", one, t)), poly(far, ctx.op("sub", two, t))]


@dataclass
class _Tap:
    index: Tensor  # i64 position along the axis, inside [0, size)
    weight: Tensor | None  # None: weight 1
    valid: Tensor | None  # bool; None: always (a tap outside the image reads 0 where not valid)


def _axis_taps(ctx: NodeContext, x: Tensor, size: int, mode: str, padding: str, bounds: tuple[float, float]) -> list[_Tap]:
    """The taps of one axis at (pixel) coordinates x: nearest (x already rounded), linear or cubic."""
    if mode == "nearest":
        positions, weights = [x], [None]
    else:
        first = ctx.op("floor", x)
        t = ctx.op("sub", x, first)
        offsets = (0, 1) if mode == "linear" else (-1, 0, 1, 2)
        positions = [ctx.op("add", first, ctx.scalar(o, first)) if o else first for o in offsets]
        weights = [ctx.op("sub", ctx.scalar(1, t), t), t] if mode == "linear" else _cubic_weights(ctx, t)
    taps = []
    for p, w in zip(positions, weights):
        valid = None
        if padding == "zeros":
            valid = ctx.op("logical_and", ctx.op("greater_equal", p, ctx.scalar(0, p)), ctx.op("less_equal", p, ctx.scalar(size - 1, p)))
        elif padding == "reflection":
            p = _reflect(ctx, p, *bounds)
        taps.append(_Tap(ctx.op("cast", _clip(ctx, p, 0, size - 1), dtype="i64"), w, valid))
    return taps


def _sample(ctx: NodeContext, table: _Table, coords: list[Tensor], mode: str, padding: str, bounds, combine: str = "sum") -> Tensor:
    """[*P, C]: the images sampled at per-axis pixel coordinates coords[i] (all shaped P): the sum of
    the weighted taps (combine="max": their maximum, RoiAlign's max mode)."""
    per_axis = [_axis_taps(ctx, x, size, mode, padding, b) for x, size, b in zip(coords, table.sizes, bounds)]
    strides = [math.prod(table.sizes[i + 1 :]) for i in range(len(table.sizes))]
    values = []
    for taps in itertools.product(*per_axis):
        row = table.base
        for tap, stride in zip(taps, strides):
            row = ctx.op("add", row, ctx.op("mul", tap.index, ctx.scalar(stride, tap.index)) if stride != 1 else tap.index)
        value = ctx.op("gather", table.rows, row, axis=0)
        weight = _product(ctx, [t.weight for t in taps if t.weight is not None])
        valid = _all(ctx, [t.valid for t in taps if t.valid is not None])
        if weight is not None:
            value = ctx.op("mul", value, ctx.op("unsqueeze", weight, axes=(weight.ndim,)))
        if valid is not None:
            value = ctx.op("where", ctx.op("unsqueeze", valid, axes=(valid.ndim,)), value, ctx.scalar(0, value))
        values.append(value)
    if combine == "sum":
        total = values[0]
        for v in values[1:]:
            total = ctx.op("add", total, v)
        return total
    # a reduction over the stacked taps (chained maximum ops would nest each operand's expression)
    return ctx.op("max", stack(ctx, values, values[0].ndim), axes=(values[0].ndim,))


def _product(ctx: NodeContext, ts: list[Tensor]) -> Tensor | None:
    out = None
    for t in ts:
        out = t if out is None else ctx.op("mul", out, t)
    return out


def _all(ctx: NodeContext, ts: list[Tensor]) -> Tensor | None:
    out = None
    for t in ts:
        out = t if out is None else ctx.op("logical_and", out, t)
    return out


def _channels_first(ctx: NodeContext, y: Tensor) -> Tensor:
    """[N, *P, C] -> [N, C, *P]."""
    return ctx.op("transpose", y, perm=(0, y.ndim - 1, *range(1, y.ndim - 1)))


# ---------------------------------------------------------------------------------------
# GridSample, AffineGrid
# ---------------------------------------------------------------------------------------


@converter("GridSample")
def _grid_sample(ctx: NodeContext):
    x, grid = ctx.input(0), ctx.input(1)
    n = x.ndim - 2
    if n < 1 or grid.shape != (x.shape[0], *grid.shape[1:-1], n) or grid.ndim != x.ndim:
        raise ctx.error(f"grid must be [N, *out, {n}] for an input {list(x.shape)}, got {list(grid.shape)}")
    if not (dtypes.is_float(x.dtype) and grid.dtype == x.dtype):
        raise ctx.error(f"input and grid must be floats of one dtype, got {x.dtype} and {grid.dtype}")
    mode = {"bilinear": "linear", "bicubic": "cubic"}.get(ctx.attr("mode", "linear"), ctx.attr("mode", "linear"))
    padding = ctx.attr("padding_mode", "zeros")
    if mode not in ("nearest", "linear", "cubic") or padding not in ("zeros", "border", "reflection"):
        raise ctx.error(f"unknown mode {mode!r} or padding_mode {padding!r}")
    align = bool(ctx.attr("align_corners", 0))
    sizes = x.shape[2:]
    coords, bounds = [], []
    for i, size in enumerate(sizes):  # the grid's last axis lists coordinates innermost axis first
        g = ctx.op("squeeze", ctx.op("slice", grid, starts=(n - 1 - i,), ends=(n - i,), axes=(grid.ndim - 1,)), axes=(grid.ndim - 1,))
        one = ctx.scalar(1, g)
        if align:  # -1 and 1 are the centres of the corner pixels
            c = ctx.op("mul", ctx.op("add", g, one), ctx.scalar((size - 1) / 2, g))
        else:  # -1 and 1 are the outer edges of the corner pixels
            c = ctx.op("div", ctx.op("sub", ctx.op("mul", ctx.op("add", g, one), ctx.scalar(size, g)), one), ctx.scalar(2, g))
        if mode == "nearest":
            c = ctx.op("round", c)  # halves to even, as PyTorch
        lo, hi = (0.0, size - 1.0) if align else (-0.5, size - 0.5)
        if padding != "zeros":  # coordinates outside [lo, hi] move in first
            outside = ctx.op("logical_or", ctx.op("less", c, ctx.scalar(lo, c)), ctx.op("greater", c, ctx.scalar(hi, c)))
            moved = _clip(ctx, c, 0, size - 1) if padding == "border" else _reflect(ctx, c, lo, hi)
            c = ctx.op("where", outside, moved, c)
        coords.append(c)
        bounds.append((lo, hi))
    table = _Table(_image_table(ctx, x), sizes, _image_base(ctx, x.shape[:1], math.prod(sizes), grid.ndim - 1))
    return _channels_first(ctx, _sample(ctx, table, coords, mode, padding, bounds))


@converter("AffineGrid")
def _affine_grid(ctx: NodeContext):
    """grid[n, ...] = theta[n] @ (x, y[, z], 1) over the output positions' normalized coordinates."""
    theta = ctx.input(0)
    size = ctx.ints(1, "size")
    n = len(size) - 2
    if n not in (2, 3) or theta.shape != (size[0], n, n + 1):
        raise ctx.error(f"theta must be [N, {n}, {n + 1}] for size {size}, got {list(theta.shape)}")
    spatial = size[2:]
    align = bool(ctx.attr("align_corners", 0))

    def normalized(d: int) -> np.ndarray:
        if align:
            return np.linspace(-1.0, 1.0, d) if d > 1 else np.array([-1.0])  # (ONNX: arange(-1, 1, 2/(d-1)))
        return (np.arange(d) * 2.0 + 1.0) / d - 1.0

    mesh = np.meshgrid(*(normalized(d) for d in spatial), indexing="ij")
    homogeneous = np.stack([*reversed(mesh), np.ones(spatial)], axis=-1).reshape(-1, n + 1)  # (x, y[, z], 1)
    theta_t = ctx.op("transpose", theta, perm=(0, 2, 1))
    grid = ctx.op("matmul", ctx.constant(homogeneous.astype(dtypes.to_numpy(theta.dtype))), theta_t)  # [N, positions, n]
    return ctx.op("reshape", grid, shape=(size[0], *spatial, n))


# ---------------------------------------------------------------------------------------
# DeformConv
# ---------------------------------------------------------------------------------------


@converter("DeformConv")
def _deform_conv(ctx: NodeContext):
    """A convolution whose taps read x (bilinearly, zeros outside) at offset positions, scaled by the mask."""
    x, w, offset = ctx.input(0), ctx.input(1), ctx.input(2)
    if x.ndim != 4 or w.ndim != 4:
        raise ctx.error(f"only 2-D DeformConv is supported (X [N, C, H, W], W [O, C/group, kH, kW]), got {list(x.shape)} and {list(w.shape)}")
    n, c, h, wd = x.shape
    o, cg, kh, kw = w.shape
    groups, offset_groups = int(ctx.attr("group", 1)), int(ctx.attr("offset_group", 1))
    if c != cg * groups or o % groups or c % offset_groups:
        raise ctx.error(f"weight {list(w.shape)} with group={groups}, offset_group={offset_groups} does not fit {c} input channels")
    sh, sw = ctx.attr("strides", None) or [1, 1]
    dh, dw = ctx.attr("dilations", None) or [1, 1]
    pads = ctx.attr("pads", None) or [0, 0, 0, 0]
    oh, ow = offset.shape[2:]
    if offset.shape != (n, offset_groups * kh * kw * 2, oh, ow):
        raise ctx.error(f"offset must be [N, offset_group * kH * kW * 2, oH, oW], got {list(offset.shape)}")
    # sampling positions [N, G, kH, kW, oH, oW]: window tap position plus the learned offset
    off = ctx.op("reshape", offset, shape=(n, offset_groups, kh, kw, 2, oh, ow))
    coords = []
    for axis, (pad, stride, dil, k, out) in enumerate(((pads[0], sh, dh, kh, oh), (pads[1], sw, dw, kw, ow))):
        tap = np.arange(k) * dil
        origin = np.arange(out) * stride - pad
        grid_shape = (1, 1, k, 1, out, 1) if axis == 0 else (1, 1, 1, k, 1, out)
        base = (tap.reshape((k, 1)) + origin.reshape((1, out))).reshape(grid_shape).astype(dtypes.to_numpy(x.dtype))
        shift = ctx.op("squeeze", ctx.op("slice", off, starts=(axis,), ends=(axis + 1,), axes=(4,)), axes=(4,))
        coords.append(ctx.op("add", shift, ctx.constant(base)))
    per_group = c // offset_groups
    images = ctx.op("reshape", x, shape=(n * offset_groups, per_group, h, wd))
    table = _Table(_image_table(ctx, images), (h, wd), _image_base(ctx, (n, offset_groups), h * wd, 6))
    samples = _sample(ctx, table, coords, "linear", "zeros", [(0.0, h - 1.0), (0.0, wd - 1.0)])  # [N, G, kH, kW, oH, oW, C/G]
    if ctx.has_input(4):
        mask = ctx.op("reshape", ctx.input(4), shape=(n, offset_groups, kh, kw, oh, ow, 1))
        samples = ctx.op("mul", samples, mask)
    # the convolution: [N, groups, oH * oW, (C / groups) * kH * kW] @ [groups, (C / groups) * kH * kW, O / groups]
    cols = ctx.op("transpose", samples, perm=(0, 4, 5, 1, 6, 2, 3))  # [N, oH, oW, G, C/G, kH, kW]
    cols = ctx.op("reshape", cols, shape=(n, oh * ow, groups, cg * kh * kw))
    cols = ctx.op("transpose", cols, perm=(0, 2, 1, 3))
    weights = ctx.op("transpose", ctx.op("reshape", w, shape=(groups, o // groups, cg * kh * kw)), perm=(0, 2, 1))
    y = ctx.op("matmul", cols, weights)  # [N, groups, oH * oW, O / groups]
    y = ctx.op("reshape", ctx.op("transpose", y, perm=(0, 1, 3, 2)), shape=(n, o, oh, ow))
    if ctx.has_input(3):
        y = ctx.op("add", y, ctx.op("reshape", ctx.input(3), shape=(o, 1, 1)))
    return y


# ---------------------------------------------------------------------------------------
# RoiAlign
# ---------------------------------------------------------------------------------------


def _roi_grid(ctx: NodeContext, rois: Tensor, column: int, bins: int, spatial_scale: float, half_pixel: bool, ratio: int):
    """Sample coordinates [R, bins * ratio] along one axis of every roi (columns `column` and `column + 2`
    of rois are its start and end), and the roi extents [R]."""
    offset = 0.5 if half_pixel else 0.0
    start, end = (
        ctx.op("sub", ctx.op("mul", ctx.op("slice", rois, starts=(c,), ends=(c + 1,), axes=(1,)), ctx.scalar(spatial_scale, rois)), ctx.scalar(offset, rois))
        for c in (column, column + 2)
    )
    extent = ctx.op("sub", end, start)
    if not half_pixel:  # malformed rois count as 1 pixel
        extent = ctx.op("maximum", extent, ctx.scalar(1.0, extent))
    fractions = (np.arange(bins)[:, None] + (np.arange(ratio)[None, :] + 0.5) / ratio).reshape(1, -1)  # in bins
    step = ctx.op("div", extent, ctx.scalar(bins, extent))
    return ctx.op("add", start, ctx.op("mul", step, ctx.constant(fractions.astype(dtypes.to_numpy(rois.dtype)))))


def _sampling_ratio(ctx: NodeContext, rois: Tensor, spatial_scale: float, out_h: int, out_w: int) -> tuple[int, int]:
    """Samples per bin along (y, x): the attribute, or (0) ceil(roi extent / bins), which must then be
    the same for every roi (a static shape) and needs the rois at import time."""
    ratio = int(ctx.attr("sampling_ratio", 0))
    if ratio > 0:
        return ratio, ratio
    boxes = np.asarray(ctx.const(1, "rois (sampling_ratio 0 sizes the sampling grid from them)"), np.float64) * spatial_scale
    counts = []
    for lo, hi, bins in ((1, 3, out_h), (0, 2, out_w)):
        per_roi = np.ceil(np.maximum(boxes[:, hi] - boxes[:, lo], 1.0) / bins).astype(int)
        if len(set(per_roi.tolist())) > 1:
            raise ctx.error(f"sampling_ratio 0 gives the rois different sampling grids {sorted(set(per_roi.tolist()))}; graphc needs one")
        counts.append(max(int(per_roi[0]), 1) if len(per_roi) else 1)
    return counts[0], counts[1]


@converter("RoiAlign")
def _roi_align(ctx: NodeContext):
    """Each roi's bins: the average (or max) of a ratio x ratio grid of bilinear samples."""
    x, rois, batch_indices = ctx.input(0), ctx.input(1), ctx.input(2)
    if x.ndim != 4 or rois.ndim != 2 or rois.shape[1] != 4 or batch_indices.shape != (rois.shape[0],):
        raise ctx.error(f"needs X [N, C, H, W], rois [R, 4] and batch_indices [R], got {list(x.shape)}, {list(rois.shape)}, {list(batch_indices.shape)}")
    mode = ctx.attr("mode", "avg")
    if mode not in ("avg", "max"):
        raise ctx.error(f"mode must be 'avg' or 'max', got {mode!r}")
    _, c, h, w = x.shape
    out_h, out_w = int(ctx.attr("output_height", 1)), int(ctx.attr("output_width", 1))
    spatial_scale = float(ctx.attr("spatial_scale", 1.0))
    half_pixel = ctx.opset >= 16 and ctx.attr("coordinate_transformation_mode", "half_pixel") == "half_pixel"
    ratio_h, ratio_w = _sampling_ratio(ctx, rois, spatial_scale, out_h, out_w)
    rois = cast_to(ctx, rois, x.dtype)
    ys = ctx.op("unsqueeze", _roi_grid(ctx, rois, 1, out_h, spatial_scale, half_pixel, ratio_h), axes=(2,))  # [R, P, 1]
    xs = ctx.op("unsqueeze", _roi_grid(ctx, rois, 0, out_w, spatial_scale, half_pixel, ratio_w), axes=(1,))  # [R, 1, Q]
    # a sample more than a pixel outside the image reads 0; others are clamped into it
    inside = [ctx.op("logical_and", ctx.op("greater_equal", t, ctx.scalar(-1.0, t)), ctx.op("less_equal", t, ctx.scalar(float(size), t))) for t, size in ((ys, h), (xs, w))]
    coords = [_clip(ctx, ys, 0, h - 1), _clip(ctx, xs, 0, w - 1)]
    image = cast_to(ctx, batch_indices, "i64")
    base = ctx.op("reshape", ctx.op("mul", image, ctx.scalar(h * w, image)), shape=(rois.shape[0], 1, 1))
    table = _Table(_image_table(ctx, x), (h, w), base)
    samples = _sample(ctx, table, coords, "linear", "border", [(0.0, h - 1.0), (0.0, w - 1.0)], combine="sum" if mode == "avg" else "max")
    valid = ctx.op("unsqueeze", ctx.op("logical_and", *inside), axes=(3,))
    samples = ctx.op("where", valid, samples, ctx.scalar(0, samples))  # [R, P, Q, C]
    samples = ctx.op("reshape", samples, shape=(rois.shape[0], out_h, ratio_h, out_w, ratio_w, c))
    pooled = ctx.op("mean" if mode == "avg" else "max", samples, axes=(2, 4))
    return _channels_first(ctx, pooled)
