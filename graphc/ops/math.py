"""Elementwise math: rounding (floor, ceil, round, sign), trigonometric and hyperbolic
functions, isnan/isinf, mod, bitwise logic and shifts.

Float references compute in float64 and round once, so they are accurate oracles for
the TVM lowerings (which use LLVM's libm intrinsics). Integer ops guard the cases where
the hardware traps or LLVM's result is undefined (a zero divisor, INT_MIN % -1, shifts
by the bit width or more) and give numpy's / ONNX's result instead.
"""
from __future__ import annotations

import numpy as np

from .. import dtypes
from ..ir import TensorType, check_infer
from ._grad import unbroadcast
from ._lazy import expr_dtype, tir
from ._lazy import ops as O
from .elementwise import _binary, _broadcast_binary, _c, _elementwise, _float_unary, _numeric_unary, _unary_samples
from .registry import ELEMWISE, Sample, defop, rand
from .te_util import isnan as isnan_bits

# ---------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------


def _in_f64(fn):
    """A numpy float function evaluated in float64 and rounded to the input's dtype."""
    return lambda x: fn(x.astype(np.float64)).astype(x.dtype)


def _int_unary(x: TensorType, **_):
    check_infer(dtypes.is_int(x.dtype), f"needs an integer tensor, got {x.dtype}")
    return x


def _int_binary(a: TensorType, b: TensorType, **_):
    check_infer(dtypes.is_int(a.dtype), f"needs integer operands, got {a.dtype}")
    return _binary(a, b)


def _to_bool(x: TensorType, **_):
    check_infer(dtypes.is_float(x.dtype), f"needs a float tensor, got {x.dtype}")
    return x.with_dtype("bool")


def _bits(dtype: str) -> int:
    return dtypes.to_numpy(dtype).itemsize * 8


_INT_SAMPLE_DTYPES = ("int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64")


def _int_range(dtype: str, low: int, high: int) -> tuple[int, int]:
    """[low, high) clipped to what `dtype` holds (unsigned types start at 0)."""
    info = np.iinfo(dtype)
    return max(low, int(info.min)), min(high, int(info.max))


_HALF_FLOATS = ("float16", "bfloat16")


def _widened(fn):
    """A TIR scalar function computed in float32 for 16-bit floats: LLVM has no vector libm
    calls for them (TVM fails to build vectorized f16 asin, atan, log1p, copysign...), and
    numpy computes them in float32 too."""

    def scalar(*vs):
        dtype = expr_dtype(vs[0])
        if dtype not in _HALF_FLOATS:
            return fn(*vs)
        result = fn(*(tir.Cast("float32", v) for v in vs))
        return tir.Cast(dtype, result) if expr_dtype(result) == "float32" else result  # (bool results stay)

    return scalar


is_nan = isnan_bits  # a bit test: unlike tir.isnan, it vectorizes inside reductions (argmax)
# TVM has no bfloat16 isinf; in float32 (exact for every bf16 value) it works
is_inf = _widened(lambda v: tir.isinf(v))


# ---------------------------------------------------------------------------------------
# rounding and sign: piecewise constant, so no gradient
# ---------------------------------------------------------------------------------------


def _rounding_samples(rng):
    halves = np.array([-2.5, -1.5, -0.5, 0.5, 1.5, 2.5, -0.0, 0.0, 3.0, -3.0], np.float32)
    special = np.array([np.nan, np.inf, -np.inf, 1e20, -1e20, 0.49999997], np.float32)
    return _unary_samples(-4, 4)(rng) + [
        Sample((halves,), note="halves and integers"),
        Sample((special,), note="nan, inf, huge"),
        Sample((rand(rng, 3, 5, low=-4, high=4).astype(np.float64),), note="f64"),
    ]


def _rounding(name: str, np_fn, tir_fn, doc: str):
    return defop(
        name, infer=_float_unary, ref=np_fn, lower=_elementwise(tir_fn),
        grad=None, differentiable=False, fusion=ELEMWISE, samples=_rounding_samples, doc=doc,
    )


floor = _rounding("floor", np.floor, lambda v: tir.floor(v), "Largest integer <= x.")
ceil = _rounding("ceil", np.ceil, lambda v: tir.ceil(v), "Smallest integer >= x.")
# LLVM's nearbyint rounds halves to even in the default rounding mode, as ONNX Round does
round = _rounding("round", np.round, lambda v: tir.nearbyint(v), "Nearest integer, halves to even.")  # noqa: A001


def _sign_lower_scalar(v):
    one = _c(1, v)
    if dtypes.is_unsigned(dtypes.from_tvm(expr_dtype(v))):
        return tir.Select(v > _c(0, v), one, v)
    # zero and NaN fall through unchanged (np.sign(nan) is nan)
    return tir.Select(v > _c(0, v), one, tir.Select(v < _c(0, v), _c(-1, v), v))


sign = defop(
    "sign",
    infer=_numeric_unary,
    ref=np.sign,
    lower=_elementwise(_sign_lower_scalar),
    grad=None,
    differentiable=False,
    fusion=ELEMWISE,
    samples=lambda rng: _rounding_samples(rng)[:4] + [
        Sample((rand(rng, 4, 6, dtype="int32", low=-3, high=3),), note="int32"),
        Sample((rand(rng, 7, dtype="uint16", low=0, high=3),), note="uint16"),
    ],
    doc="-1, 0 or 1 by the sign of x (NaN stays NaN).",
)

# ---------------------------------------------------------------------------------------
# trigonometric and hyperbolic functions, log1p
# ---------------------------------------------------------------------------------------


def _float_fn_samples(low: float, high: float):
    def samples(rng):
        half = Sample((rand(rng, 4, 6, low=low, high=high).astype(np.float16),), note="f16", rtol=2e-3, atol=2e-3)
        return _unary_samples(low, high)(rng) + [half]

    return samples


def _float_fn(name: str, np_fn, grad, low: float, high: float, scalar_fn=None, doc: str = ""):
    """A float unary op computing `scalar_fn` (default: TIR's function of the same name)."""
    return defop(
        name,
        infer=_float_unary,
        ref=_in_f64(np_fn),
        lower=_elementwise(_widened(scalar_fn or (lambda v: getattr(tir, name)(v)))),
        grad=grad,
        fusion=ELEMWISE,
        samples=_float_fn_samples(low, high),
        doc=doc,
    )


# LLVM has no vector sinh/cosh (TVM fails to build them vectorized), so they are written
# with exp. With a = exp(|x|/2): cosh|x| = a*(a/2) + 1/(2a^2), which overflows only where
# cosh does; sinh|x| is the same difference, which cancels for small |x|, where a Taylor
# series to x^13 is exact to double precision instead (|x| < 1/2).
_SINH_TAYLOR_DIVISORS = (6, 20, 42, 72, 110, 156)  # (2k)(2k+1): ratios of consecutive terms


def _exp_halves(v):
    a = tir.exp(tir.abs(v) * _c(0.5, v))
    return a * (a * _c(0.5, v)), _c(0.5, v) / (a * a)


def _cosh_scalar(v):
    big, small = _exp_halves(v)
    return big + small


def _sinh_scalar(v):
    big, small = _exp_halves(v)
    x2 = v * v
    series = _c(1, v)
    for d in reversed(_SINH_TAYLOR_DIVISORS):
        series = _c(1, v) + x2 / _c(d, v) * series
    return tir.Select(tir.abs(v) < _c(0.5, v), v * series, tir.copysign(big - small, v))


sin = _float_fn("sin", np.sin, lambda g, x, out: (g * O.cos(x),), -4, 4)
cos = _float_fn("cos", np.cos, lambda g, x, out: (O.neg(g * O.sin(x)),), -4, 4)
tan = _float_fn("tan", np.tan, lambda g, x, out: (g * (out * out + 1.0),), -1.3, 1.3)
# the inverse functions are sampled inside their domains, away from the singular ends
asin = _float_fn("asin", np.arcsin, lambda g, x, out: (g * O.rsqrt(1.0 - x * x),), -0.9, 0.9)
acos = _float_fn("acos", np.arccos, lambda g, x, out: (O.neg(g * O.rsqrt(1.0 - x * x)),), -0.9, 0.9)
atan = _float_fn("atan", np.arctan, lambda g, x, out: (g / (x * x + 1.0),), -4, 4)
sinh = _float_fn("sinh", np.sinh, lambda g, x, out: (g * O.cosh(x),), -3, 3, _sinh_scalar)
cosh = _float_fn("cosh", np.cosh, lambda g, x, out: (g * O.sinh(x),), -3, 3, _cosh_scalar)
asinh = _float_fn("asinh", np.arcsinh, lambda g, x, out: (g * O.rsqrt(x * x + 1.0),), -4, 4)
acosh = _float_fn("acosh", np.arccosh, lambda g, x, out: (g * O.rsqrt(x * x - 1.0),), 1.1, 5)
atanh = _float_fn("atanh", np.arctanh, lambda g, x, out: (g / (1.0 - x * x),), -0.9, 0.9)
log1p = _float_fn("log1p", np.log1p, lambda g, x, out: (g / (x + 1.0),), -0.5, 3, doc="log(1 + x), accurate for tiny x.")

# ---------------------------------------------------------------------------------------
# isnan, isinf
# ---------------------------------------------------------------------------------------


def _special_samples(rng):
    x = rand(rng, 3, 8, low=-3, high=3)
    x.reshape(-1)[::5] = np.nan
    x.reshape(-1)[1::7] = np.inf
    x.reshape(-1)[3::7] = -np.inf
    return [
        Sample((x,)),
        Sample((x.astype(np.float16),), note="f16"),
        Sample((x.astype(dtypes.to_numpy("bf16")),), note="bf16"),
        Sample((rand(rng, low=-1, high=1),), note="0-d"),
    ]


isnan = defop(
    "isnan", infer=_to_bool, ref=np.isnan, lower=_elementwise(is_nan),
    grad=None, differentiable=False, fusion=ELEMWISE, samples=_special_samples,
)
isinf = defop(
    "isinf", infer=_to_bool, ref=np.isinf, lower=_elementwise(is_inf),
    grad=None, differentiable=False, fusion=ELEMWISE, samples=_special_samples, doc="x is +inf or -inf.",
)

# ---------------------------------------------------------------------------------------
# mod: fmod=False is numpy's mod (the sign of the divisor, Python's %), fmod=True is C's fmod
# (the sign of the dividend). An integer divisor of 0 gives 0, as numpy does.
# ---------------------------------------------------------------------------------------


def _mod_infer(a: TensorType, b: TensorType, fmod):
    check_infer(isinstance(fmod, bool), f"fmod must be a bool, got {fmod!r}")
    return _binary(a, b)


def _mod_ref(a, b, fmod):
    with np.errstate(divide="ignore", invalid="ignore"):
        if a.dtype.kind == "f":
            return (np.fmod if fmod else np.mod)(a.astype(np.float64), b.astype(np.float64)).astype(a.dtype)
        return (np.fmod if fmod else np.mod)(a, b).astype(a.dtype)


def _float_mod(x, y, fmod: bool):
    r = tir.truncmod(x, y)  # LLVM frem: C fmod, exact (tir.fmod has no vector form)
    if fmod:
        return r
    # numpy's floor mod from C fmod: move a nonzero remainder to the divisor's sign,
    # and give a zero remainder the divisor's sign too
    zero = _c(0, r)
    signs_differ = tir.Or(tir.And(r < zero, y > zero), tir.And(r > zero, y < zero))  # (no i1 comparisons: LLVM rejects them)
    moved = tir.Select(signs_differ, r + y, r)
    return tir.Select(r == zero, tir.copysign(zero, y), moved)


def _int_mod(x, y, fmod: bool):
    dtype = expr_dtype(x)
    # x % 0 traps, and so does INT_MIN % -1 (the quotient overflows): both give 0
    bad = y == _c(0, y)
    if not dtypes.is_unsigned(dtypes.from_tvm(dtype)):
        bad = tir.Or(bad, y == _c(-1, y))
    safe = tir.Select(bad, _c(1, y), y)
    r = (tir.truncmod if fmod else tir.floormod)(x, safe)
    return tir.Select(bad, _c(0, x), r)


def _mod_lower(a, b, fmod):
    if dtypes.is_float(dtypes.from_tvm(str(a.dtype))):
        return _broadcast_binary(a, b, _widened(lambda x, y: _float_mod(x, y, fmod)))
    return _broadcast_binary(a, b, lambda x, y: _int_mod(x, y, fmod))


def _mod_grad(g, a, b, out, fmod):
    # out = a - q * b with q = floor(a / b) (or trunc): q is piecewise constant
    q = (a - out) / b
    return (unbroadcast(g, a.shape), unbroadcast(O.neg(g * q), b.shape))


def _mod_samples(rng):
    mixed = np.array([-4.0, 7.0, 5.0, 4.0, -7.0, 8.0, 0.0, -0.0, 3.5], np.float32)
    divs = np.array([2.0, -3.0, 8.0, -2.0, 3.0, 5.0, 2.0, -2.0, 1.0], np.float32)
    edge_a = np.array([1.0, -1.0, 1.0, np.inf, 2.0, np.nan, 5.0, -5.0], np.float32)
    edge_b = np.array([np.inf, np.inf, -np.inf, 2.0, 0.0, 2.0, np.nan, 3.0], np.float32)
    out = [
        Sample((rand(rng, 3, 8, low=-5, high=5), rand(rng, 3, 8, low=0.5, high=2)), {"fmod": False}),
        Sample((rand(rng, 3, 8, low=-5, high=5), rand(rng, 8, low=-2, high=-0.5)), {"fmod": True}, note="fmod, broadcast"),
        Sample((mixed, divs), {"fmod": False}, note="mixed signs, zeros", no_grad_check=(0, 1)),
        Sample((edge_a, edge_b), {"fmod": False}, note="inf, nan, zero divisor", no_grad_check=(0, 1)),
        Sample((edge_a, edge_b), {"fmod": True}, note="fmod inf, nan, zero divisor", no_grad_check=(0, 1)),
        Sample((rand(rng, 3, 4, low=-5, high=5).astype(np.float64), rand(rng, 4, low=1, high=2).astype(np.float64)), note="f64"),
    ]
    for dtype in _INT_SAMPLE_DTYPES:
        a = rand(rng, 4, 5, dtype=dtype, low=_int_range(dtype, -40, 40)[0], high=40)
        b = rand(rng, 5, dtype=dtype, low=_int_range(dtype, -6, 6)[0], high=6)
        b[0] = 0  # a zero divisor gives 0
        for fmod in (False, True):
            out.append(Sample((a, b), {"fmod": fmod}, note=f"{dtype} fmod={fmod}"))
    imin = np.array([-128, -128, 7], np.int8)
    out.append(Sample((imin, np.array([-1, 3, -1], np.int8)), note="INT_MIN % -1"))
    return out


mod = defop(
    "mod",
    infer=_mod_infer,
    ref=_mod_ref,
    lower=_mod_lower,
    grad=_mod_grad,
    fusion=ELEMWISE,
    attrs={"fmod": False},
    samples=_mod_samples,
    doc="Remainder of a / b: sign of b (numpy mod), or of a with fmod=True (C fmod).",
)

# ---------------------------------------------------------------------------------------
# bitwise logic and shifts (integers of any width and signedness)
# ---------------------------------------------------------------------------------------


def _int_samples(binary: bool, shift: bool = False):
    def samples(rng):
        out = []
        for dtype in _INT_SAMPLE_DTYPES:
            low, high = _int_range(dtype, -1000, 1000)
            a = rand(rng, 3, 5, dtype=dtype, low=low, high=high)
            if not binary:
                out.append(Sample((a,), note=dtype))
                continue
            if shift:  # amounts past the bit width and negative ones: ONNX defines them
                bits = _bits(dtypes.from_numpy(np.dtype(dtype)))
                b = rand(rng, 5, dtype=dtype, low=_int_range(dtype, -2, 0)[0], high=bits + 3)
            else:
                b = rand(rng, 5, dtype=dtype, low=low, high=high)
            out.append(Sample((a, b), note=f"{dtype}, broadcast"))
        return out

    return samples


def _bitwise(name: str, np_fn, tir_fn):
    return defop(
        name, infer=_int_binary, ref=lambda a, b: np_fn(a, b), lower=lambda a, b: _broadcast_binary(a, b, tir_fn),
        grad=None, differentiable=False, fusion=ELEMWISE, samples=_int_samples(binary=True),
    )


bitwise_and = _bitwise("bitwise_and", np.bitwise_and, lambda x, y: tir.bitwise_and(x, y))
bitwise_or = _bitwise("bitwise_or", np.bitwise_or, lambda x, y: tir.bitwise_or(x, y))
bitwise_xor = _bitwise("bitwise_xor", np.bitwise_xor, lambda x, y: tir.bitwise_xor(x, y))
bitwise_not = defop(
    "bitwise_not", infer=_int_unary, ref=np.invert, lower=_elementwise(lambda v: tir.bitwise_not(v)),
    grad=None, differentiable=False, fusion=ELEMWISE, samples=_int_samples(binary=False),
)


def _shift_ref(left: bool):
    """ONNX BitShift: amounts < 0 or >= the bit width shift everything out (right shifts
    of negative signed values leave -1: the sign fill)."""

    def ref(a, b):
        bits = a.dtype.itemsize * 8
        in_range = (b >= 0) & (b < bits)
        amount = np.where(in_range, b, 0).astype(a.dtype)
        shifted = np.left_shift(a, amount) if left else np.right_shift(a, amount)
        fill = np.right_shift(a, a.dtype.type(bits - 1)) if not left and a.dtype.kind == "i" else np.zeros_like(a)  # sign fill: 0 or -1
        return np.where(in_range, shifted, fill).astype(a.dtype)

    return ref


def _shift_lower(left: bool):
    def shift(x, y):
        bits = _bits(dtypes.from_tvm(expr_dtype(x)))
        if dtypes.is_unsigned(dtypes.from_tvm(expr_dtype(y))):
            # compared as int64: TVM's simplifier turns an unsigned `y < bits` into a
            # subtraction that underflows and aborts the CUDA build
            in_range = tir.Cast("int64", y) < tir.const(bits, "int64")
        else:
            in_range = tir.And(y >= _c(0, y), y < _c(bits, y))
        amount = tir.Select(in_range, y, _c(0, y))  # LLVM shifts by >= the width are poison
        shifted = tir.shift_left(x, amount) if left else tir.shift_right(x, amount)
        signed = not dtypes.is_unsigned(dtypes.from_tvm(expr_dtype(x)))
        fill = tir.shift_right(x, _c(bits - 1, x)) if signed and not left else _c(0, x)
        return tir.Select(in_range, shifted, fill)

    return lambda a, b: _broadcast_binary(a, b, shift)


left_shift = defop(
    "left_shift", infer=_int_binary, ref=_shift_ref(True), lower=_shift_lower(True),
    grad=None, differentiable=False, fusion=ELEMWISE, samples=_int_samples(binary=True, shift=True),
    doc="a << b; amounts outside [0, bits) give 0.",
)
right_shift = defop(
    "right_shift", infer=_int_binary, ref=_shift_ref(False), lower=_shift_lower(False),
    grad=None, differentiable=False, fusion=ELEMWISE, samples=_int_samples(binary=True, shift=True),
    doc="a >> b (arithmetic for signed types); amounts outside [0, bits) give the sign fill (0 or -1).",
)
