"""scaled_dot_product_attention_backward(q, k, v[, mask], out, g) -> (dq, dk, dv).

The gradient of ``out = scaled_dot_product_attention(q, k, v[, mask])`` for the
output cotangent ``g`` (no softcap: that stays on the decomposed gradient), written
as FlashAttention-2's backward defines it:

    P = softmax(scale * q @ k^T [+ mask])        (zeros on fully masked rows)
    D = rowsum(g * out)                           (= rowsum(P * dP), from the forward output)
    dv = P^T @ g,  dP = g @ v^T,  dS = P * (dP - D),  dq = scale * dS @ k,  dk = scale * dS^T @ q

so a kernel can recompute P block by block and never hold a [Sq, Sk] matrix. `out`
must be the forward's output. The three gradients are per *broadcast* batch
([*batch, S, D] with batch the scores' batch dims): a broadcast q/k/v's gradient is
their sum over the dims it was broadcast along, which the gradient rule of
scaled_dot_product_attention takes (``unbroadcast``); summing inside a kernel would
race between the batches sharing one k.

The generic lowering below materializes the probabilities (targets and shapes the
flash template in graphc/codegen/kernels/attention_backward_cpu.py does not take).
Second derivatives through it are not defined (differentiable=False).
"""
from __future__ import annotations

import numpy as np

from ..ir import TensorType, check_infer
from ._lazy import te, tir
from .attention import _scale, _sdpa_infer, _sdpa_samples, probs_ref, probs_te
from .registry import ANCHOR, Sample, defop, rand
from .te_util import broadcast_index, te_shape


def _split(rest):
    """(mask tuple, out, g) from the inputs after q, k, v."""
    return tuple(rest[:-2]), rest[-2], rest[-1]


def _infer(q: TensorType, k: TensorType, v: TensorType, *rest: TensorType, scale, causal):
    check_infer(len(rest) in (2, 3), f"takes q, k, v, an optional mask, out and g, got {3 + len(rest)} inputs")
    mask, out, g = _split(rest)
    fwd = _sdpa_infer(q, k, v, *mask, scale=scale, causal=causal, softcap=0.0)
    check_infer(out == fwd and g == fwd, f"out and g must both be the forward's output type {fwd}, got {out} and {g}")
    batch = fwd.shape[:-2]
    sq, sk, d, dv = q.shape[-2], k.shape[-2], q.shape[-1], v.shape[-1]
    return (TensorType(q.dtype, (*batch, sq, d)), TensorType(q.dtype, (*batch, sk, d)), TensorType(q.dtype, (*batch, sk, dv)))


def _ref(q, k, v, *rest, scale, causal):
    mask, out, g = _split(rest)
    sc = _scale(scale, q.shape[-1])
    p = probs_ref(q, k, *mask, scale=scale, causal=causal)
    q64, k64, v64, g64 = (a.astype(np.float64) for a in (q, k, v, g))
    dv = np.swapaxes(p, -1, -2) @ g64
    dp = g64 @ np.swapaxes(v64, -1, -2)
    ds = p * (dp - np.sum(g64 * out.astype(np.float64), axis=-1, keepdims=True)) * sc
    batch = p.shape[:-2]
    dq = np.broadcast_to(ds @ k64, (*batch, *q.shape[-2:]))
    dk = np.broadcast_to(np.swapaxes(ds, -1, -2) @ q64, (*batch, *k.shape[-2:]))
    dv = np.broadcast_to(dv, (*batch, *v.shape[-2:]))
    return tuple(np.ascontiguousarray(a).astype(q.dtype) for a in (dq, dk, dv))


def _lower(q, k, v, *rest, scale, causal):
    mask, out, g = _split(rest)
    probs = probs_te(q, k, v, *mask, scale=scale, causal=causal)
    full = te_shape(probs)
    batch, sq, sk = full[:-2], full[-2], full[-1]
    d, dv_ = te_shape(q)[-1], te_shape(v)[-1]
    sc = tir.const(_scale(scale, d), str(q.dtype))

    def at(t, b, *rc):  # t[b..., r, c] with t's batch dims broadcast against the scores'
        return t[(*broadcast_index(te_shape(t)[:-2], b), *rc)]

    ri = te.reduce_axis((0, sq), name="ri")
    dv = te.compute((*batch, sk, dv_), lambda *i: te.sum(probs[(*i[:-2], ri, i[-2])] * g[(*i[:-2], ri, i[-1])], axis=ri), name="dv")
    re_ = te.reduce_axis((0, dv_), name="re")
    dp = te.compute(full, lambda *i: te.sum(g[(*i[:-1], re_)] * at(v, i[:-2], i[-1], re_), axis=re_), name="dp")
    re2 = te.reduce_axis((0, dv_), name="re")
    drow = te.compute(full[:-1], lambda *r: te.sum(g[(*r, re2)] * out[(*r, re2)], axis=re2), name="drow")
    # kept: dS feeds two reductions (dq, dk); inlining would recompute dP per element of both
    ds = te.compute(full, lambda *i: probs[i] * (dp[i] - drow[i[:-1]]) * sc, name="ds", attrs={"graphc_keep": 1})
    rj = te.reduce_axis((0, sk), name="rj")
    dq = te.compute((*batch, sq, d), lambda *i: te.sum(ds[(*i[:-1], rj)] * at(k, i[:-2], rj, i[-1]), axis=rj), name="dq")
    ri2 = te.reduce_axis((0, sq), name="ri")
    dk = te.compute((*batch, sk, d), lambda *i: te.sum(ds[(*i[:-2], ri2, i[-2])] * at(q, i[:-2], ri2, i[-1]), axis=ri2), name="dk")
    return dq, dk, dv


def _samples(rng):
    """The forward's samples (softcap aside), with out = the forward's output and a random g."""
    samples = []
    for s in _sdpa_samples(rng):
        attrs = {a: s.attrs[a] for a in ("scale", "causal") if a in s.attrs}
        if s.attrs.get("softcap"):
            continue
        out = probs_ref(*s.inputs[:2], *s.inputs[3:], scale=attrs.get("scale"), causal=attrs.get("causal", False))
        out = (out @ s.inputs[2].astype(np.float64)).astype(np.float32)
        samples.append(Sample((*s.inputs, out, rand(rng, *out.shape)), attrs, note=s.note, rtol=1e-4, atol=1e-5))
    return samples


scaled_dot_product_attention_backward = defop(
    "scaled_dot_product_attention_backward",
    infer=_infer,
    ref=_ref,
    lower=_lower,
    grad=None,
    differentiable=False,
    fusion=ANCHOR,
    attrs={"scale": None, "causal": False},
    samples=_samples,
    doc="(dq, dk, dv) of scaled_dot_product_attention (no softcap) for cotangent g, given its output out; "
    "per broadcast batch; flash-style (D = rowsum(g * out)).",
)
