"""Normalization ONNX ops beyond Batch/LayerNormalization: GroupNormalization, InstanceNormalization,
RMSNormalization, MeanVarianceNormalization, LpNormalization, LRN, Hardmax; and LayerNormalization's
optional Mean / InvStdDev outputs.

Instance and group normalization normalize the trailing axes of a (reshaped) input, then apply
their per-channel scale and bias.
"""
from __future__ import annotations

import math

import numpy as np

from ... import dtypes
from ...tensor import Tensor
from ..onnx import NodeContext, converter, graphc_dtype
from ._common import cast_to, norm_axes, norm_axis


def _stash_dtype(ctx: NodeContext, x: Tensor) -> str:
    """The float type statistics are computed in (stash_type)."""
    stash = graphc_dtype(int(ctx.attr("stash_type", 1)), f"{ctx.importer.where}: {ctx.describe()}: stash_type")
    if not dtypes.is_float(stash):
        raise ctx.error(f"stash_type must be a float type, got {stash}")
    return stash


def _check_float(ctx: NodeContext, x: Tensor) -> None:
    if not dtypes.is_float(x.dtype):
        raise ctx.error(f"needs a float input, got {x.dtype}")


def layer_norm_statistics(ctx: NodeContext, x: Tensor, axis: int, eps: float) -> tuple[Tensor, Tensor]:
    """LayerNormalization's Mean and InvStdDev outputs: over axes [axis, rank), kept as unit dims,
    in the node's stash_type."""
    xs = cast_to(ctx, x, _stash_dtype(ctx, x))
    axes = tuple(range(axis, x.ndim))
    mean = ctx.op("mean", xs, axes=axes, keepdims=True)
    var = ctx.op("var", xs, axes=axes, keepdims=True)
    return mean, ctx.op("rsqrt", ctx.op("add", var, ctx.scalar(eps, var)))


def _normalize_trailing(ctx: NodeContext, x: Tensor, lead: int, eps: float) -> Tensor:
    """(x - mean) / sqrt(var + eps) over all axes after the first `lead` ones."""
    axes = tuple(range(lead, x.ndim))
    centered = ctx.op("sub", x, ctx.op("mean", x, axes=axes, keepdims=True))
    var = ctx.op("var", x, axes=axes, keepdims=True)
    return ctx.op("mul", centered, ctx.op("rsqrt", ctx.op("add", var, ctx.scalar(eps, var))))


def _per_channel(ctx: NodeContext, y: Tensor, p: Tensor, what: str) -> Tensor:
    """p[C] reshaped to broadcast over y's channel axis (axis 1)."""
    if p.shape != (y.shape[1],):
        raise ctx.error(f"{what} must have one value per channel ({y.shape[1]}), got {list(p.shape)}")
    return ctx.op("reshape", cast_to(ctx, p, y.dtype), shape=(y.shape[1],) + (1,) * (y.ndim - 2))


def _channel_affine(ctx: NodeContext, y: Tensor, scale: Tensor, bias: Tensor) -> Tensor:
    return ctx.op("add", ctx.op("mul", y, _per_channel(ctx, y, scale, "scale")), _per_channel(ctx, y, bias, "bias"))


@converter("InstanceNormalization")
def _instance_norm(ctx: NodeContext):
    x = ctx.input(0)
    _check_float(ctx, x)
    if x.ndim < 3:
        raise ctx.error(f"input must be [N, C, d1, ...] (rank >= 3), got {list(x.shape)}")
    y = _normalize_trailing(ctx, x, 2, float(ctx.attr("epsilon", 1e-5)))
    return _channel_affine(ctx, y, ctx.input(1), ctx.input(2))


@converter("GroupNormalization")
def _group_norm(ctx: NodeContext):
    """Normalized over each group of C / num_groups channels (and the spatial axes), in stash_type,
    then scaled and shifted per channel. (Opset 18's per-group scale is deprecated: onnx rejects it.)"""
    x, scale, bias = ctx.input(0), ctx.input(1), ctx.input(2)
    _check_float(ctx, x)
    groups = int(ctx.attr("num_groups"))
    if x.ndim < 2 or groups <= 0 or x.shape[1] % groups:
        raise ctx.error(f"num_groups {groups} must divide the channels of {list(x.shape)}")
    grouped = ctx.op("reshape", cast_to(ctx, x, _stash_dtype(ctx, x)), shape=(x.shape[0], groups, math.prod(x.shape[1:]) // groups))
    y = ctx.op("reshape", _normalize_trailing(ctx, grouped, 2, float(ctx.attr("epsilon", 1e-5))), shape=x.shape)
    return _channel_affine(ctx, cast_to(ctx, y, x.dtype), scale, bias)


@converter("RMSNormalization")
def _rms_norm(ctx: NodeContext):
    x, scale = ctx.input(0), ctx.input(1)
    _check_float(ctx, x)
    axis = norm_axis(ctx, int(ctx.attr("axis", -1)), x.ndim)
    xs = cast_to(ctx, x, _stash_dtype(ctx, x))
    mean_square = ctx.op("mean", ctx.op("mul", xs, xs), axes=tuple(range(axis, x.ndim)), keepdims=True)
    rms = ctx.op("rsqrt", ctx.op("add", mean_square, ctx.scalar(float(ctx.attr("epsilon", 1e-5)), mean_square)))
    return ctx.op("mul", cast_to(ctx, ctx.op("mul", xs, rms), x.dtype), cast_to(ctx, scale, x.dtype))


@converter("MeanVarianceNormalization")
def _mean_variance_norm(ctx: NodeContext):
    """(x - mean) / (std + 1e-9) over `axes`."""
    x = ctx.input(0)
    _check_float(ctx, x)
    axes = tuple(sorted(norm_axes(ctx, ctx.attr("axes", None) or [0, 2, 3], x.ndim)))
    centered = ctx.op("sub", x, ctx.op("mean", x, axes=axes, keepdims=True))
    std = ctx.op("sqrt", ctx.op("var", x, axes=axes, keepdims=True))
    return ctx.op("div", centered, ctx.op("add", std, ctx.scalar(1e-9, std)))


@converter("LpNormalization")
def _lp_norm(ctx: NodeContext):
    """x / ||x||_p along axis (p is 1 or 2); a zero norm gives 0."""
    x = ctx.input(0)
    _check_float(ctx, x)
    axis = norm_axis(ctx, int(ctx.attr("axis", -1)), x.ndim)
    p = int(ctx.attr("p", 2))
    if p == 1:
        norm = ctx.op("sum", ctx.op("abs", x), axes=(axis,), keepdims=True)
    elif p == 2:
        norm = ctx.op("sqrt", ctx.op("sum", ctx.op("mul", x, x), axes=(axis,), keepdims=True))
    else:
        raise ctx.error(f"p must be 1 or 2, got {p}")
    zero = ctx.op("equal", norm, ctx.scalar(0, norm))
    return ctx.op("where", zero, ctx.scalar(0, x), ctx.op("div", x, ctx.op("where", zero, ctx.scalar(1, norm), norm)))


@converter("LRN")
def _lrn(ctx: NodeContext):
    """x / (bias + alpha / size * sum of x^2 over the channel window) ^ beta.

    The window sum is an average pool (counting the zero padding) along the channels, times size."""
    x = ctx.input(0)
    _check_float(ctx, x)
    if x.ndim < 2:
        raise ctx.error(f"input must be [N, C, ...] (rank >= 2), got {list(x.shape)}")
    size = int(ctx.attr("size"))
    if size < 1:
        raise ctx.error(f"size must be >= 1, got {size}")
    n, c = x.shape[:2]
    squares = ctx.op("reshape", ctx.op("mul", x, x), shape=(n, 1, c, math.prod(x.shape[2:])))
    lo, hi = (size - 1) // 2, size // 2  # channels before and after each one in its window
    mean = ctx.op("avg_pool2d", squares, kernel=(size, 1), stride=(1, 1), pad=(lo, 0, hi, 0), count_include_pad=True)
    alpha, beta, bias = (float(ctx.attr(a)) for a in ("alpha", "beta", "bias"))
    base = ctx.op("add", ctx.op("mul", ctx.op("reshape", mean, shape=x.shape), ctx.scalar(alpha, x)), ctx.scalar(bias, x))
    return ctx.op("div", x, ctx.op("pow", base, ctx.scalar(beta, x)))


@converter("Hardmax")
def _hardmax(ctx: NodeContext):
    """1 at the first maximum along axis, 0 elsewhere (opset < 13: of the input flattened to 2-D at axis)."""
    x = ctx.input(0)
    axis = norm_axis(ctx, int(ctx.attr("axis", -1 if ctx.opset >= 13 else 1)), x.ndim)
    work = x
    if ctx.opset < 13 and axis != x.ndim - 1:
        work = ctx.op("reshape", x, shape=(math.prod(x.shape[:axis]), math.prod(x.shape[axis:])))
        axis = 1
    first = ctx.op("argmax", work, axis=axis, keepdims=True)
    positions = np.arange(work.shape[axis], dtype=dtypes.to_numpy(first.dtype)).reshape((-1,) + (1,) * (work.ndim - axis - 1))
    y = ctx.op("cast", ctx.op("equal", first, ctx.constant(positions)), dtype=x.dtype)
    return y if y.shape == x.shape else ctx.op("reshape", y, shape=x.shape)
