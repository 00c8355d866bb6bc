"""Small helpers shared by TE lowerings (no TVM import at module level)."""
from __future__ import annotations


def te_shape(t) -> tuple[int, ...]:
    """A TE tensor's static shape as Python ints."""
    return tuple(int(d) for d in t.shape)


def broadcast_index(dims: tuple[int, ...], out_idx) -> tuple:
    """Index into a tensor of shape `dims` broadcast (numpy rules, right-aligned) to an output
    indexed by `out_idx`: size-1 and missing leading dims read index 0."""
    lead = len(out_idx) - len(dims)
    return tuple(0 if d == 1 else out_idx[lead + k] for k, d in enumerate(dims))


def read_broadcast(t, out_idx):
    """t's element that broadcasts to output position `out_idx`."""
    return t[broadcast_index(te_shape(t), out_idx)]


def nan_passing(x, result):
    """`result` where x is a number, x itself where x is NaN: the polynomials below clamp x with
    min/max, which turn NaN into a bound. One select on the integer NaN test (`isnan` below), so it
    vectorizes. Not compare-selects inside the clamp, which also pass NaN: the clamped value is used
    many times, and TVM's simplifier then visits both selects at every use under that use's
    conditions (a softmax kernel took 20x longer to build, a softmax fused with exp 190 s)."""
    from tvm import tirx

    return tirx.Select(isnan(x), x, result)


def fast_exp(x):
    """exp(x) for float32 TIR expressions as a vectorizable polynomial (Cephes expf: range
    reduction to [-ln2/2, ln2/2], degree-6 polynomial, exponent bits set directly).

    LLVM lowers `tir.exp` on vectors to one libm call per lane; this is ~14x faster on
    AVX-512 at the same accuracy (max relative error ~1e-7). exp(-inf) = 0, exp(inf) = inf,
    NaN propagates. Other dtypes fall back to `tir.exp`.
    """
    from tvm import tirx

    from ._lazy import expr_dtype

    if expr_dtype(x) != "float32":
        return tirx.exp(x)

    def c(v):
        return tirx.const(v, "float32")

    xc = tirx.max(tirx.min(x, c(88.3762626647950)), c(-88.3762626647949))  # NaN -> a bound: n stays a number
    n = tirx.floor(xc * c(1.44269504088896341) + c(0.5))
    r = xc - n * c(0.693359375) + n * c(2.12194440e-4)  # ln2 split in two for an exact product
    poly = ((((c(1.9875691500e-4) * r + c(1.3981999507e-3)) * r + c(8.3334519073e-3)) * r + c(4.1665795894e-2)) * r
            + c(1.6666665459e-1)) * r + c(5.0000001201e-1)
    y = poly * r * r + r + c(1.0)
    two_n = tirx.reinterpret("float32", tirx.shift_left(tirx.Cast("int32", n) + tirx.const(127, "int32"), tirx.const(23, "int32")))
    return nan_passing(x, y * two_n)


# odd rational approximations f(x) = x * P(x^2) / Q(x^2) on [-bound, bound], beyond which f is
# +-1 to float32 precision (Eigen's, as TVM's topi.fast_erf / fast_tanh; coefficients high to low)
_ERF = (4.0,
        (-2.72614225801306e-10, 2.77068142495902e-08, -2.10102402082508e-06, -5.69250639462346e-05,
         -7.34990630326855e-04, -2.95459980854025e-03, -1.60960333262415e-02),
        (-1.45660718464996e-05, -2.13374055278905e-04, -1.68282697438203e-03, -7.37332916720468e-03,
         -1.42647390514189e-02))
_TANH = (9.0,
         (-2.76076847742355e-16, 2.00018790482477e-13, -8.60467152213735e-11, 5.12229709037114e-08,
          1.48572235717979e-05, 6.37261928875436e-04, 4.89352455891786e-03),
         (1.19825839466702e-06, 1.18534705686654e-04, 2.26843463243900e-03, 4.89352518554385e-03))


def _odd_rational(x, bound: float, p: tuple, q: tuple):
    from tvm import tirx

    def horner(coeffs, v):
        acc = tirx.const(coeffs[0], "float32")
        for c in coeffs[1:]:
            acc = acc * v + tirx.const(c, "float32")
        return acc

    xc = tirx.max(tirx.min(x, tirx.const(bound, "float32")), tirx.const(-bound, "float32"))
    x2 = xc * xc
    return nan_passing(x, xc * horner(p, x2) / horner(q, x2))


def fast_erf(x):
    """erf(x) for float32 TIR expressions as a vectorizable rational polynomial (max abs error
    ~4e-7 against float64 erf). LLVM lowers `tir.erf` to one scalar call per lane: BERT's
    FFN GELU epilogue ran at 27 GFLOP/s with it, 99 with this. Other dtypes use `tir.erf`."""
    from tvm import tirx

    from ._lazy import expr_dtype

    return _odd_rational(x, *_ERF) if expr_dtype(x) == "float32" else tirx.erf(x)


def fast_tanh(x):
    """tanh(x) for float32 TIR expressions as a vectorizable rational polynomial (relative error
    ~1e-7 near 0, where x * P / Q keeps full precision). `tir.tanh` is one libm call per lane
    (GPT-2's GELU: a 128x768x3072 linear with the tanh epilogue took 3x the bare linear)."""
    from tvm import tirx

    from ._lazy import expr_dtype

    return _odd_rational(x, *_TANH) if expr_dtype(x) == "float32" else tirx.tanh(x)


# IEEE binary formats: (bits, exponent-all-ones pattern); NaN <=> |bits| > that pattern
_NAN_BITS = {"float16": (16, 0x7C00), "float32": (32, 0x7F800000), "float64": (64, 0x7FF0000000000000)}


def isnan(x):
    """x is NaN, for any float dtype, as an integer test on the bits: exponent all ones and a
    nonzero mantissa, i.e. (bits & ~sign) > the infinity pattern. Not `tir.isnan`: TVM's
    vectorizer and rfactor give up on it, and LLVM cannot rescue a reduction: with the NaN-
    propagating max combiner, a 768x768 row max ran 20x faster with this, argmax 6.5x, softmax
    12x128x128 2.4x (AVX-512, 2 threads). Not `x != x`: TVM's simplifier folds that to false.
    bfloat16 is tested in float32 (exact)."""
    from tvm import tirx

    from ._lazy import expr_dtype

    dt = expr_dtype(x)
    if dt == "bfloat16":
        x, dt = tirx.Cast("float32", x), "float32"
    if dt not in _NAN_BITS:  # integers and bool: never NaN
        return tirx.const(False, "bool")
    bits, inf = _NAN_BITS[dt]
    idt = f"int{bits}"
    magnitude = tirx.reinterpret(idt, x) & tirx.const((1 << (bits - 1)) - 1, idt)
    return magnitude > tirx.const(inf, idt)
