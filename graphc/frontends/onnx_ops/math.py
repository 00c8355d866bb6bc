"""Elementwise math ONNX ops: rounding, trigonometry, IsNaN/IsInf, Mod, bitwise ops, and the
activations that decompose exactly into graphc ops (Swish, Celu, Selu, ThresholdedRelu,
Shrink, Softsign, Softplus, Mish)."""
from __future__ import annotations

from ... import dtypes
from ...tensor import Tensor
from ..onnx import NodeContext, converter

_UNARY = {
    "Floor": "floor",
    "Ceil": "ceil",
    "Round": "round",
    "Sign": "sign",
    "Sin": "sin",
    "Cos": "cos",
    "Tan": "tan",
    "Asin": "asin",
    "Acos": "acos",
    "Atan": "atan",
    "Sinh": "sinh",
    "Cosh": "cosh",
    "Asinh": "asinh",
    "Acosh": "acosh",
    "Atanh": "atanh",
    "IsNaN": "isnan",
    "BitwiseNot": "bitwise_not",
}
_BINARY = {"BitwiseAnd": "bitwise_and", "BitwiseOr": "bitwise_or", "BitwiseXor": "bitwise_xor"}


def _unary(graphc_op: str):
    return lambda ctx: ctx.op(graphc_op, ctx.input(0))


def _binary(graphc_op: str):
    return lambda ctx: ctx.op(graphc_op, ctx.input(0), ctx.input(1))


for _onnx, _graphc in _UNARY.items():
    converter(_onnx)(_unary(_graphc))
for _onnx, _graphc in _BINARY.items():
    converter(_onnx)(_binary(_graphc))


@converter("IsInf")
def _isinf(ctx: NodeContext):
    x = ctx.input(0)
    positive, negative = bool(ctx.attr("detect_positive")), bool(ctx.attr("detect_negative"))
    inf = ctx.op("isinf", x)
    if positive and negative:
        return inf
    if not (positive or negative):
        return ctx.op("logical_and", inf, ctx.constant(False))
    side = ctx.op("greater" if positive else "less", x, ctx.scalar(0, x))
    return ctx.op("logical_and", inf, side)


@converter("Mod")
def _mod(ctx: NodeContext):
    a, b = ctx.input(0), ctx.input(1)
    fmod = bool(ctx.attr("fmod"))
    return ctx.op("mod", a, b, fmod=fmod)


@converter("BitShift")
def _bitshift(ctx: NodeContext):
    direction = ctx.attr("direction")
    if direction not in ("LEFT", "RIGHT"):
        raise ctx.error(f"direction must be 'LEFT' or 'RIGHT', got {direction!r}")
    return ctx.op("left_shift" if direction == "LEFT" else "right_shift", ctx.input(0), ctx.input(1))


# ---------------------------------------------------------------------------------------
# activations
# ---------------------------------------------------------------------------------------
def _positive(ctx: NodeContext, x: Tensor) -> Tensor:
    return ctx.op("greater", x, ctx.scalar(0, x))


def _exp_minus_one(ctx: NodeContext, x: Tensor) -> Tensor:
    return ctx.op("sub", ctx.op("exp", x), ctx.scalar(1, x))


@converter("Swish")
def _swish(ctx: NodeContext):
    x = ctx.input(0)
    alpha = float(ctx.attr("alpha", 1.0))
    return ctx.op("mul", x, ctx.op("sigmoid", ctx.op("mul", x, ctx.scalar(alpha, x))))


@converter("Celu")
def _celu(ctx: NodeContext):
    x = ctx.input(0)  # max(0, x) + min(0, alpha * (exp(x / alpha) - 1))
    alpha = float(ctx.attr("alpha"))
    neg = ctx.op("mul", _exp_minus_one(ctx, ctx.op("div", x, ctx.scalar(alpha, x))), ctx.scalar(alpha, x))
    return ctx.op("where", _positive(ctx, x), x, neg)


@converter("Selu")
def _selu(ctx: NodeContext):
    x = ctx.input(0)
    alpha, gamma = float(ctx.attr("alpha")), float(ctx.attr("gamma"))
    neg = ctx.op("mul", _exp_minus_one(ctx, x), ctx.scalar(alpha, x))
    return ctx.op("mul", ctx.op("where", _positive(ctx, x), x, neg), ctx.scalar(gamma, x))


@converter("ThresholdedRelu")
def _thresholded_relu(ctx: NodeContext):
    x = ctx.input(0)
    above = ctx.op("greater", x, ctx.scalar(float(ctx.attr("alpha")), x))
    return ctx.op("where", above, x, ctx.scalar(0, x))


@converter("Shrink")
def _shrink(ctx: NodeContext):
    x = ctx.input(0)
    lambd, bias = float(ctx.attr("lambd")), float(ctx.attr("bias"))
    if dtypes.is_int(x.dtype) and not (lambd.is_integer() and bias.is_integer()):
        raise ctx.error(f"lambd {lambd} and bias {bias} must be whole numbers for a {x.dtype} input")
    low = ctx.op("where", ctx.op("less", x, ctx.scalar(-lambd, x)), ctx.op("add", x, ctx.scalar(bias, x)), ctx.scalar(0, x))
    return ctx.op("where", ctx.op("greater", x, ctx.scalar(lambd, x)), ctx.op("sub", x, ctx.scalar(bias, x)), low)


@converter("Softsign")
def _softsign(ctx: NodeContext):
    x = ctx.input(0)
    return ctx.op("div", x, ctx.op("add", ctx.op("abs", x), ctx.scalar(1, x)))


def _softplus_of(ctx: NodeContext, x: Tensor) -> Tensor:
    """log(1 + exp(x)) = relu(x) + log1p(exp(-|x|)): no overflow, and exact for very negative x."""
    tail = ctx.op("log1p", ctx.op("exp", ctx.op("neg", ctx.op("abs", x))))
    return ctx.op("add", ctx.op("relu", x), tail)


@converter("Softplus")
def _softplus(ctx: NodeContext):
    return _softplus_of(ctx, ctx.input(0))


@converter("Mish")
def _mish(ctx: NodeContext):
    x = ctx.input(0)
    return ctx.op("mul", x, ctx.op("tanh", _softplus_of(ctx, x)))
