"""scaled_dot_product_attention(q, k, v[, mask]) with PyTorch's semantics.

q[..., Sq, D], k[..., Sk, D], v[..., Sk, Dv] -> [..., Sq, Dv]; batch dims broadcast
(numpy rules), and so does the optional mask against the scores [..., Sq, Sk]:
a bool mask says where to attend (True = attend, like torch), a float mask is
added to the scores. causal=True masks keys j > i (top-left aligned). softcap > 0
bounds the scaled scores to (-softcap, softcap) as ``softcap * tanh(s / softcap)``
before masking (Gemma-2, ONNX Attention); 0 leaves them as they are.

A query row with every key masked gives zeros (torch's "safe softmax"), not NaN.
"""
from __future__ import annotations

import math

import numpy as np

from .. import dtypes
from ..ir import TensorType, check_infer
from ._grad import scalar, unbroadcast
from ._lazy import ops as O
from ._lazy import te, tir
from .registry import ANCHOR, Sample, broadcast_shapes, defop, rand
from .te_util import broadcast_index, fast_exp, read_broadcast, te_shape

# ---------------------------------------------------------------------------------------
# inference and reference
# ---------------------------------------------------------------------------------------


def _scale(scale, d: int) -> float:
    return 1.0 / math.sqrt(d) if scale is None else float(scale)


def _scores_shape(q, k, v, mask=None) -> tuple[int, ...]:
    """[*batch, Sq, Sk] of the attention scores (batch dims of all inputs broadcast)."""
    full = (*broadcast_shapes(q[:-2], k[:-2], v[:-2]), q[-2], k[-2])
    return broadcast_shapes(full, mask) if mask is not None else full


def _sdpa_infer(q: TensorType, k: TensorType, v: TensorType, *mask: TensorType, scale, causal, softcap):
    check_infer(len(mask) <= 1, f"takes q, k, v and an optional mask, got {3 + len(mask)} inputs")
    for name, t in (("q", q), ("k", k), ("v", v)):
        check_infer(t.rank >= 2, f"{name} must be [..., S, D] (rank >= 2), got {list(t.shape)}")
    check_infer(
        dtypes.is_float(q.dtype) and q.dtype == k.dtype == v.dtype,
        f"q, k, v must be floats of one dtype, got {q.dtype}, {k.dtype}, {v.dtype}",
    )
    check_infer(q.shape[-1] == k.shape[-1], f"q has head size {q.shape[-1]} but k has {k.shape[-1]}")
    check_infer(k.shape[-2] == v.shape[-2], f"k has {k.shape[-2]} keys but v has {v.shape[-2]} values")
    check_infer(scale is None or isinstance(scale, (int, float)), f"scale must be a number or None, got {scale!r}")
    check_infer(isinstance(causal, bool), f"causal must be a bool, got {causal!r}")
    check_infer(isinstance(softcap, (int, float)) and softcap >= 0, f"softcap must be a number >= 0, got {softcap!r}")
    scores = _scores_shape(q.shape, k.shape, v.shape)
    if mask:
        m = mask[0]
        check_infer(m.dtype in ("bool", q.dtype), f"mask must be bool or {q.dtype}, got {m.dtype}")
        check_infer(
            _scores_shape(q.shape, k.shape, v.shape, m.shape)[-2:] == scores[-2:],
            f"mask {list(m.shape)} does not broadcast to the scores {list(scores)}",
        )
        scores = _scores_shape(q.shape, k.shape, v.shape, m.shape)
    return TensorType(q.dtype, (*scores[:-1], v.shape[-1]))


def _sdpa_ref(q, k, v, *mask, scale, causal, softcap):
    p = probs_ref(q, k, *mask, scale=scale, causal=causal, softcap=softcap)
    return np.matmul(p, v.astype(np.float64)).astype(q.dtype)


def probs_ref(q, k, *mask, scale, causal, softcap=0.0):
    """The attention probabilities in float64 (zeros on fully masked rows); shared with the backward op."""
    s = np.matmul(q.astype(np.float64), np.swapaxes(k.astype(np.float64), -1, -2)) * _scale(scale, q.shape[-1])
    if softcap:
        s = softcap * np.tanh(s / softcap)
    if causal:
        s = np.where(np.tril(np.ones(s.shape[-2:], bool)), s, -np.inf)
    if mask:
        s = np.where(mask[0], s, -np.inf) if mask[0].dtype == bool else s + mask[0]
    top = s.max(axis=-1, keepdims=True)
    live = top > -np.inf  # rows with at least one key to attend to
    e = np.exp(s - np.where(live, top, 0.0))
    return np.where(live, e / np.where(live, e.sum(axis=-1, keepdims=True), 1.0), 0.0)


# ---------------------------------------------------------------------------------------
# TE lowering: scores, masked logits, stable softmax (row max, exp-sum), probs @ v
# ---------------------------------------------------------------------------------------



def _sdpa_lower(q, k, v, *mask, scale, causal, softcap):
    probs = probs_te(q, k, v, *mask, scale=scale, causal=causal, softcap=softcap)
    full, dv = te_shape(probs), te_shape(v)[-1]
    rk = te.reduce_axis((0, full[-1]), name="rk")
    return te.compute(
        (*full[:-2], full[-2], dv),
        lambda *i: te.sum(probs[(*i[:-1], rk)] * v[(*broadcast_index(te_shape(v)[:-2], i[:-2]), rk, i[-1])], axis=rk),
        name="attention",
    )


def probs_te(q, k, v, *mask, scale, causal, softcap=0.0):
    """TE of the attention probabilities [*batch, Sq, Sk] (kept in memory); shared with the backward op."""
    dtype = str(q.dtype)
    d = te_shape(q)[-1]
    full = _scores_shape(te_shape(q), te_shape(k), te_shape(v), te_shape(mask[0]) if mask else None)
    rows = full[:-1]

    def c(val):
        return tir.const(val, dtype)

    neg_inf = c(float("-inf"))

    rd = te.reduce_axis((0, d), name="rd")
    scores = te.compute(
        full,
        lambda *i: te.sum(q[(*broadcast_index(te_shape(q)[:-2], i[:-2]), i[-2], rd)] * k[(*broadcast_index(te_shape(k)[:-2], i[:-2]), i[-1], rd)], axis=rd),
        name="scores",
    )

    def logit(*i):  # scaled (and capped) score with the masks applied (masked: -inf)
        s = scores[i] * c(_scale(scale, d))
        if softcap:
            s = c(softcap) * tir.tanh(s / c(softcap))
        allowed = []
        if causal:
            allowed.append(i[-1] <= i[-2])
        if mask and mask[0].dtype == "bool":
            allowed.append(read_broadcast(mask[0], i))
        elif mask:
            s = s + read_broadcast(mask[0], i)
        return tir.Select(tir.all(*allowed), s, neg_inf) if allowed else s

    logits = te.compute(full, logit, name="logits")
    rj = te.reduce_axis((0, full[-1]), name="rj")
    row_max = te.compute(rows, lambda *r: te.max(logits[(*r, rj)], axis=rj), name="row_max")
    # fully masked rows (max -inf) subtract 0 instead, so every exp is 0 and the row sum too
    shift = te.compute(rows, lambda *r: tir.Select(row_max[r] == neg_inf, c(0.0), row_max[r]), name="shift")
    rj2 = te.reduce_axis((0, full[-1]), name="rj")
    row_sum = te.compute(rows, lambda *r: te.sum(fast_exp(logits[(*r, rj2)] - shift[r]), axis=rj2), name="row_sum")

    def prob(*i):
        r = i[:-1]
        return tir.Select(row_sum[r] > c(0.0), fast_exp(logits[i] - shift[r]) / row_sum[r], c(0.0))

    # kept (not inlined into the next reduction): one exp per score instead of one per score and Dv
    return te.compute(full, prob, name="probs", attrs={"graphc_keep": 1})


# ---------------------------------------------------------------------------------------
# gradient: dq, dk, dv by the flash-style backward op (graphc/ops/attention_backward.py:
# one fused kernel that never materializes [Sq, Sk]); with softcap, and for an additive
# mask's own gradient (the logits' gradient), the forward recomputed with graphc ops and
# differentiated through softmax and the matmuls
# ---------------------------------------------------------------------------------------


def _swap_last(t):
    perm = list(range(t.ndim))
    perm[-2], perm[-1] = perm[-1], perm[-2]
    return O.transpose(t, perm=tuple(perm))


def _sdpa_grad(g, q, k, v, *mask, out, scale, causal, softcap):
    if softcap:
        return _decomposed_grad(g, q, k, v, *mask, scale=scale, causal=causal, softcap=softcap)
    dq, dk, dv = O.scaled_dot_product_attention_backward(q, k, v, *mask, out, g, scale=scale, causal=causal)
    grads = (unbroadcast(dq, q.shape), unbroadcast(dk, k.shape), unbroadcast(dv, v.shape))
    if mask and mask[0].dtype != "bool":
        # the mask's gradient only (DCE drops this recomputation when the mask needs none)
        return grads + _decomposed_grad(g, q, k, v, *mask, scale=scale, causal=causal, softcap=softcap)[3:]
    return grads + (None,) * len(mask)


def _decomposed_grad(g, q, k, v, *mask, scale, causal, softcap):
    sc = _scale(scale, q.shape[-1])
    s = O.matmul(q, _swap_last(k)) * sc
    if softcap:
        capped = O.tanh(s * (1.0 / softcap))
        s = capped * softcap
        sc = (1.0 - capped * capped) * sc  # d(capped score) / d(q . k)
    neg_inf = scalar(float("-inf"), s.dtype)
    if causal:
        s = O.where(np.tril(np.ones(s.shape[-2:], bool)), s, neg_inf)
    if mask:
        s = O.where(mask[0], s, neg_inf) if mask[0].dtype == "bool" else s + mask[0]
        # rows with every key masked attend to nothing (softmax alone would give NaN there)
        live = O.greater(O.max(s, axes=(-1,), keepdims=True), neg_inf)
        p = O.where(live, O.softmax(O.where(live, s, scalar(0, s.dtype)), axis=-1), scalar(0, s.dtype))
    else:
        p = O.softmax(s, axis=-1)
    dv = O.matmul(_swap_last(p), g)
    dp = O.matmul(g, _swap_last(v))
    dlogits = p * (dp - O.sum(dp * p, axes=(-1,), keepdims=True))  # softmax backward
    ds = dlogits * sc  # times d(score) / d(q . k)
    dq = O.matmul(ds, k)
    dk = O.matmul(_swap_last(ds), q)
    grads = (unbroadcast(dq, q.shape), unbroadcast(dk, k.shape), unbroadcast(dv, v.shape))
    if mask and mask[0].dtype != "bool":  # an additive float mask (a learned bias, ALiBi...) is a logit term
        return grads + (unbroadcast(dlogits, mask[0].shape),)
    return grads + (None,) * len(mask)


# ---------------------------------------------------------------------------------------
# samples
# ---------------------------------------------------------------------------------------


def _sdpa_samples(rng):
    bool_mask = rand(rng, 4, 6, dtype="bool")
    bool_mask[:, 0] = True
    bool_mask[2] = False  # a fully masked query row
    float_mask = rand(rng, 2, 1, 4, 6)
    float_mask[..., 1, 3:] = -np.inf
    causal_mask = rand(rng, 2, 1, 1, 5, dtype="bool")
    causal_mask[..., 0] = True

    def qkv(batch_q, sq, batch_kv, sk, d, dv):
        return rand(rng, *batch_q, sq, d), rand(rng, *batch_kv, sk, d), rand(rng, *batch_kv, sk, dv)

    return [
        Sample(qkv((2,), 4, (2,), 5, 3, 6), note="Sq != Sk, Dv != D"),
        Sample(qkv((2, 2), 4, (2, 2), 4, 8, 8), {"causal": True}, note="causal"),
        Sample(qkv((1, 2), 6, (1, 2), 3, 4, 4), {"causal": True}, note="causal, Sq > Sk"),
        Sample((*qkv((1, 2), 4, (1, 2), 6, 8, 5), bool_mask), note="bool mask, one row fully masked"),
        Sample((*qkv((2, 3), 4, (2, 3), 6, 4, 4), float_mask), {"scale": 0.5}, note="float mask with -inf, scale"),
        Sample((rand(rng, 2, 3, 4, 8), rand(rng, 1, 3, 5, 8), rand(rng, 3, 5, 8)), note="batch broadcast"),
        Sample((*qkv((2, 1), 5, (2,), 5, 4, 4), causal_mask), {"causal": True}, note="causal and key mask, mask broadcasts batch"),
        Sample((*qkv((2,), 4, (2,), 6, 8, 4), float_mask[0]), {"softcap": 0.5}, note="softcap, float mask with -inf"),
    ]


scaled_dot_product_attention = defop(
    "scaled_dot_product_attention",
    infer=_sdpa_infer,
    ref=_sdpa_ref,
    lower=_sdpa_lower,
    grad=_sdpa_grad,
    fusion=ANCHOR,
    attrs={"scale": None, "causal": False, "softcap": 0.0},
    samples=_sdpa_samples,
    doc="softmax(cap(q @ k^T * scale) [+ mask]) @ v; scale None = 1/sqrt(D); optional bool or additive float mask; causal; softcap.",
)
