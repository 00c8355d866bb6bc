"""Resize and Upsample, with static output sizes: constant interpolation at import time.

Resizing is separable: each resized axis maps output position o to a source coordinate
and reads a few input taps around it with fixed weights. With static shapes those taps
and weights are known at import time, so (exactly, and differentiably):

* nearest is a ``gather`` of the input along the axis at constant indices;
* linear and cubic (with antialias, exclude_outside, any cubic_coeff_a) multiply the
  axis by a constant [out, in] interpolation matrix (one ``matmul`` per axis).

The tap rules follow the ONNX reference (onnx.reference.ops.op_resize): the coordinate
transformation, the ratio forced to 1 at integer coordinates, the choice of the n taps
nearest the coordinate, edge clamping, and tf_crop_and_resize's extrapolation value.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ... import dtypes
from ...tensor import Tensor
from ..onnx import NodeContext, converter
from ._common import norm_axes

_COORDINATE_MODES = (
    "half_pixel", "half_pixel_symmetric", "pytorch_half_pixel", "align_corners", "asymmetric", "tf_crop_and_resize",
    "tf_half_pixel_for_nn",
)
_NEAREST_MODES = ("round_prefer_floor", "round_prefer_ceil", "floor", "ceil")


@dataclass(frozen=True)
class _Method:
    """How one axis interpolates: mode, its options, and the coordinate transformation."""

    mode: str  # nearest, linear, cubic
    coordinates: str
    nearest_mode: str = "round_prefer_floor"
    cubic_a: float = -0.75
    antialias: bool = False
    exclude_outside: bool = False


# ---------------------------------------------------------------------------------------
# one axis: source coordinates, taps and weights (numpy, float64)
# ---------------------------------------------------------------------------------------


def _source_coordinates(m: _Method, size: int, out: int, scale: float, roi: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
    """(x, outside): the input coordinate each output position samples, and where it lies outside the
    input (only tf_crop_and_resize extrapolates)."""
    y = np.arange(out, dtype=np.float64)
    length = scale * size  # the output length before rounding
    outside = np.zeros(out, bool)
    if m.coordinates == "align_corners":
        x = np.zeros(out) if length == 1 else y * (size - 1) / (length - 1)
    elif m.coordinates == "asymmetric":
        x = y / scale
    elif m.coordinates == "tf_half_pixel_for_nn":
        x = (y + 0.5) / scale
    elif m.coordinates == "pytorch_half_pixel":
        x = np.full(out, -0.5) if length == 1 else (y + 0.5) / scale - 0.5
    elif m.coordinates == "half_pixel":
        x = (y + 0.5) / scale - 0.5
    elif m.coordinates == "half_pixel_symmetric":  # the sampled region centred on the input
        x = size / 2 * (1 - out / length) + (y + 0.5) / scale - 0.5
    else:  # tf_crop_and_resize: sample the region roi = (start, end) of the input, in [0, 1] units
        start, end = roi
        x = np.full(out, (end - start) * (size - 1) / 2) if length == 1 else y * (end - start) * (size - 1) / (length - 1)
        x = x + start * (size - 1)
        outside = (x < 0) | (x > size - 1)
    return x, outside


def keys_cubic(a: float) -> tuple[list[float], list[float]]:
    """Keys' cubic convolution kernel as two polynomials in the distance t (highest power first):
    for t <= 1, and for 1 < t < 2 (0 beyond)."""
    return [a + 2, -(a + 3), 0.0, 1.0], [a, -5 * a, 8 * a, -4 * a]


def _cubic(t: np.ndarray, a: float) -> np.ndarray:
    """The cubic kernel at distances t."""
    near, far = keys_cubic(a)
    t = np.abs(t)
    return np.where(t <= 1, np.polyval(near, t), np.where(t < 2, np.polyval(far, t), 0.0))


def _weights(m: _Method, ratio: np.ndarray, scale: float) -> np.ndarray:
    """[out, n] tap weights; ratio in (0, 1] is the coordinate's distance past tap n/2 - 1."""
    r = ratio[:, None]
    if m.mode == "nearest":  # one-hot: the left tap, or the right one
        right = {"round_prefer_floor": r > 0.5, "round_prefer_ceil": r >= 0.5, "floor": r == 1, "ceil": r > 0}[m.nearest_mode]
        return np.concatenate([~right, right], axis=1).astype(np.float64)
    if not m.antialias:  # taps at floor(x) - 1 .. floor(x) + 2 (cubic) or floor(x), floor(x) + 1 (linear)
        if m.mode == "linear":
            return np.concatenate([1 - r, r], axis=1)
        return _cubic(np.array([[-1.0, 0.0, 1.0, 2.0]]) - r, m.cubic_a)
    # antialias (downsampling): the kernel stretched by 1 / scale, over all the taps it covers
    scale = min(scale, 1.0)
    support = 2 if m.mode == "cubic" else 1
    start = math.floor(-support / scale) + 1
    t = (np.arange(start, 2 - start)[None, :] - r) * scale
    w = _cubic(t, m.cubic_a) if m.mode == "cubic" else np.clip(1 - np.abs(t), 0, 1)
    return w / w.sum(axis=1, keepdims=True)


def _taps(m: _Method, size: int, out: int, scale: float, roi) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(indices [out, n] clamped into the input, weights [out, n], outside [out]) of one axis."""
    x, outside = _source_coordinates(m, size, out, scale, roi)
    # ratio in (0, 1]: an integer coordinate is the right end of the tap pair before it (ONNX's convention)
    ratio = np.where(x == np.floor(x), 1.0, x - np.floor(x))
    w = _weights(m, ratio, scale)
    n = w.shape[1]
    # the n positions nearest x, ties to the smaller ones (as ONNX's reference picks them)
    padded = x + math.ceil(n / 2)
    p = np.floor(padded)
    frac = padded - p
    if n % 2 == 0:
        first = p + np.where(frac == 0, -(n // 2), -(n // 2) + 1)
    else:
        first = p - (n - 1) // 2 + (frac > 0.5)
    idx = (first - math.ceil(n / 2)).astype(np.int64)[:, None] + np.arange(n)[None, :]
    if m.exclude_outside:
        w = np.where((idx < 0) | (idx >= size), 0.0, w)
        total = w.sum(axis=1, keepdims=True)
        w = w / np.where(total == 0, 1.0, total)
    return np.clip(idx, 0, size - 1), w, outside


# ---------------------------------------------------------------------------------------
# applying it
# ---------------------------------------------------------------------------------------


def _along(ctx: NodeContext, x: Tensor, axis: int, fn) -> Tensor:
    """fn applied to x with `axis` moved last (matmul and gather read the last axes)."""
    if axis == x.ndim - 1:
        return fn(x)
    perm = list(range(x.ndim))
    perm[axis], perm[-1] = perm[-1], perm[axis]
    return ctx.op("transpose", fn(ctx.op("transpose", x, perm=tuple(perm))), perm=tuple(perm))


def _resize_axis(ctx: NodeContext, x: Tensor, axis: int, idx: np.ndarray, w: np.ndarray) -> Tensor:
    size = x.shape[axis]
    if np.all(w.max(axis=1) == 1):  # one tap per output (nearest, or linear at integer coordinates)
        return ctx.op("gather", x, ctx.constant(idx[np.arange(len(idx)), w.argmax(axis=1)]), axis=axis)
    matrix = np.zeros((len(idx), size))
    np.add.at(matrix, (np.repeat(np.arange(len(idx)), idx.shape[1]), idx.ravel()), w.ravel())
    matrix = matrix.astype(dtypes.to_numpy(x.dtype))
    if axis == x.ndim - 2:  # [out, in] @ [..., in, W]
        return ctx.op("matmul", ctx.constant(matrix), x)
    return _along(ctx, x, axis, lambda t: ctx.op("matmul", t, ctx.constant(matrix.T)))


def _resample(ctx: NodeContext, x: Tensor, method: _Method, sizes, scales, roi, extrapolation: float = 0.0) -> Tensor:
    """x resized to `sizes` along every axis (`scales`: the per-axis scale factors, `roi`: per-axis
    (start, end) for tf_crop_and_resize)."""
    if method.mode != "nearest" and not dtypes.is_float(x.dtype):
        raise ctx.error(f"{method.mode} resizing needs a float input, got {x.dtype}")
    outside = None  # where tf_crop_and_resize samples outside the input (broadcasting against the output)
    for axis in range(x.ndim):
        size, out, scale = x.shape[axis], sizes[axis], scales[axis]
        if out == size and math.isclose(scale, 1.0) and tuple(roi[axis]) == (0.0, 1.0):
            continue  # identity along this axis
        if out == 0 or size == 0:
            raise ctx.error(f"cannot resize axis {axis} from {size} to {out} elements")
        idx, w, off = _taps(method, size, out, scale, roi[axis])
        x = _resize_axis(ctx, x, axis, idx, w)
        if off.any():
            off = off.reshape((-1,) + (1,) * (x.ndim - axis - 1))
            outside = off if outside is None else outside | off
    if outside is not None:
        x = ctx.op("where", ctx.constant(outside), ctx.scalar(extrapolation, x), x)
    return x


# ---------------------------------------------------------------------------------------
# Resize, Upsample
# ---------------------------------------------------------------------------------------


def _output_geometry(ctx: NodeContext, x: Tensor, axes, scales, sizes) -> tuple[list[int], list[float]]:
    """Output sizes and scale factors of every axis, from the node's scales or sizes over `axes`."""
    rank = x.ndim
    if (scales is None) == (sizes is None):
        raise ctx.error("needs exactly one of scales and sizes")
    given = scales if scales is not None else sizes
    if len(given) != len(axes):
        raise ctx.error(f"{'scales' if scales is not None else 'sizes'} {list(given)} should have one entry per axis of {list(axes)}")
    out_sizes, out_scales = list(x.shape), [1.0] * rank
    if scales is not None:
        for a, s in zip(axes, scales):
            if not s > 0:
                raise ctx.error(f"scales must be positive, got {list(scales)}")
            out_scales[a], out_sizes[a] = float(s), int(math.floor(s * x.shape[a]))
        return out_sizes, out_scales
    policy = ctx.attr("keep_aspect_ratio_policy", "stretch") or "stretch"
    if policy not in ("stretch", "not_larger", "not_smaller"):
        raise ctx.error(f"unknown keep_aspect_ratio_policy {policy!r}")
    ratios = [s / x.shape[a] for a, s in zip(axes, sizes)]
    if policy != "stretch":  # one scale for every resized axis, keeping the aspect ratio
        common = min(ratios) if policy == "not_larger" else max(ratios)
        ratios = [common] * len(axes)
        sizes = [int(common * x.shape[a] + 0.5) for a in axes]
    for a, s, r in zip(axes, sizes, ratios):
        out_sizes[a], out_scales[a] = int(s), r
    return out_sizes, out_scales


def _float_list(ctx: NodeContext, i: int, what: str) -> list[float] | None:
    """A float input as a list; absent or empty means not given."""
    if not ctx.has_input(i):
        return None
    values = [float(v) for v in np.asarray(ctx.const(i, what), np.float64).reshape(-1)]
    return values or None


@converter("Resize")
def _resize(ctx: NodeContext):
    x = ctx.input(0)
    mode = ctx.attr("mode", "nearest")
    if mode not in ("nearest", "linear", "cubic"):
        raise ctx.error(f"unknown mode {mode!r}")
    if ctx.opset < 11:  # Resize-10: Upsample's rules (asymmetric coordinates, floor)
        scales = _float_list(ctx, 1, "scales")
        return _upsample_like(ctx, x, mode, scales)
    coordinates = ctx.attr("coordinate_transformation_mode", "half_pixel")
    nearest_mode = ctx.attr("nearest_mode", "round_prefer_floor")
    if coordinates not in _COORDINATE_MODES:
        raise ctx.error(f"unknown coordinate_transformation_mode {coordinates!r}")
    if nearest_mode not in _NEAREST_MODES:
        raise ctx.error(f"unknown nearest_mode {nearest_mode!r}")
    axes = norm_axes(ctx, ctx.attr("axes", None) or range(x.ndim), x.ndim) if ctx.opset >= 18 else tuple(range(x.ndim))
    scales = _float_list(ctx, 2, "scales")
    sizes = (ctx.ints(3, "sizes") or None) if ctx.has_input(3) else None
    out_sizes, out_scales = _output_geometry(ctx, x, axes, scales, sizes)
    roi = [(0.0, 1.0)] * x.ndim
    if coordinates == "tf_crop_and_resize":
        given = _float_list(ctx, 1, "roi")
        if given is None or len(given) != 2 * len(axes):
            raise ctx.error(f"tf_crop_and_resize needs roi with {2 * len(axes)} entries (starts, then ends, of axes {list(axes)})")
        for k, a in enumerate(axes):
            roi[a] = (given[k], given[len(axes) + k])
    method = _Method(
        mode, coordinates, nearest_mode, float(ctx.attr("cubic_coeff_a", -0.75)),
        bool(ctx.attr("antialias", 0)) and mode != "nearest", bool(ctx.attr("exclude_outside", 0)),
    )
    return _resample(ctx, x, method, out_sizes, out_scales, roi, float(ctx.attr("extrapolation_value", 0.0)))


def _upsample_like(ctx: NodeContext, x: Tensor, mode: str, scales) -> Tensor:
    """Upsample and Resize-10: output size floor(in * scale), asymmetric coordinates; nearest rounds down."""
    if mode == "bilinear":
        mode = "linear"
    if mode not in ("nearest", "linear"):
        raise ctx.error(f"mode must be 'nearest' or 'linear', got {mode!r}")
    if scales is None:
        raise ctx.error("needs scales")
    sizes, factors = _output_geometry(ctx, x, tuple(range(x.ndim)), scales, None)
    return _resample(ctx, x, _Method(mode, "asymmetric", "floor"), sizes, factors, [(0.0, 1.0)] * x.ndim)


@converter("Upsample")
def _upsample(ctx: NodeContext):
    scales = ctx.attr("scales", None) if ctx.opset < 9 else _float_list(ctx, 1, "scales")
    return _upsample_like(ctx, ctx.input(0), ctx.attr("mode", "nearest"), scales)
