"""Linear algebra, convolution, pooling and normalization ONNX ops."""
from __future__ import annotations

import math

import numpy as np

from ... import dtypes
from ..onnx import NodeContext, converter
from ._common import Window, norm_axis
from .conv_pool import average_pool, conv, max_pool, needs_general_pool
from .normalization import layer_norm_statistics


@converter("MatMul")
def _matmul(ctx: NodeContext):
    return ctx.op("matmul", ctx.input(0), ctx.input(1))


@converter("Gemm")
def _gemm(ctx: NodeContext):
    """Y = alpha * A' @ B' + beta * C, with linear(x, w[N,K]) = x @ w.T."""
    a, b = ctx.input(0), ctx.input(1)
    if a.ndim != 2 or b.ndim != 2:
        raise ctx.error(f"Gemm needs 2-D A and B, got {list(a.shape)} and {list(b.shape)}")
    if ctx.attr("transA"):
        a = ctx.op("transpose", a, perm=(1, 0))
    w = b if ctx.attr("transB") else ctx.op("transpose", b, perm=(1, 0))
    y = ctx.op("linear", a, w)
    alpha, beta = float(ctx.attr("alpha")), float(ctx.attr("beta"))
    if alpha != 1.0:
        y = ctx.op("mul", y, ctx.scalar(alpha, y))
    if ctx.has_input(2) and beta != 0.0:
        c = ctx.input(2)
        if beta != 1.0:
            c = ctx.op("mul", c, ctx.scalar(beta, c))
        y = ctx.op("add", y, c)
    return y


@converter("Conv")
def _conv(ctx: NodeContext):
    x, w = ctx.input(0), ctx.input(1)
    if x.ndim == 5:
        return conv(ctx)
    if w.ndim != x.ndim:
        raise ctx.error(f"weight {list(w.shape)} and input {list(x.shape)} ranks differ")
    win = Window(ctx, x, ctx.attr("kernel_shape", None) or w.shape[2:])
    if tuple(ctx.attr("kernel_shape", None) or w.shape[2:]) != tuple(w.shape[2:]):
        raise ctx.error(f"kernel_shape {ctx.attr('kernel_shape')} does not match the weight's {list(w.shape[2:])}")
    y = ctx.op(
        "conv2d", win.lift(ctx, x), win.lift(ctx, w),
        stride=win.stride, pad=win.pad, dilation=win.dilation, groups=int(ctx.attr("group")),
    )
    if ctx.has_input(2):
        bias = ctx.input(2)
        y = ctx.op("add", y, ctx.op("reshape", bias, shape=(1, bias.shape[0], 1, 1)))
    return win.lower(ctx, y)


@converter("MaxPool")
def _max_pool(ctx: NodeContext):
    x = ctx.input(0)
    if needs_general_pool(ctx, x, average=False):
        return max_pool(ctx)
    win = Window(ctx, x, ctx.attr("kernel_shape"))
    lowest = -math.inf if dtypes.is_float(x.dtype) else int(np.iinfo(dtypes.to_numpy(x.dtype)).min)
    y = ctx.op(
        "max_pool2d", win.pad_explicitly_if_wide(ctx, win.lift(ctx, x), lowest),
        kernel=win.kernel, stride=win.stride, pad=win.pad, dilation=win.dilation, ceil_mode=bool(ctx.attr("ceil_mode", 0)),
    )
    return win.lower(ctx, y)


@converter("AveragePool")
def _avg_pool(ctx: NodeContext):
    x = ctx.input(0)
    if needs_general_pool(ctx, x, average=True):
        return average_pool(ctx)
    win = Window(ctx, x, ctx.attr("kernel_shape"))
    include_pad = bool(ctx.attr("count_include_pad", 0))
    lifted = win.pad_explicitly_if_wide(ctx, win.lift(ctx, x), 0.0 if include_pad else None)
    y = ctx.op(
        "avg_pool2d", lifted,
        kernel=win.kernel, stride=win.stride, pad=win.pad,
        ceil_mode=bool(ctx.attr("ceil_mode", 0)), count_include_pad=include_pad,
    )
    return win.lower(ctx, y)


@converter("GlobalAveragePool")
def _global_avg_pool(ctx: NodeContext):
    x = ctx.input(0)
    return ctx.op("mean", x, axes=tuple(range(2, x.ndim)), keepdims=True)


@converter("GlobalMaxPool")
def _global_max_pool(ctx: NodeContext):
    x = ctx.input(0)
    return ctx.op("max", x, axes=tuple(range(2, x.ndim)), keepdims=True)


@converter("BatchNormalization")
def _batch_norm(ctx: NodeContext):
    """Inference batch norm. Legacy attributes: ``is_test`` (before opset 7) and ``consumed_inputs``
    (before opset 6) change nothing for inference; ``spatial=0`` (before opset 9) normalizes per
    element instead of per channel: the statistics have the shape of one sample."""
    if ctx.opset >= 14 and ctx.attr("training_mode", 0):
        raise ctx.error("training_mode=1: graphc imports BatchNormalization for inference only")
    ctx.reject_used_outputs(1, " (BatchNormalization training statistics)")
    x, scale, bias, mean, var = (ctx.input(i) for i in range(5))
    eps = float(ctx.attr("epsilon"))
    if ctx.opset < 9 and ctx.attr("spatial", 1) == 0:
        for t, what in ((scale, "scale"), (bias, "B"), (mean, "mean"), (var, "var")):
            if t.shape != x.shape[1:]:
                raise ctx.error(f"spatial=0: {what} {list(t.shape)} should have the shape of one sample {list(x.shape[1:])}")
        inv_std = ctx.op("div", scale, ctx.op("sqrt", ctx.op("add", var, ctx.scalar(eps, var))))
        return ctx.op("add", ctx.op("mul", ctx.op("sub", x, mean), inv_std), bias)
    return ctx.op("batch_norm", x, scale, bias, mean, var, eps=eps)


@converter("LayerNormalization")
def _layer_norm(ctx: NodeContext):
    x, scale = ctx.input(0), ctx.input(1)
    axis = norm_axis(ctx, int(ctx.attr("axis")), x.ndim)
    norm_shape = tuple(x.shape[axis:])
    if scale.shape != norm_shape:
        scale = ctx.op("broadcast_to", scale, shape=norm_shape)
    if ctx.has_input(2):
        bias = ctx.input(2)
        if bias.shape != norm_shape:
            bias = ctx.op("broadcast_to", bias, shape=norm_shape)
    else:
        bias = ctx.constant(np.zeros(norm_shape, dtype=dtypes.to_numpy(x.dtype)))
    y = ctx.op("layer_norm", x, scale, bias, axis=axis, eps=float(ctx.attr("epsilon")))
    if ctx.output_used(1) or ctx.output_used(2):
        return (y, *layer_norm_statistics(ctx, x, axis, float(ctx.attr("epsilon"))))
    return y


def _softmax(graphc_op: str):
    def convert(ctx: NodeContext):
        x = ctx.input(0)
        axis = norm_axis(ctx, int(ctx.attr("axis")), x.ndim)
        if ctx.opset >= 13 or axis == x.ndim - 1:
            return ctx.op(graphc_op, x, axis=axis)
        # opset < 13: the input is coerced to 2-D [prod(d[:axis]), prod(d[axis:])]
        flat = ctx.op("reshape", x, shape=(math.prod(x.shape[:axis]), math.prod(x.shape[axis:])))
        return ctx.op("reshape", ctx.op(graphc_op, flat, axis=1), shape=x.shape)

    return convert


converter("Softmax")(_softmax("softmax"))
converter("LogSoftmax")(_softmax("log_softmax"))
