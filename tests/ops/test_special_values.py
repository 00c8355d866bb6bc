"""NaN and infinities through the ops whose x86 lowerings test for NaN without `tir.isnan`: the fast
exp / erf / tanh polynomials (clamps that let NaN through) and the NaN-propagating reductions and
comparisons (a bit test). Compiled on x86, compared with the numpy reference exactly where the
reference is NaN or infinite."""
from __future__ import annotations

import numpy as np
import pytest

import graphc
from graphc import dtypes
from graphc.ir import GraphBuilder, TensorType

SPECIALS = [np.nan, np.inf, -np.inf, 0.0, -0.0, 100.0, -100.0, 1e-30]


def _with_specials(shape, dtype, rng):
    """Random values in [-6, 6) with every special value on each of the first rows (rows long
    enough for the vectorized reduction paths: a multiple of 16, at least 32)."""
    x = rng.uniform(-6, 6, size=shape).astype(np.float64)
    rows = x.reshape(-1, shape[-1])
    for r in range(min(len(rows), len(SPECIALS))):
        rows[r, (7 * r + 3) % shape[-1]] = SPECIALS[r]
    rows[-1, :] = -np.inf  # an all -inf row: max is -inf, softmax NaN
    return x.astype(dtype)


def _run_one_op(op, inputs, attrs, x86):
    b = GraphBuilder(op)
    vals = [b.input(f"x{i}", TensorType.of(a)) for i, a in enumerate(inputs)]
    g = b.build(b.emit(op, vals, attrs))
    got = graphc.compile(g, target=x86, opt_level=0, tuning=False, log=lambda *a, **k: None).session().run(*inputs)
    return got, graphc.run_graph(g, *inputs)


def _assert_same_specials(got, ref, rtol, atol):
    for a, r in zip(got, ref):
        a64, r64 = np.asarray(a).astype(np.float64), np.asarray(r).astype(np.float64)
        np.testing.assert_array_equal(np.isnan(a64), np.isnan(r64))
        np.testing.assert_array_equal(np.isinf(a64) * np.sign(a64), np.isinf(r64) * np.sign(r64))
        finite = np.isfinite(r64)
        np.testing.assert_allclose(a64[finite], r64[finite], rtol=rtol, atol=atol)


@pytest.mark.parametrize("op,attrs", [
    ("exp", {}), ("sigmoid", {}), ("silu", {}), ("tanh", {}), ("erf", {}),
    ("gelu", {}), ("gelu", {"approximate": "tanh"}), ("softmax", {"axis": -1}),
])
def test_fast_polynomials_keep_nan_and_infinities(op, attrs, x86):
    x = _with_specials((9, 48), np.float32, np.random.default_rng(0))
    got, ref = _run_one_op(op, [x], attrs, x86)
    _assert_same_specials(got, ref, rtol=2e-6, atol=1e-6)


@pytest.mark.parametrize("dtype", ["f32", "f16", "f64", "bf16"])
@pytest.mark.parametrize("op,attrs", [
    ("max", {"axes": [-1]}), ("min", {"axes": [-1]}), ("argmax", {"axis": -1}), ("argmin", {"axis": -1}),
    ("isnan", {}),
])
def test_nan_aware_reductions_match_numpy(op, attrs, dtype, x86):
    x = _with_specials((9, 64), dtypes.to_numpy(dtype), np.random.default_rng(1))
    got, ref = _run_one_op(op, [x], attrs, x86)
    for a, r in zip(got, ref):
        np.testing.assert_array_equal(np.asarray(a).astype(np.float64), np.asarray(r).astype(np.float64))


@pytest.mark.parametrize("op", ["maximum", "minimum"])
def test_nan_aware_elementwise_extrema(op, x86):
    rng = np.random.default_rng(2)
    x, y = _with_specials((9, 48), np.float32, rng), _with_specials((9, 48), np.float32, rng)[::-1].copy()
    got, ref = _run_one_op(op, [x, y], {}, x86)
    np.testing.assert_array_equal(got[0], ref[0])
