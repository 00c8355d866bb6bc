"""Elementwise ATen ops: arithmetic, comparisons, logic, activations, casts.

PyTorch promotes mixed operands (int tensor + float scalar, f16 tensor + f32 0-d tensor);
graphc ops take one dtype. Arithmetic operands are cast to the dtype PyTorch recorded
for the result, comparison operands to ``torch.result_type`` of the pair.
"""
from __future__ import annotations

from ... import dtypes
from ...tensor import Tensor
from ..torch import AtenContext, aten

_UNARY = {
    "abs": "abs", "neg": "neg", "exp": "exp", "log": "log", "sqrt": "sqrt", "rsqrt": "rsqrt", "reciprocal": "reciprocal",
    "tanh": "tanh", "sigmoid": "sigmoid", "erf": "erf", "relu": "relu", "silu": "silu",
}
_COMPARISONS = {"eq": "equal", "ne": "not_equal", "lt": "less", "le": "less_equal", "gt": "greater", "ge": "greater_equal"}


def _unary(graphc_op: str):
    def convert(ctx: AtenContext, x):
        return ctx.op(graphc_op, ctx.cast(x, ctx.out_dtype))  # ints promote to float (exp, sqrt...)

    return convert


for _name, _op in _UNARY.items():
    aten(f"{_name}.default")(_unary(_op))


def _operands(ctx: AtenContext, *values) -> list[Tensor]:
    return [ctx.operand(v, ctx.out_dtype) for v in values]


def _scaled(ctx: AtenContext, t: Tensor, alpha) -> Tensor:
    return t if alpha == 1 else ctx.op("mul", t, ctx.operand(alpha, t.dtype))


@aten("add.Tensor")
def _add(ctx: AtenContext, x, other, alpha=1):
    a, b = _operands(ctx, x, other)
    return ctx.op("add", a, _scaled(ctx, b, alpha))


@aten("sub.Tensor")
def _sub(ctx: AtenContext, x, other, alpha=1):
    a, b = _operands(ctx, x, other)
    return ctx.op("sub", a, _scaled(ctx, b, alpha))


@aten("mul.Tensor", "mul.Scalar")
def _mul(ctx: AtenContext, x, other):
    return ctx.op("mul", *_operands(ctx, x, other))


@aten("div.Tensor")
def _div(ctx: AtenContext, x, other):
    return ctx.op("div", *_operands(ctx, x, other))  # true division: ints were promoted to float


@aten("div.Tensor_mode")
def _div_mode(ctx: AtenContext, x, other, rounding_mode=None):
    a, b = _operands(ctx, x, other)
    if rounding_mode is None:
        return ctx.op("div", a, b)
    if not dtypes.is_int(a.dtype):
        raise ctx.error(f"rounding_mode={rounding_mode!r} on {a.dtype} tensors is not supported (graphc has no float trunc/floor)")
    q = ctx.op("div", a, b)  # integer division truncates toward zero
    if rounding_mode == "trunc":
        return q
    # floor: one less where the division was inexact and the signs differ
    inexact = ctx.op("not_equal", ctx.op("mul", q, b), a)
    signs_differ = ctx.op("not_equal", ctx.op("less", a, ctx.operand(0, a.dtype)), ctx.op("less", b, ctx.operand(0, b.dtype)))
    return ctx.op("sub", q, ctx.cast(ctx.op("logical_and", inexact, signs_differ), q.dtype))


@aten("pow.Tensor_Scalar", "pow.Tensor_Tensor", "pow.Scalar")
def _pow(ctx: AtenContext, x, exponent):
    return ctx.op("pow", *_operands(ctx, x, exponent))


@aten("maximum.default")
def _maximum(ctx: AtenContext, x, other):
    return ctx.op("maximum", *_operands(ctx, x, other))


@aten("minimum.default")
def _minimum(ctx: AtenContext, x, other):
    return ctx.op("minimum", *_operands(ctx, x, other))


@aten("clamp.default", "clamp.Tensor")
def _clamp(ctx: AtenContext, x, lo=None, hi=None):
    y = ctx.cast(x, ctx.out_dtype)
    if lo is not None:
        y = ctx.op("maximum", y, ctx.operand(lo, y.dtype))
    if hi is not None:
        y = ctx.op("minimum", y, ctx.operand(hi, y.dtype))
    return y


@aten("hardtanh.default")
def _hardtanh(ctx: AtenContext, x, min_val=-1, max_val=1):
    return _clamp(ctx, x, min_val, max_val)


@aten("where.self")
def _where(ctx: AtenContext, condition, x, other):
    return ctx.op("where", _truth(ctx, condition), *_operands(ctx, x, other))


def _comparison(graphc_op: str):
    def convert(ctx: AtenContext, x, other):
        dtype = ctx.promoted(x, other)
        return ctx.op(graphc_op, ctx.operand(x, dtype), ctx.operand(other, dtype))

    return convert


for _name, _op in _COMPARISONS.items():
    aten(f"{_name}.Tensor", f"{_name}.Scalar")(_comparison(_op))


# ---------------------------------------------------------------------------------------
# logic: logical_* take any dtype (nonzero is true); bitwise_* only bools here
# ---------------------------------------------------------------------------------------


def _truth(ctx: AtenContext, x: Tensor) -> Tensor:
    return x if x.dtype == "bool" else ctx.op("not_equal", x, ctx.operand(0, x.dtype))


def _bools(ctx: AtenContext, *xs: Tensor) -> list[Tensor]:
    if any(x.dtype != "bool" for x in xs):
        raise ctx.error(f"bitwise ops on {', '.join(x.dtype for x in xs)} tensors are not supported (only on bool)")
    return list(xs)


@aten("logical_not.default")
def _logical_not(ctx: AtenContext, x):
    return ctx.op("logical_not", _truth(ctx, x))


@aten("bitwise_not.default")
def _bitwise_not(ctx: AtenContext, x):
    return ctx.op("logical_not", *_bools(ctx, x))


@aten("logical_and.default")
def _logical_and(ctx: AtenContext, x, other):
    return ctx.op("logical_and", _truth(ctx, x), _truth(ctx, other))


@aten("logical_or.default")
def _logical_or(ctx: AtenContext, x, other):
    return ctx.op("logical_or", _truth(ctx, x), _truth(ctx, other))


@aten("logical_xor.default")
def _logical_xor(ctx: AtenContext, x, other):
    return ctx.op("not_equal", _truth(ctx, x), _truth(ctx, other))


@aten("bitwise_and.Tensor")
def _bitwise_and(ctx: AtenContext, x, other):
    return ctx.op("logical_and", *_bools(ctx, x, other))


@aten("bitwise_or.Tensor")
def _bitwise_or(ctx: AtenContext, x, other):
    return ctx.op("logical_or", *_bools(ctx, x, other))


@aten("bitwise_xor.Tensor")
def _bitwise_xor(ctx: AtenContext, x, other):
    return ctx.op("not_equal", *_bools(ctx, x, other))


# ---------------------------------------------------------------------------------------
# activations written with other graphc ops, and casts
# ---------------------------------------------------------------------------------------


@aten("gelu.default")
def _gelu(ctx: AtenContext, x, approximate="none"):
    return ctx.op("gelu", x, approximate=approximate)


@aten("leaky_relu.default")
def _leaky_relu(ctx: AtenContext, x, negative_slope=0.01):
    return ctx.op("where", ctx.op("greater", x, ctx.operand(0, x.dtype)), x, ctx.op("mul", x, ctx.operand(negative_slope, x.dtype)))


@aten("elu.default")
def _elu(ctx: AtenContext, x, alpha=1, scale=1, input_scale=1):
    def c(v):
        return ctx.operand(v, x.dtype)

    negative = ctx.op("mul", ctx.op("sub", ctx.op("exp", ctx.op("mul", x, c(input_scale))), c(1)), c(alpha * scale))
    return ctx.op("where", ctx.op("greater", x, c(0)), ctx.op("mul", x, c(scale)), negative)


@aten("_to_copy.default")
def _to_copy(ctx: AtenContext, x, *_):
    return ctx.cast(x, ctx.out_dtype)
