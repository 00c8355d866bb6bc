"""Elementwise ONNX ops (unary, binary, activations, casts)."""
from __future__ import annotations

import numpy as np

from ...tensor import Tensor
from ..onnx import NodeContext, converter, graphc_dtype
from ._common import variadic

_UNARY = {
    "Relu": "relu",
    "Sigmoid": "sigmoid",
    "Tanh": "tanh",
    "Erf": "erf",
    "Exp": "exp",
    "Log": "log",
    "Sqrt": "sqrt",
    "Reciprocal": "reciprocal",
    "Neg": "neg",
    "Abs": "abs",
    "Not": "logical_not",
}
_BINARY = {
    "Add": "add",
    "Sub": "sub",
    "Mul": "mul",
    "Div": "div",
    "Less": "less",
    "Greater": "greater",
    "LessOrEqual": "less_equal",
    "GreaterOrEqual": "greater_equal",
    "And": "logical_and",
    "Or": "logical_or",
    "Equal": "equal",
    "Xor": "not_equal",  # on bool tensors
}


def _unary(graphc_op: str):
    return lambda ctx: ctx.op(graphc_op, ctx.input(0))


def _binary(graphc_op: str):
    return lambda ctx: ctx.op(graphc_op, ctx.input(0), ctx.input(1))


for _onnx, _graphc in _UNARY.items():
    converter(_onnx)(_unary(_graphc))
for _onnx, _graphc in _BINARY.items():
    converter(_onnx)(_binary(_graphc))


@converter("Pow")
def _pow(ctx: NodeContext):
    x, y = ctx.input(0), ctx.input(1)
    if y.dtype != x.dtype:  # opset 12+: the exponent may have another type; the result has the base's
        y = ctx.op("cast", y, dtype=x.dtype)
    return ctx.op("pow", x, y)


@converter("Max")
def _max(ctx: NodeContext):
    return variadic(ctx, "maximum")


@converter("Min")
def _min(ctx: NodeContext):
    return variadic(ctx, "minimum")


@converter("Sum")
def _sum(ctx: NodeContext):
    return variadic(ctx, "add")


@converter("Mean")
def _mean(ctx: NodeContext):
    total = variadic(ctx, "add")
    return total if ctx.num_inputs == 1 else ctx.op("div", total, ctx.scalar(ctx.num_inputs, total))


@converter("Where")
def _where(ctx: NodeContext):
    return ctx.op("where", ctx.input(0), ctx.input(1), ctx.input(2))


@converter("LeakyRelu")
def _leaky_relu(ctx: NodeContext):
    x = ctx.input(0)
    alpha = float(ctx.attr("alpha"))
    return ctx.op("where", ctx.op("greater", x, ctx.scalar(0, x)), x, ctx.op("mul", x, ctx.scalar(alpha, x)))


@converter("PRelu")
def _prelu(ctx: NodeContext):
    x, slope = ctx.input(0), ctx.input(1)
    return ctx.op("where", ctx.op("greater", x, ctx.scalar(0, x)), x, ctx.op("mul", x, slope))


@converter("Elu")
def _elu(ctx: NodeContext):
    x = ctx.input(0)
    alpha = float(ctx.attr("alpha"))
    neg = ctx.op("mul", ctx.op("sub", ctx.op("exp", x), ctx.scalar(1, x)), ctx.scalar(alpha, x))
    return ctx.op("where", ctx.op("greater", x, ctx.scalar(0, x)), x, neg)


@converter("HardSigmoid")
def _hard_sigmoid(ctx: NodeContext):
    x = ctx.input(0)
    return _hard_sigmoid_of(ctx, x, float(ctx.attr("alpha")), float(ctx.attr("beta")))


def _hard_sigmoid_of(ctx: NodeContext, x: Tensor, alpha: float, beta: float) -> Tensor:
    y = ctx.op("add", ctx.op("mul", x, ctx.scalar(alpha, x)), ctx.scalar(beta, x))
    return ctx.op("minimum", ctx.op("maximum", y, ctx.scalar(0, x)), ctx.scalar(1, x))


@converter("HardSwish")
def _hard_swish(ctx: NodeContext):
    x = ctx.input(0)
    return ctx.op("mul", x, _hard_sigmoid_of(ctx, x, 1.0 / 6.0, 0.5))


@converter("Softplus")
def _softplus(ctx: NodeContext):
    x = ctx.input(0)  # log(1 + exp(x)) = relu(x) + log(1 + exp(-|x|)), without overflow
    tail = ctx.op("log", ctx.op("add", ctx.op("exp", ctx.op("neg", ctx.op("abs", x))), ctx.scalar(1, x)))
    return ctx.op("add", ctx.op("relu", x), tail)


@converter("Gelu")
def _gelu(ctx: NodeContext):
    approximate = ctx.attr("approximate", "none")
    if approximate not in ("none", "tanh"):
        raise ctx.error(f"unknown approximate {approximate!r}")
    return ctx.op("gelu", ctx.input(0), approximate=approximate)


@converter("Clip")
def _clip(ctx: NodeContext):
    x = ctx.input(0)
    if ctx.opset < 11:
        lo, hi = ctx.attr("min", None), ctx.attr("max", None)
        lo = None if lo is None else ctx.scalar(lo, x)
        hi = None if hi is None else ctx.scalar(hi, x)
    else:
        lo = ctx.input(1) if ctx.has_input(1) else None
        hi = ctx.input(2) if ctx.has_input(2) else None
    if lo is not None:
        x = ctx.op("maximum", x, lo)
    if hi is not None:
        x = ctx.op("minimum", x, hi)
    return x


@converter("Cast")
def _cast(ctx: NodeContext):
    x = ctx.input(0)
    dtype = graphc_dtype(int(ctx.attr("to")), f"{ctx.importer.where}: {ctx.describe()}: attribute 'to'")
    return x if dtype == x.dtype else ctx.op("cast", x, dtype=dtype)


@converter("CastLike")
def _cast_like(ctx: NodeContext):
    x, like = ctx.input(0), ctx.input(1)
    return x if like.dtype == x.dtype else ctx.op("cast", x, dtype=like.dtype)


@converter("Identity")
def _identity(ctx: NodeContext):
    return ctx.input(0)


@converter("Dropout")
def _dropout(ctx: NodeContext):
    """Inference: the identity. The mask output is not computed."""
    if ctx.opset >= 12 and ctx.has_input(2):
        if not ctx.is_const(2) or bool(np.asarray(ctx.const(2)).reshape(-1)[0]):
            raise ctx.error("training_mode must be a constant false: graphc imports Dropout for inference only")
    ctx.reject_used_outputs(1, " (Dropout mask; graphc imports Dropout for inference only)")
    return ctx.input(0)
