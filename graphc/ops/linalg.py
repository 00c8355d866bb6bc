"""Matrix multiplication: matmul (numpy semantics) and linear (x @ w.T, PyTorch's weight layout).

Both lower to one te.compute with a single reduce axis, annotated with
``graphc_rule`` so the target's blocked anchor schedule applies ("matmul" for
[*batch, M, N], "dense" for [*lead, N] reading w[N, K]).
"""
from __future__ import annotations

import numpy as np

from ..errors import TypeInferenceError
from ..ir import TensorType, check_infer
from ._grad import unbroadcast
from ._lazy import te, topi
from .registry import ANCHOR, Sample, broadcast_shapes, defop, rand
from .te_util import broadcast_index, te_shape

# ---------------------------------------------------------------------------------------
# matmul
# ---------------------------------------------------------------------------------------


def _promoted(a_shape, b_shape):
    """numpy's promotion of 1-d operands: a [K] -> [1, K], b [K] -> [K, 1]."""
    a2 = (1, *a_shape) if len(a_shape) == 1 else tuple(a_shape)
    b2 = (*b_shape, 1) if len(b_shape) == 1 else tuple(b_shape)
    return a2, b2


def _matmul_shapes(a_shape, b_shape):
    """(output shape, output shape with the promoted 1-d dims kept) of a @ b; assumes valid operands."""
    a2, b2 = _promoted(a_shape, b_shape)
    batch = broadcast_shapes(a2[:-2], b2[:-2])
    rows = (a2[-2],) if len(a_shape) > 1 else ()  # numpy drops the dims it promoted
    cols = (b2[-1],) if len(b_shape) > 1 else ()
    return (*batch, *rows, *cols), (*batch, a2[-2], b2[-1])



def _reshaped(t, shape):
    """Tensor proxy reshaped to `shape` (no node when it already has it)."""
    return t if tuple(t.shape) == tuple(shape) else t.reshape(tuple(shape))


def _te_reshaped(t, shape):
    return t if te_shape(t) == tuple(shape) else topi.reshape(t, tuple(shape))


def _matmul_infer(a: TensorType, b: TensorType):
    check_infer(a.dtype == b.dtype, f"operand dtypes differ: {a.dtype} vs {b.dtype}")
    check_infer(a.dtype != "bool", "needs numeric operands, got bool")
    check_infer(a.rank >= 1 and b.rank >= 1, f"operands must have rank >= 1, got a {list(a.shape)}, b {list(b.shape)}")
    k_a, k_b = a.shape[-1], b.shape[0 if b.rank == 1 else -2]
    check_infer(k_a == k_b, f"inner dimensions differ: a is {list(a.shape)}, b is {list(b.shape)} ({k_a} != {k_b})")
    a2, b2 = _promoted(a.shape, b.shape)
    try:
        broadcast_shapes(a2[:-2], b2[:-2])
    except TypeInferenceError:
        check_infer(False, f"batch dimensions {list(a2[:-2])} and {list(b2[:-2])} do not broadcast (a is {list(a.shape)}, b is {list(b.shape)})")
    return TensorType(a.dtype, _matmul_shapes(a.shape, b.shape)[0])


def _to_accurate(x: np.ndarray) -> np.ndarray:
    """Floats compute in float64 (the oracle should beat float32 accumulation); ints as they are."""
    return x.astype(np.float64) if x.dtype.kind == "f" else x


def _matmul_ref(a, b):
    return np.asarray(np.matmul(_to_accurate(a), _to_accurate(b))).astype(a.dtype)



def _matmul_nd(a, b):
    """[*ba, M, K] @ [*bb, K, N] -> [*batch, M, N]: the compute the x86 matmul rule schedules."""
    *_, m, kdim = te_shape(a)
    n = te_shape(b)[-1]
    batch = broadcast_shapes(te_shape(a)[:-2], te_shape(b)[:-2])
    k = te.reduce_axis((0, kdim), name="k")

    def element(*idx):
        *bi, i, j = idx
        return te.sum(a[(*broadcast_index(te_shape(a)[:-2], bi), i, k)] * b[(*broadcast_index(te_shape(b)[:-2], bi), k, j)], axis=k)

    return te.compute((*batch, m, n), element, name="matmul", attrs={"graphc_rule": "matmul"})


def _matmul_te(a, b):
    """1-d operands go through reshapes to 2-d, so the annotated compute is always the n-d one."""
    a2, b2 = _promoted(te_shape(a), te_shape(b))
    out_shape, _ = _matmul_shapes(te_shape(a), te_shape(b))
    return _te_reshaped(_matmul_nd(_te_reshaped(a, a2), _te_reshaped(b, b2)), out_shape)


def _matmul_grad(g, a, b, out):
    """dA = g @ b^T, dB = a^T @ g on the promoted (>= 2-d) operands, summed back over broadcast batch dims."""
    a2_shape, b2_shape = _promoted(a.shape, b.shape)
    a2, b2 = _reshaped(a, a2_shape), _reshaped(b, b2_shape)
    g2 = _reshaped(g, _matmul_shapes(a.shape, b.shape)[1])
    ga = unbroadcast(g2 @ b2.transpose(-2, -1), a2_shape)
    gb = unbroadcast(a2.transpose(-2, -1) @ g2, b2_shape)
    return (_reshaped(ga, a.shape), _reshaped(gb, b.shape))


matmul = defop(
    "matmul",
    infer=_matmul_infer,
    ref=_matmul_ref,
    lower=_matmul_te,
    grad=_matmul_grad,
    fusion=ANCHOR,
    samples=lambda rng: [
        Sample((rand(rng, 3, 5), rand(rng, 5, 7))),
        Sample((rand(rng, 16, 32), rand(rng, 32, 64)), note="blocked tile sizes", rtol=1e-4, atol=1e-5),
        Sample((rand(rng, 2, 1, 3, 4), rand(rng, 5, 4, 6)), note="broadcast batch"),
        Sample((rand(rng, 2, 17, 19), rand(rng, 2, 19, 10)), note="batched, sizes not a multiple of the vector width"),
        Sample((rand(rng, 4), rand(rng, 4, 6)), note="1-d @ 2-d"),
        Sample((rand(rng, 3, 4), rand(rng, 4)), note="2-d @ 1-d"),
        Sample((rand(rng, 7), rand(rng, 7)), note="1-d @ 1-d"),
        Sample((rand(rng, 5), rand(rng, 2, 5, 3)), note="1-d @ batched"),
        Sample((rand(rng, 2, 3, 5), rand(rng, 5)), note="batched @ 1-d"),
        Sample((rand(rng, 3, 4, dtype="int32", low=-20, high=20), rand(rng, 4, 5, dtype="int32", low=-20, high=20)), note="int32"),
    ],
)

# ---------------------------------------------------------------------------------------
# linear: x[..., K] @ w[N, K]^T (bias is a separate add)
# ---------------------------------------------------------------------------------------


def _linear_infer(x: TensorType, w: TensorType):
    check_infer(x.dtype == w.dtype, f"operand dtypes differ: {x.dtype} vs {w.dtype}")
    check_infer(x.dtype != "bool", "needs numeric operands, got bool")
    check_infer(x.rank >= 1, "x must have rank >= 1, got a 0-d tensor")
    check_infer(w.rank == 2, f"weight must be 2-d [out_features, in_features], got {list(w.shape)}")
    check_infer(
        x.shape[-1] == w.shape[1],
        f"in_features differ: x is {list(x.shape)}, weight is {list(w.shape)} ({x.shape[-1]} != {w.shape[1]})",
    )
    return TensorType(x.dtype, (*x.shape[:-1], w.shape[0]))


def _linear_te(x, w):
    *lead, kdim = te_shape(x)
    n = te_shape(w)[0]
    k = te.reduce_axis((0, kdim), name="k")

    def element(*idx):
        *li, j = idx
        return te.sum(x[(*li, k)] * w[j, k], axis=k)

    return te.compute((*lead, n), element, name="dense", attrs={"graphc_rule": "dense"})


def _linear_grad(g, x, w, out):
    """dx = g @ w; dw = g^T @ x with every leading dim flattened into the row dim."""
    n, k = w.shape
    g2 = g if g.ndim == 2 else g.reshape(-1, n)
    x2 = x if x.ndim == 2 else x.reshape(-1, k)
    return (g @ w, g2.transpose(0, 1) @ x2)


linear = defop(
    "linear",
    infer=_linear_infer,
    ref=lambda x, w: _matmul_ref(x, np.swapaxes(w, 0, 1)),
    lower=_linear_te,
    grad=_linear_grad,
    fusion=ANCHOR,
    samples=lambda rng: [
        Sample((rand(rng, 4, 8), rand(rng, 6, 8))),
        Sample((rand(rng, 2, 3, 17), rand(rng, 10, 17)), note="3-d input, sizes not a multiple of the vector width"),
        Sample((rand(rng, 5), rand(rng, 3, 5)), note="1-d input"),
        Sample((rand(rng, 16, 32), rand(rng, 64, 32)), note="tile-sized", rtol=1e-4, atol=1e-5),
        Sample((rand(rng, 3, 6, dtype="int64", low=-9, high=9), rand(rng, 4, 6, dtype="int64", low=-9, high=9)), note="int64"),
    ],
)
