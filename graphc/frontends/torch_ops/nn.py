"""Linear algebra, convolution, pooling, normalization and attention ATen ops."""
from __future__ import annotations

import math

import numpy as np

from ... import dtypes
from ...tensor import Tensor
from ..torch import AtenContext, aten

# ---------------------------------------------------------------------------------------
# matrix products
# ---------------------------------------------------------------------------------------


def _channel_bias(ctx: AtenContext, y: Tensor, bias: Tensor | None, axis: int = 1) -> Tensor:
    """y + bias, with bias [C] broadcast along `axis` (1: channels of NCHW; -1: features)."""
    if bias is None:
        return y
    if axis == -1 or axis == y.ndim - 1:
        return ctx.op("add", y, bias)
    return ctx.op("add", y, ctx.op("reshape", bias, shape=(bias.shape[0],) + (1,) * (y.ndim - axis - 1)))


@aten("linear.default")
def _linear(ctx: AtenContext, x, weight, bias=None):
    return _channel_bias(ctx, ctx.op("linear", x, weight), bias, axis=-1)


@aten("matmul.default", "mm.default", "bmm.default")
def _matmul(ctx: AtenContext, x, other):
    return ctx.op("matmul", x, other)


@aten("addmm.default")
def _addmm(ctx: AtenContext, bias, mat1, mat2, beta=1, alpha=1):
    y = ctx.op("matmul", mat1, mat2)
    if alpha != 1:
        y = ctx.op("mul", y, ctx.operand(alpha, y.dtype))
    if beta == 0:  # torch ignores the bias then (even NaNs in it)
        return y
    return ctx.op("add", y, bias if beta == 1 else ctx.op("mul", bias, ctx.operand(beta, bias.dtype)))


# ---------------------------------------------------------------------------------------
# convolution (1-D runs as 2-D with a unit height)
# ---------------------------------------------------------------------------------------


def _pairs(spatial: int, **params) -> dict[str, tuple[int, int]]:
    """Window parameters (value, unit) as 2-D pairs; 1-D ones get the unit first (the lifted height)."""
    out = {}
    for name, (v, unit) in params.items():
        v = [int(x) for x in ([v] if isinstance(v, int) else v)]
        v = v * spatial if len(v) == 1 else v  # torch accepts one value for every spatial axis
        out[name] = tuple(v) if spatial == 2 else (unit, v[0])
    return out


def _conv(ctx: AtenContext, x, weight, bias, stride, padding, dilation, groups, transposed=False, output_padding=(0,)):
    spatial = x.ndim - 2
    if spatial not in (1, 2):
        raise ctx.error(f"only 1-D and 2-D convolutions are supported, got a rank-{x.ndim} input {list(x.shape)}")
    p = _pairs(spatial, stride=(stride, 1), padding=(padding, 0), dilation=(dilation, 1), output_padding=(output_padding, 0))
    if spatial == 1:
        x, weight = ctx.op("unsqueeze", x, axes=(2,)), ctx.op("unsqueeze", weight, axes=(2,))
    pad = p["padding"] + p["padding"]
    attrs = dict(stride=p["stride"], pad=pad, dilation=p["dilation"], groups=int(groups))
    if transposed:
        # a transposed convolution is the input-gradient of the convolution it transposes
        (h, w), (kh, kw) = x.shape[2:], weight.shape[2:]
        out_hw = [(n - 1) * s - 2 * q + d * (k - 1) + op + 1 for n, s, q, d, k, op in
                  zip((h, w), p["stride"], p["padding"], p["dilation"], (kh, kw), p["output_padding"])]
        input_shape = (x.shape[0], weight.shape[1] * int(groups), *out_hw)
        y = ctx.op("conv2d_grad_input", x, weight, input_shape=input_shape, **attrs)
    else:
        y = ctx.op("conv2d", x, weight, **attrs)
    y = _channel_bias(ctx, y, bias)
    return ctx.op("squeeze", y, axes=(2,)) if spatial == 1 else y


@aten("convolution.default")
def _convolution(ctx: AtenContext, x, weight, bias, stride, padding, dilation, transposed, output_padding, groups):
    return _conv(ctx, x, weight, bias, stride, padding, dilation, groups, transposed, output_padding)


@aten("conv2d.default")
def _conv2d(ctx: AtenContext, x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    return _conv(ctx, x, weight, bias, stride, padding, dilation, groups)


# ---------------------------------------------------------------------------------------
# pooling
# ---------------------------------------------------------------------------------------


def _batched(ctx: AtenContext, x: Tensor, pool) -> Tensor:
    """Apply a 4-D pool to a [C, H, W] or [N, C, H, W] tensor."""
    if x.ndim == 4:
        return pool(x)
    return ctx.op("squeeze", pool(ctx.op("unsqueeze", x, axes=(0,))), axes=(0,))


@aten("max_pool2d_with_indices.default")  # (max_pool2d decomposes to this)
def _max_pool2d(ctx: AtenContext, x, kernel_size, stride=(), padding=0, dilation=1, ceil_mode=False):
    p = _pairs(2, kernel=(kernel_size, 1), stride=(stride or kernel_size, 1), padding=(padding, 0), dilation=(dilation, 1))
    y = _batched(ctx, x, lambda t: ctx.op(
        "max_pool2d", t, kernel=p["kernel"], stride=p["stride"], pad=p["padding"] * 2, dilation=p["dilation"], ceil_mode=bool(ceil_mode)))
    return y, None  # the indices are not computed


@aten("avg_pool2d.default")
def _avg_pool2d(ctx: AtenContext, x, kernel_size, stride=(), padding=0, ceil_mode=False, count_include_pad=True, divisor_override=None):
    if divisor_override is not None:
        raise ctx.error(f"divisor_override={divisor_override} is not supported")
    p = _pairs(2, kernel=(kernel_size, 1), stride=(stride or kernel_size, 1), padding=(padding, 0))
    return _batched(ctx, x, lambda t: ctx.op(
        "avg_pool2d", t, kernel=p["kernel"], stride=p["stride"], pad=p["padding"] * 2,
        ceil_mode=bool(ceil_mode), count_include_pad=bool(count_include_pad)))


@aten("_adaptive_avg_pool2d.default")
def _adaptive_avg_pool2d(ctx: AtenContext, x, output_size):
    size = _pairs(2, output_size=(output_size, 1))["output_size"]
    return _batched(ctx, x, lambda t: ctx.op("adaptive_avg_pool2d", t, output_size=size))


# ---------------------------------------------------------------------------------------
# normalization
# ---------------------------------------------------------------------------------------


def _filled(ctx: AtenContext, t: Tensor | None, value: float, shape, dtype: str) -> Tensor:
    return t if t is not None else ctx.constant(np.full(shape, value, dtype=dtypes.to_numpy(dtype)))


@aten("_native_batch_norm_legit_no_training.default")
def _batch_norm(ctx: AtenContext, x, weight, bias, running_mean, running_var, momentum, eps):
    c = (x.shape[1],)
    scale, shift = _filled(ctx, weight, 1.0, c, x.dtype), _filled(ctx, bias, 0.0, c, x.dtype)
    return ctx.op("batch_norm", x, scale, shift, running_mean, running_var, eps=float(eps)), None, None


def _layer_norm_of(ctx: AtenContext, x, normalized_shape, weight, bias, eps) -> Tensor:
    shape = tuple(int(d) for d in normalized_shape)
    scale, shift = _filled(ctx, weight, 1.0, shape, x.dtype), _filled(ctx, bias, 0.0, shape, x.dtype)
    return ctx.op("layer_norm", x, scale, shift, axis=x.ndim - len(shape), eps=float(eps))


@aten("layer_norm.default")
def _layer_norm(ctx: AtenContext, x, normalized_shape, weight=None, bias=None, eps=1e-5, cudnn_enable=True):
    return _layer_norm_of(ctx, x, normalized_shape, weight, bias, eps)


@aten("native_layer_norm.default")
def _native_layer_norm(ctx: AtenContext, x, normalized_shape, weight, bias, eps):
    return _layer_norm_of(ctx, x, normalized_shape, weight, bias, eps), None, None  # mean, rstd: not computed


@aten("native_group_norm.default")
def _group_norm(ctx: AtenContext, x, weight, bias, n, c, hxw, group, eps):
    """Normalize each group of C/group channels (and all positions) to mean 0, variance 1, then scale per channel."""
    grouped = ctx.op("reshape", x, shape=(x.shape[0], group, math.prod(x.shape[1:]) // group))
    mean = ctx.op("mean", grouped, axes=(2,), keepdims=True)
    rstd = ctx.op("rsqrt", ctx.op("add", ctx.op("var", grouped, axes=(2,), keepdims=True), ctx.operand(float(eps), x.dtype)))
    y = ctx.op("reshape", ctx.op("mul", ctx.op("sub", grouped, mean), rstd), shape=x.shape)
    if weight is not None:
        y = ctx.op("mul", y, ctx.op("reshape", weight, shape=(x.shape[1],) + (1,) * (x.ndim - 2)))
    return _channel_bias(ctx, y, bias), None, None


# ---------------------------------------------------------------------------------------
# attention
# ---------------------------------------------------------------------------------------


def _repeat_heads(ctx: AtenContext, t: Tensor, times: int) -> Tensor:
    """[..., H, S, D] -> [..., H * times, S, D], each head repeated `times` times in place (repeat_interleave)."""
    *lead, h, s, d = t.shape
    wide = ctx.op("broadcast_to", ctx.op("unsqueeze", t, axes=(t.ndim - 2,)), shape=(*lead, h, times, s, d))
    return ctx.op("reshape", wide, shape=(*lead, h * times, s, d))


@aten("scaled_dot_product_attention.default")
def _sdpa(ctx: AtenContext, q, k, v, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None, enable_gqa=False):
    if dropout_p:
        raise ctx.error(f"dropout_p={dropout_p}: graphc imports attention for inference (export the module in eval mode)")
    if enable_gqa and q.ndim >= 3 and q.shape[-3] != k.shape[-3]:
        k, v = _repeat_heads(ctx, k, q.shape[-3] // k.shape[-3]), _repeat_heads(ctx, v, q.shape[-3] // v.shape[-3])
    args = [q, k, v]
    if attn_mask is not None:
        args.append(attn_mask if attn_mask.dtype == "bool" else ctx.cast(attn_mask, q.dtype))
    return ctx.op("scaled_dot_product_attention", *args, scale=None if scale is None else float(scale), causal=bool(is_causal))
