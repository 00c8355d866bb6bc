"""Elementwise ONNX ops (unary, binary, activations, casts)."""
from __future__ import annotations

import numpy as np

from ... import dtypes
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
    return lambda ctx: ctx.op(graphc_op, *_binary_operands(ctx))


def _binary_operands(ctx: NodeContext) -> tuple[Tensor, Tensor]:
    """(A, B) of a broadcasting binary op.

    Before opset 7, B broadcast only with ``broadcast=1``, its dims matching A's from
    ``axis`` on (default: the trailing ones). Numpy broadcasting aligns trailing dims,
    so B gets trailing 1s for the dims after its own."""
    a, b = ctx.input(0), ctx.input(1)
    if ctx.opset < 7 and ctx.attr("broadcast", 0) and ctx.has_attr("axis"):
        axis = int(ctx.attr("axis"))
        axis = axis + a.ndim if axis < 0 else axis
        trailing = a.ndim - axis - b.ndim
        if axis < 0 or trailing < 0:
            raise ctx.error(f"broadcast axis {ctx.attr('axis')} does not place B {list(b.shape)} inside A {list(a.shape)}")
        if trailing:
            b = ctx.op("reshape", b, shape=b.shape + (1,) * trailing)
    return a, b


for _onnx, _graphc in _UNARY.items():
    converter(_onnx)(_unary(_graphc))
for _onnx, _graphc in _BINARY.items():
    converter(_onnx)(_binary(_graphc))


@converter("Pow")
def _pow(ctx: NodeContext):
    x, y = _binary_operands(ctx)
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
    if ctx.opset < 7 and slope.ndim == 1 and x.ndim > 2 and slope.shape[0] == x.shape[1] > 1:
        # before opset 7 (no numpy broadcasting yet) a 1-D slope is per channel (axis 1)
        slope = ctx.op("reshape", slope, shape=slope.shape + (1,) * (x.ndim - 2))
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
    to = ctx.attr("to")
    if isinstance(to, str):  # opsets 1-5 name the type: to="FLOAT"
        from onnx import TensorProto

        if to.upper() not in TensorProto.DataType.keys():
            raise ctx.error(f"unknown element type to={to!r}")
        to = TensorProto.DataType.Value(to.upper())
    dtype = graphc_dtype(int(to), f"{ctx.importer.where}: {ctx.describe()}: attribute 'to'")
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
    """The identity, with an all-true mask: inference, or training with ratio 0 (nothing is dropped).

    Random dropping is not imported. (Before opset 7, ``is_test`` defaults to 0, but
    exporters of that era set it only loosely; as other importers do, graphc treats
    those Dropouts as inference.)"""
    x = ctx.input(0)
    training = ctx.opset >= 12 and ctx.has_input(2) and bool(np.asarray(ctx.const(2, "training_mode")).reshape(-1)[0])
    if training:
        ratio = float(np.asarray(ctx.const(1, "ratio")).reshape(-1)[0]) if ctx.has_input(1) else 0.5
        if ratio != 0:
            raise ctx.error(f"training_mode=true with ratio {ratio} drops at random: graphc imports Dropout for inference only")
    if not ctx.output_used(1):
        return x
    mask_dtype = np.bool_ if ctx.opset >= 10 else dtypes.to_numpy(x.dtype)  # (a mask of the input's type before opset 10)
    return x, ctx.constant(np.ones(x.shape, dtype=mask_dtype))
