"""Elementwise ops: unary math, broadcasting binary arithmetic, comparisons, where, cast, dropout."""
from __future__ import annotations

import math

import numpy as np

from .. import dtypes
from ..ir import TensorType, check_infer
from ._grad import scalar, unbroadcast
from ._lazy import expr_dtype, te, tir, topi
from ._lazy import ops as O
from .registry import ELEMWISE, Sample, broadcast_shapes, defop, rand
from .te_util import fast_erf, fast_exp, fast_tanh, isnan, read_broadcast

# ---------------------------------------------------------------------------------------
# inference helpers
# ---------------------------------------------------------------------------------------


def _float_unary(x: TensorType, **_):
    check_infer(dtypes.is_float(x.dtype), f"needs a float tensor, got {x.dtype}")
    return x


def _numeric_unary(x: TensorType, **_):
    check_infer(x.dtype != "bool", "needs a numeric tensor, got bool")
    return x


def _binary(a: TensorType, b: TensorType, **_):
    check_infer(a.dtype == b.dtype, f"operand dtypes differ: {a.dtype} vs {b.dtype}")
    check_infer(a.dtype != "bool", "needs numeric operands, got bool")
    return TensorType(a.dtype, broadcast_shapes(a.shape, b.shape))


def _compare(a: TensorType, b: TensorType, **_):
    check_infer(a.dtype == b.dtype, f"operand dtypes differ: {a.dtype} vs {b.dtype}")
    return TensorType("bool", broadcast_shapes(a.shape, b.shape))


def _logical(a: TensorType, b: TensorType, **_):
    check_infer(a.dtype == "bool" and b.dtype == "bool", f"needs bool operands, got {a.dtype} and {b.dtype}")
    return TensorType("bool", broadcast_shapes(a.shape, b.shape))


# ---------------------------------------------------------------------------------------
# samples
# ---------------------------------------------------------------------------------------


def _unary_samples(low=-3.0, high=3.0, ints=False):
    def samples(rng):
        out = [
            Sample((rand(rng, 2, 3, 4, 5, low=low, high=high),)),
            Sample((rand(rng, 17, 33, low=low, high=high),), note="sizes not a multiple of the vector width"),
            Sample((rand(rng, low=low, high=high),), note="0-d"),
        ]
        if ints:
            out.append(Sample((rand(rng, 4, 6, dtype="int32", low=-50, high=50),), note="int32"))
        return out

    return samples


def _binary_samples(low=-3.0, high=3.0, ints=True, b_low=None, b_high=None):
    b_low = low if b_low is None else b_low
    b_high = high if b_high is None else b_high

    def samples(rng):
        out = [
            Sample((rand(rng, 2, 3, 8, low=low, high=high), rand(rng, 2, 3, 8, low=b_low, high=b_high))),
            Sample((rand(rng, 4, 1, 6, low=low, high=high), rand(rng, 3, 1, low=b_low, high=b_high)), note="broadcast both"),
            Sample((rand(rng, 5, 7, low=low, high=high), rand(rng, low=b_low, high=b_high)), note="scalar operand"),
        ]
        if ints:
            out.append(Sample((rand(rng, 3, 5, dtype="int64", low=1, high=20), rand(rng, 5, dtype="int64", low=1, high=9)), note="int64"))
        return out

    return samples


def _cmp_samples(rng):
    a = rand(rng, 3, 4, 5)
    b = a.copy()
    b[0] += 1  # some equal, some different
    return [
        Sample((a, b)),
        Sample((rand(rng, 4, 1, low=-2, high=2), rand(rng, 1, 5, low=-2, high=2)), note="broadcast"),
        Sample((rand(rng, 6, dtype="int32", low=-3, high=3), rand(rng, 6, dtype="int32", low=-3, high=3)), note="int32"),
        Sample((rand(rng, 4, 8, dtype="bool"), rand(rng, 4, 8, dtype="bool")), note="bool"),
    ]


def _bool_samples(rng):
    return [
        Sample((rand(rng, 3, 4, dtype="bool"), rand(rng, 3, 4, dtype="bool"))),
        Sample((rand(rng, 2, 1, dtype="bool"), rand(rng, 5, dtype="bool")), note="broadcast"),
    ]


# ---------------------------------------------------------------------------------------
# unary
# ---------------------------------------------------------------------------------------


def _elementwise(f):
    """TE lowering of an elementwise scalar function."""
    return lambda x, **attrs: te.compute(x.shape, lambda *i: f(x[i], **attrs), name="elemwise")


def _c(v, like):
    """A TIR constant with the dtype of the expression `like`."""
    return tir.const(v, expr_dtype(like))


_erf64 = np.vectorize(math.erf, otypes=[np.float64])


def _np_erf(x: np.ndarray) -> np.ndarray:
    return _erf64(x.astype(np.float64)).astype(x.dtype)


def _np_sigmoid(x):
    x64 = x.astype(np.float64)
    return (0.5 * (1.0 + np.tanh(0.5 * x64))).astype(x.dtype)


# NaN propagates through relu/maximum/minimum (as in numpy and PyTorch); TIR's max/min
# lower to LLVM maxnum/minnum, which drop NaNs, so these select explicitly.
relu = defop(
    "relu",
    infer=_numeric_unary,
    ref=lambda x: np.maximum(x, x.dtype.type(0)),
    lower=_elementwise(lambda v: tir.Select(v < _c(0, v), _c(0, v), v)),
    grad=lambda g, x, out: (O.where(O.greater(x, scalar(0, x.dtype)), g, scalar(0, g.dtype)),),
    fusion=ELEMWISE,
    samples=_unary_samples(ints=True),
)

_SQRT1_2 = 1.0 / math.sqrt(2.0)
_SQRT_2_PI = math.sqrt(2.0 / math.pi)


def _gelu_ref(x, approximate):
    x64 = x.astype(np.float64)
    if approximate == "tanh":
        y = 0.5 * x64 * (1.0 + np.tanh(_SQRT_2_PI * (x64 + 0.044715 * x64**3)))
    else:
        y = 0.5 * x64 * (1.0 + _erf64(x64 * _SQRT1_2))
    return y.astype(x.dtype)


def _gelu_scalar(v, approximate):
    half, one = _c(0.5, v), _c(1.0, v)
    if approximate == "tanh":
        inner = _c(_SQRT_2_PI, v) * (v + _c(0.044715, v) * v * v * v)
        return half * v * (one + fast_tanh(inner))
    return half * v * (one + fast_erf(v * _c(_SQRT1_2, v)))


def _gelu_grad(g, x, out, approximate):
    if approximate == "tanh":
        inner = (x + x * x * x * 0.044715) * _SQRT_2_PI
        t = O.tanh(inner)
        dinner = (x * x * (3 * 0.044715) + 1.0) * _SQRT_2_PI
        d = (t + 1.0) * 0.5 + x * 0.5 * (1.0 - t * t) * dinner
    else:
        cdf = (O.erf(x * _SQRT1_2) + 1.0) * 0.5
        pdf = O.exp(x * x * -0.5) * (1.0 / math.sqrt(2.0 * math.pi))
        d = cdf + x * pdf
    return (g * d,)


def _check_gelu(x, approximate="none"):
    check_infer(approximate in ("none", "tanh"), f"approximate must be 'none' or 'tanh', got {approximate!r}")
    return _float_unary(x)


gelu = defop(
    "gelu",
    infer=_check_gelu,
    ref=_gelu_ref,
    lower=_elementwise(_gelu_scalar),
    grad=_gelu_grad,
    fusion=ELEMWISE,
    attrs={"approximate": "none"},
    samples=lambda rng: _unary_samples()(rng) + [Sample((rand(rng, 3, 40, low=-4, high=4),), {"approximate": "tanh"}, note="tanh form")],
)

sigmoid = defop(
    "sigmoid",
    infer=_float_unary,
    ref=_np_sigmoid,
    lower=_elementwise(lambda v: _c(1.0, v) / (_c(1.0, v) + fast_exp(-v))),
    grad=lambda g, x, out: (g * out * (1.0 - out),),
    fusion=ELEMWISE,
    samples=_unary_samples(-8, 8),
)

silu = defop(
    "silu",
    infer=_float_unary,
    ref=lambda x: (x.astype(np.float64) * _np_sigmoid(x).astype(np.float64)).astype(x.dtype),
    lower=_elementwise(lambda v: v / (_c(1.0, v) + fast_exp(-v))),
    grad=lambda g, x, out: (g * (O.sigmoid(x) * (x * (1.0 - O.sigmoid(x)) + 1.0)),),
    fusion=ELEMWISE,
    samples=_unary_samples(-8, 8),
)

tanh = defop(
    "tanh",
    infer=_float_unary,
    ref=np.tanh,
    lower=_elementwise(fast_tanh),
    grad=lambda g, x, out: (g * (1.0 - out * out),),
    fusion=ELEMWISE,
    samples=_unary_samples(-4, 4),
)

exp = defop(
    "exp",
    infer=_float_unary,
    ref=np.exp,
    lower=_elementwise(fast_exp),
    grad=lambda g, x, out: (g * out,),
    fusion=ELEMWISE,
    samples=_unary_samples(-5, 5),
)

log = defop(
    "log",
    infer=_float_unary,
    ref=np.log,
    lower=lambda x: topi.log(x),
    grad=lambda g, x, out: (g / x,),
    fusion=ELEMWISE,
    samples=_unary_samples(0.1, 10),
)

sqrt = defop(
    "sqrt",
    infer=_float_unary,
    ref=np.sqrt,
    lower=lambda x: topi.sqrt(x),
    grad=lambda g, x, out: (g * 0.5 / out,),
    fusion=ELEMWISE,
    samples=_unary_samples(0.1, 10),
)

rsqrt = defop(
    "rsqrt",
    infer=_float_unary,
    ref=lambda x: (1.0 / np.sqrt(x.astype(np.float64))).astype(x.dtype),
    lower=_elementwise(lambda v: _c(1.0, v) / tir.sqrt(v)),  # exact; topi.rsqrt may use a fast approximation
    grad=lambda g, x, out: (g * out * out * out * -0.5,),
    fusion=ELEMWISE,
    samples=_unary_samples(0.1, 10),
)

reciprocal = defop(
    "reciprocal",
    infer=_float_unary,
    ref=lambda x: (1.0 / x).astype(x.dtype),
    lower=_elementwise(lambda v: _c(1.0, v) / v),
    grad=lambda g, x, out: (-(g * out * out),),
    fusion=ELEMWISE,
    samples=_unary_samples(0.2, 5),
)

neg = defop(
    "neg",
    infer=_numeric_unary,
    ref=np.negative,
    lower=lambda x: topi.negative(x),
    grad=lambda g, x, out: (O.neg(g),),
    fusion=ELEMWISE,
    samples=_unary_samples(ints=True),
)

abs = defop(  # noqa: A001 - the op is called abs
    "abs",
    infer=_numeric_unary,
    ref=np.abs,
    lower=lambda x: topi.abs(x),
    grad=lambda g, x, out: (O.where(O.less(x, scalar(0, x.dtype)), O.neg(g), O.where(O.equal(x, scalar(0, x.dtype)), scalar(0, g.dtype), g)),),
    fusion=ELEMWISE,
    samples=_unary_samples(ints=True),
)

erf = defop(
    "erf",
    infer=_float_unary,
    ref=_np_erf,
    lower=_elementwise(fast_erf),
    grad=lambda g, x, out: (g * O.exp(O.neg(x * x)) * (2.0 / math.sqrt(math.pi)),),
    fusion=ELEMWISE,
    samples=_unary_samples(-3, 3),
)

# ---------------------------------------------------------------------------------------
# binary arithmetic (numpy broadcasting; operands share one dtype)
# ---------------------------------------------------------------------------------------


def _np_div(a, b):
    if np.issubdtype(a.dtype, np.integer):
        # integer division truncates toward zero (C, ONNX and TVM semantics); x / 0 gives 0
        with np.errstate(divide="ignore"):
            return np.where(b == 0, 0, np.sign(a) * np.sign(b) * (np.abs(a) // np.where(b == 0, 1, np.abs(b)))).astype(a.dtype)
    return np.divide(a, b).astype(a.dtype)


def _te_div(a, b):
    if dtypes.from_tvm(str(a.dtype)) in dtypes.INT_DTYPES:
        # integer division by zero would trap (SIGFPE): it gives 0, as numpy does
        def safe_div(x, y):
            zero = tir.const(0, expr_dtype(y))
            return tir.Select(y == zero, zero, tir.truncdiv(x, tir.Select(y == zero, tir.const(1, expr_dtype(y)), y)))

        return _broadcast_binary(a, b, safe_div)
    return topi.divide(a, b)


def _broadcast_binary(a, b, f):
    shape = broadcast_shapes(tuple(int(d) for d in a.shape), tuple(int(d) for d in b.shape))
    return te.compute(shape, lambda *i: f(read_broadcast(a, i), read_broadcast(b, i)), name="binary")


def _nan_or(x, cond):
    """`cond`, or x is NaN (floats only: ints have no NaN)."""
    if expr_dtype(x).startswith("float") or expr_dtype(x).startswith("bfloat"):
        return tir.Or(isnan(x), cond)  # (x != x would be folded away by TVM's simplifier)
    return cond



add = defop(
    "add",
    infer=_binary,
    ref=lambda a, b: np.add(a, b).astype(a.dtype),
    lower=lambda a, b: topi.add(a, b),
    grad=lambda g, a, b, out: (unbroadcast(g, a.shape), unbroadcast(g, b.shape)),
    fusion=ELEMWISE,
    samples=_binary_samples(),
)

sub = defop(
    "sub",
    infer=_binary,
    ref=lambda a, b: np.subtract(a, b).astype(a.dtype),
    lower=lambda a, b: topi.subtract(a, b),
    grad=lambda g, a, b, out: (unbroadcast(g, a.shape), unbroadcast(O.neg(g), b.shape)),
    fusion=ELEMWISE,
    samples=_binary_samples(),
)

mul = defop(
    "mul",
    infer=_binary,
    ref=lambda a, b: np.multiply(a, b).astype(a.dtype),
    lower=lambda a, b: topi.multiply(a, b),
    grad=lambda g, a, b, out: (unbroadcast(g * b, a.shape), unbroadcast(g * a, b.shape)),
    fusion=ELEMWISE,
    samples=_binary_samples(),
)

div = defop(
    "div",
    infer=_binary,
    ref=_np_div,
    lower=_te_div,
    grad=lambda g, a, b, out: (unbroadcast(g / b, a.shape), unbroadcast(O.neg(g * out / b), b.shape)),
    fusion=ELEMWISE,
    samples=lambda rng: _binary_samples(b_low=0.5, b_high=3.0)(rng)
    + [Sample((np.array([7, -7, 5, 0], np.int32), np.array([2, 2, 0, 0], np.int32)), note="int32, divisor 0 gives 0")],
)


def _te_pow(a, b):
    """TVM's power is float-only: integer powers go through float64 (exact below 2**53)."""
    if str(a.dtype).startswith(("int", "uint")):
        def ipow(x, y):
            return tir.Cast(expr_dtype(x), tir.round(tir.power(tir.Cast("float64", x), tir.Cast("float64", y))))

        return _broadcast_binary(a, b, ipow)
    return topi.power(a, b)


def _pow_grad(g, a, b, out):
    ga = g * b * O.pow(a, b - 1.0)
    safe = O.where(O.greater(a, scalar(0, a.dtype)), a, scalar(1, a.dtype))  # d/db a^b = a^b log a, defined for a > 0
    gb = O.where(O.greater(a, scalar(0, a.dtype)), g * out * O.log(safe), scalar(0, g.dtype))
    return (unbroadcast(ga, a.shape), unbroadcast(gb, b.shape))


pow = defop(  # noqa: A001
    "pow",
    infer=_binary,
    ref=lambda a, b: np.power(a.astype(np.float64), b).astype(a.dtype) if a.dtype.kind == "f" else np.power(a, b).astype(a.dtype),
    lower=lambda a, b: _te_pow(a, b),
    grad=_pow_grad,
    fusion=ELEMWISE,
    samples=lambda rng: _binary_samples(0.2, 3.0, ints=False)(rng)
    + [
        Sample((rand(rng, 4, 5, low=-2, high=2), np.array(2.0, np.float32)), note="square", no_grad_check=(1,)),
        Sample((rand(rng, 3, 4, dtype="int64", low=-5, high=6), rand(rng, 4, dtype="int64", low=0, high=5)), note="int64"),
    ],
)

maximum = defop(
    "maximum",
    infer=_binary,
    ref=lambda a, b: np.maximum(a, b).astype(a.dtype),
    lower=lambda a, b: _broadcast_binary(a, b, lambda x, y: tir.Select(_nan_or(x, x > y), x, y)),
    grad=lambda g, a, b, out: (
        unbroadcast(O.where(O.greater_equal(a, b), g, scalar(0, g.dtype)), a.shape),
        unbroadcast(O.where(O.greater_equal(a, b), scalar(0, g.dtype), g), b.shape),
    ),
    fusion=ELEMWISE,
    samples=_binary_samples(),
)

minimum = defop(
    "minimum",
    infer=_binary,
    ref=lambda a, b: np.minimum(a, b).astype(a.dtype),
    lower=lambda a, b: _broadcast_binary(a, b, lambda x, y: tir.Select(_nan_or(x, x < y), x, y)),
    grad=lambda g, a, b, out: (
        unbroadcast(O.where(O.less_equal(a, b), g, scalar(0, g.dtype)), a.shape),
        unbroadcast(O.where(O.less_equal(a, b), scalar(0, g.dtype), g), b.shape),
    ),
    fusion=ELEMWISE,
    samples=_binary_samples(),
)

# ---------------------------------------------------------------------------------------
# comparisons and logic (bool results, no gradient)
# ---------------------------------------------------------------------------------------


def _comparison(name, np_fn, te_fn):
    def lower(a, b):
        if str(a.dtype) == "bool":  # LLVM cannot compare i1 vectors as numbers: compare as int8
            a, b = topi.cast(a, "int8"), topi.cast(b, "int8")
        return te_fn(a, b)

    return defop(name, infer=_compare, ref=np_fn, lower=lower, grad=None, differentiable=False, fusion=ELEMWISE, samples=_cmp_samples)


equal = _comparison("equal", np.equal, lambda a, b: topi.equal(a, b))
not_equal = _comparison("not_equal", np.not_equal, lambda a, b: topi.not_equal(a, b))
less = _comparison("less", np.less, lambda a, b: topi.less(a, b))
less_equal = _comparison("less_equal", np.less_equal, lambda a, b: topi.less_equal(a, b))
greater = _comparison("greater", np.greater, lambda a, b: topi.greater(a, b))
greater_equal = _comparison("greater_equal", np.greater_equal, lambda a, b: topi.greater_equal(a, b))

logical_and = defop(
    "logical_and", infer=_logical, ref=np.logical_and, lower=lambda a, b: topi.logical_and(a, b),
    grad=None, differentiable=False, fusion=ELEMWISE, samples=_bool_samples,
)
logical_or = defop(
    "logical_or", infer=_logical, ref=np.logical_or, lower=lambda a, b: topi.logical_or(a, b),
    grad=None, differentiable=False, fusion=ELEMWISE, samples=_bool_samples,
)


def _logical_not_infer(x):
    check_infer(x.dtype == "bool", f"needs a bool tensor, got {x.dtype}")
    return x


logical_not = defop(
    "logical_not", infer=_logical_not_infer, ref=np.logical_not, lower=lambda x: topi.logical_not(x),
    grad=None, differentiable=False, fusion=ELEMWISE, samples=lambda rng: [Sample((rand(rng, 3, 7, dtype="bool"),))],
)

# ---------------------------------------------------------------------------------------
# where, cast, dropout
# ---------------------------------------------------------------------------------------


def _where_infer(c, a, b):
    check_infer(c.dtype == "bool", f"condition must be bool, got {c.dtype}")
    check_infer(a.dtype == b.dtype, f"branch dtypes differ: {a.dtype} vs {b.dtype}")
    return TensorType(a.dtype, broadcast_shapes(c.shape, a.shape, b.shape))


where = defop(
    "where",
    infer=_where_infer,
    ref=lambda c, a, b: np.where(c, a, b).astype(a.dtype),
    lower=lambda c, a, b: topi.where(c, a, b),
    grad=lambda g, c, a, b, out: (
        None,
        unbroadcast(O.where(c, g, scalar(0, g.dtype)), a.shape),
        unbroadcast(O.where(c, scalar(0, g.dtype), g), b.shape),
    ),
    fusion=ELEMWISE,
    samples=lambda rng: [
        Sample((rand(rng, 3, 4, dtype="bool"), rand(rng, 3, 4), rand(rng, 3, 4))),
        Sample((rand(rng, 1, 4, dtype="bool"), rand(rng, 3, 1), np.array(-1e4, np.float32)), note="broadcast, scalar fill"),
    ],
)


def _cast_infer(x, dtype):
    dtypes.check(dtype)
    return x.with_dtype(dtype)


def _cast_ref(x, dtype):
    return x.astype(dtypes.to_numpy(dtype))


cast = defop(
    "cast",
    infer=_cast_infer,
    ref=_cast_ref,
    lower=lambda x, dtype: topi.cast(x, dtypes.to_tvm(dtype)),
    grad=lambda g, x, out, dtype: (O.cast(g, dtype=x.dtype) if dtypes.is_float(x.dtype) and dtypes.is_float(dtype) else None,),
    fusion=ELEMWISE,
    attrs={"dtype": "f32"},
    samples=lambda rng: [
        Sample((rand(rng, 3, 5, low=-10, high=10),), {"dtype": "i32"}, note="f32 -> i32 truncates"),
        Sample((rand(rng, 4, 4, dtype="int64", low=-100, high=100),), {"dtype": "f32"}),
        Sample((rand(rng, 2, 3, 4),), {"dtype": "f16"}, rtol=1e-3, atol=1e-3),
        Sample((rand(rng, 6, dtype="bool"),), {"dtype": "f32"}),
        Sample((rand(rng, 6, low=-1, high=1),), {"dtype": "bool"}),
        # integer narrowing and sign changes wrap (two's complement); floats to unsigned stay in range
        Sample((rand(rng, 3, 4, dtype="int64", low=-70000, high=70000),), {"dtype": "i16"}, note="i64 -> i16 wraps"),
        Sample((rand(rng, 3, 4, dtype="int32", low=-9, high=9),), {"dtype": "u32"}, note="i32 -> u32 wraps"),
        Sample((rand(rng, 5, dtype="uint16", low=0, high=60000),), {"dtype": "f32"}, note="u16 -> f32"),
        Sample((rand(rng, 5, dtype="uint64", low=0, high=2**40),), {"dtype": "f64"}, note="u64 -> f64"),
        Sample((rand(rng, 5, low=0, high=200),), {"dtype": "u64"}, note="f32 -> u64 truncates"),
        Sample((rand(rng, 5, dtype="int16", low=-300, high=300),), {"dtype": "u8"}, note="i16 -> u8 wraps"),
    ],
)


def _dropout_infer(x, p):
    check_infer(0.0 <= p < 1.0, f"dropout probability must be in [0, 1), got {p}")
    return _float_unary(x)


dropout = defop(
    "dropout",
    infer=_dropout_infer,
    ref=lambda x, p: x,  # inference: identity (canonicalize removes it; training uses its own op)
    lower=lambda x, p: topi.identity(x),
    grad=lambda g, x, out, p: (g,),
    fusion=ELEMWISE,
    attrs={"p": 0.5},
    samples=lambda rng: [Sample((rand(rng, 4, 9),), {"p": 0.1})],
)
