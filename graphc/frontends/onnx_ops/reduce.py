"""Reduction ONNX ops."""
from __future__ import annotations

from ...tensor import Tensor
from ..onnx import NodeContext, converter
from ._common import attr_or_input, norm_axes

# ONNX op -> (axes-as-input opset, how to compute it from graphc ops)
_REDUCE_AXES_INPUT_SINCE = {"ReduceSum": 13}


def _reduce_axes(ctx: NodeContext, x: Tensor):
    """Normalized axes; None means all; the string "noop" means return x unchanged."""
    since = _REDUCE_AXES_INPUT_SINCE.get(ctx.op_type, 18)
    axes = attr_or_input(ctx, "axes", 1, since)
    if not axes:
        noop = ctx.opset >= since and ctx.attr("noop_with_empty_axes", 0)
        return "noop" if noop else None
    return tuple(sorted(norm_axes(ctx, axes, x.ndim)))


def _reduction(fn):
    def convert(ctx: NodeContext):
        x = ctx.input(0)
        axes = _reduce_axes(ctx, x)
        if axes == "noop":
            return x
        return fn(ctx, x, axes, bool(ctx.attr("keepdims", 1)))

    return convert


def _simple_reduce(graphc_op: str):
    return _reduction(lambda ctx, x, axes, keepdims: ctx.op(graphc_op, x, axes=axes, keepdims=keepdims))


converter("ReduceSum")(_simple_reduce("sum"))
converter("ReduceMean")(_simple_reduce("mean"))
converter("ReduceMax")(_simple_reduce("max"))
converter("ReduceMin")(_simple_reduce("min"))


@converter("ReduceSumSquare")
@_reduction
def _reduce_sum_square(ctx, x, axes, keepdims):
    return ctx.op("sum", ctx.op("mul", x, x), axes=axes, keepdims=keepdims)


@converter("ReduceL1")
@_reduction
def _reduce_l1(ctx, x, axes, keepdims):
    return ctx.op("sum", ctx.op("abs", x), axes=axes, keepdims=keepdims)


@converter("ReduceL2")
@_reduction
def _reduce_l2(ctx, x, axes, keepdims):
    return ctx.op("sqrt", ctx.op("sum", ctx.op("mul", x, x), axes=axes, keepdims=keepdims))


@converter("ReduceLogSum")
@_reduction
def _reduce_log_sum(ctx, x, axes, keepdims):
    return ctx.op("log", ctx.op("sum", x, axes=axes, keepdims=keepdims))


@converter("ReduceLogSumExp")
@_reduction
def _reduce_log_sum_exp(ctx, x, axes, keepdims):
    m = ctx.op("max", x, axes=axes, keepdims=True)  # shift by the max so exp cannot overflow
    s = ctx.op("log", ctx.op("sum", ctx.op("exp", ctx.op("sub", x, m)), axes=axes, keepdims=True))
    y = ctx.op("add", s, m)
    if not keepdims:
        y = ctx.op("squeeze", y, axes=axes if axes is not None else tuple(range(x.ndim)))
    return y
