"""Flash attention for CPUs: one kernel, online softmax over key blocks.

For each (batch, block of BQ query rows) — the parallel loop — the kernel walks the
keys in blocks of BK: scores for the block (BQ x BK, a stack scratch), running row
max m, running sum l and the output accumulator acc (BQ x Dv) rescaled by
exp(m_old - m_new), then acc += P @ V_block. The seq x seq score matrix never
exists in memory. Causal masks skip whole key blocks past the diagonal. A row whose
keys are all masked outputs zeros (like torch).

K comes transposed ([..., D, Sk], the layout q @ kT reads): a row of scores is then
D broadcast-FMAs of contiguous key vectors. Rows are processed ROWS at a time so
each loaded key/value vector feeds ROWS accumulators.

Batch dims broadcast numpy-style: every operand is addressed through a flat view
with a per-operand batch offset computed from the flattened batch index.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from tvm import tirx
from tvm.script import tirx as T

from ...ops.te_util import fast_exp

BLOCK_Q = 16
BLOCK_K = 64
ROWS = 4  # query rows sharing each key / value vector load


@dataclass(frozen=True)
class AttentionShapes:
    q: tuple[int, ...]
    kt: tuple[int, ...]  # keys transposed: [..., D, Sk]
    v: tuple[int, ...]
    mask: tuple[int, ...] | None
    mask_dtype: str | None  # "bool" (True = attend) or a float dtype (added to the scores)
    out: tuple[int, ...]

    @property
    def batch(self) -> tuple[int, ...]:
        return self.out[:-2]


def _batch_strides(shape: tuple[int, ...], batch: tuple[int, ...], inner: int) -> list[int]:
    """Per output-batch-dim element stride of an operand (0 where it broadcasts)."""
    lead = len(batch) - (len(shape) - 2)
    dims = [1] * lead + list(shape[:-2])
    strides, acc = [], inner
    for d in reversed(dims):
        strides.append(acc if d != 1 else 0)
        acc *= d
    return list(reversed(strides))


def _offset(bb, batch: tuple[int, ...], strides: list[int]):
    """Element offset of an operand's batch slice for flat output batch index `bb`."""
    off = tirx.const(0, "int32")
    div = 1
    for d, s in zip(reversed(batch), reversed(strides)):
        if s:
            off = off + tirx.floormod(tirx.floordiv(bb, div), d) * s
        div *= d
    return off


def score_terms(sh: AttentionShapes, causal: bool):
    """What the flash kernels (CPU and CUDA) need about a score (i, j) beyond q.k:
    `mask_term(mf, bb, i, j)`, what the mask adds (0 or -inf for a bool mask, its value for a
    float one; 0 when `mf` is None), `valid(i, j)`, whether key j counts for query i (in range,
    and not in the future when causal), and the mask buffer's dtype."""
    Sq, Sk = sh.q[-2], sh.kt[-1]
    mshape = (1,) * max(0, 2 - len(sh.mask)) + tuple(sh.mask) if sh.mask is not None else (1, 1)
    mq, mk = mshape[-2], mshape[-1]
    ms = _batch_strides(mshape, sh.batch, mq * mk)
    mdtype = "bool" if sh.mask_dtype == "bool" else "float32"

    def mask_term(mf, bb, i, j):
        if mf is None:
            return tirx.const(0.0, "float32")
        idx = _offset(bb, sh.batch, ms) + (tirx.min(i, Sq - 1) if mq > 1 else 0) * mk + (tirx.min(j, Sk - 1) if mk > 1 else 0)
        if mdtype == "bool":
            return tirx.Select(mf[idx], tirx.const(0.0, "float32"), tirx.const(-math.inf, "float32"))
        return mf[idx]

    def valid(i, j):
        return tirx.all(j < Sk, j <= i) if causal else j < Sk

    return mask_term, valid, mdtype


def flash_attention_cpu(sh: AttentionShapes, scale: float, causal: bool, lanes: int = 16):
    """The PrimFunc (destination-passing: q, kT, v[, mask], out)."""
    *_, Sq, D = sh.q
    Sk, Dv = sh.kt[-1], sh.v[-1]
    B = int(np.prod(sh.batch, dtype=np.int64)) if sh.batch else 1
    BQ = BLOCK_Q
    # key blocks that tile Sk exactly keep key loads contiguous; otherwise the last block's
    # indices are clamped (correct, but gathered)
    exact = [bk for bk in range(BLOCK_K, lanes - 1, -lanes) if Sk % bk == 0]
    BK = exact[0] if exact else min(BLOCK_K, -(-Sk // lanes) * lanes)

    def key_index(j):
        return j if exact else tirx.min(j, Sk - 1)

    nqb, nkb = -(-Sq // BQ), -(-Sk // BK)
    qs = _batch_strides(sh.q, sh.batch, Sq * D)
    ks = _batch_strides(sh.kt, sh.batch, D * Sk)
    vs = _batch_strides(sh.v, sh.batch, Sk * Dv)
    has_mask = sh.mask is not None
    mask_term, valid, mdtype = score_terms(sh, causal)
    neg_inf = -math.inf
    size = lambda shape: int(np.prod(shape, dtype=np.int64))  # noqa: E731

    def f32(v):
        return tirx.const(v, "float32")

    def key_blocks(q0):
        return tirx.min(nkb, (q0 + BQ + BK - 1) // BK) if causal else nkb

    @T.macro
    def body(qf, kf, vf, mf, of):
        for task in T.parallel(B * nqb):
            s = T.alloc_local((BQ, BK), "float32")
            acc = T.alloc_local((BQ, Dv), "float32")
            m = T.alloc_local((BQ,), "float32")
            lsum = T.alloc_local((BQ,), "float32")
            tile = T.alloc_local((ROWS, max(BK, Dv)), "float32")  # register tile: constant indices only
            red = T.alloc_local((lanes,), "float32")
            one = T.alloc_local((2,), "float32")
            bb = task // nqb
            q0 = task % nqb * BQ
            for i in range(BQ):
                m[i] = f32(neg_inf)
                lsum[i] = f32(0.0)
                for d in T.vectorized(Dv):
                    acc[i, d] = f32(0.0)
            for kb in range(key_blocks(q0)):
                k0 = kb * BK
                for i0 in range(BQ // ROWS):  # scores: ROWS rows x BK keys, D broadcast-FMAs each
                    for ii in T.unroll(ROWS):
                        for j in T.vectorized(BK):
                            tile[ii, j] = f32(0.0)
                    for d in range(D):
                        for ii in T.unroll(ROWS):
                            for j in T.vectorized(BK):
                                tile[ii, j] = tile[ii, j] + qf[
                                    _offset(bb, sh.batch, qs) + T.min(q0 + i0 * ROWS + ii, Sq - 1) * D + d
                                ] * kf[_offset(bb, sh.batch, ks) + d * Sk + key_index(k0 + j)]
                    for ii in T.unroll(ROWS):  # scaled, masked, stored once
                        for j in T.vectorized(BK):
                            s[i0 * ROWS + ii, j] = T.Select(
                                valid(q0 + i0 * ROWS + ii, k0 + j),
                                tile[ii, j] * f32(scale) + mask_term(mf, bb, q0 + i0 * ROWS + ii, k0 + j),
                                f32(neg_inf),
                            )
                for i in range(BQ):
                    # new row max (vector partial maxima, then a short serial pass)
                    for c in T.vectorized(lanes):
                        red[c] = f32(neg_inf)
                    for jc in range(BK // lanes):
                        for c in T.vectorized(lanes):
                            red[c] = T.max(red[c], s[i, jc * lanes + c])
                    one[0] = m[i]
                    for c in range(lanes):
                        one[0] = T.max(one[0], red[c])
                    # rows with every key masked so far: exp(-inf - 0) = 0, not exp(nan)
                    one[1] = T.Select(one[0] == f32(neg_inf), f32(0.0), one[0])
                    for c in T.vectorized(lanes):
                        red[c] = f32(0.0)
                    for jc in range(BK // lanes):
                        for c in T.vectorized(lanes):
                            s[i, jc * lanes + c] = fast_exp(s[i, jc * lanes + c] - one[1])
                            red[c] = red[c] + s[i, jc * lanes + c]
                    alpha = fast_exp(m[i] - one[1])
                    lsum[i] = lsum[i] * alpha
                    for c in range(lanes):
                        lsum[i] = lsum[i] + red[c]
                    m[i] = one[0]
                    for d in T.vectorized(Dv):
                        acc[i, d] = acc[i, d] * alpha
                for i0 in range(BQ // ROWS):  # acc += P @ V_block, each value vector feeding ROWS rows
                    for ii in T.unroll(ROWS):
                        for d in T.vectorized(Dv):
                            tile[ii, d] = acc[i0 * ROWS + ii, d]
                    for j in range(T.min(BK, Sk - k0)):
                        for ii in T.unroll(ROWS):
                            for d in T.vectorized(Dv):
                                tile[ii, d] = tile[ii, d] + s[i0 * ROWS + ii, j] * vf[_offset(bb, sh.batch, vs) + (k0 + j) * Dv + d]
                    for ii in T.unroll(ROWS):
                        for d in T.vectorized(Dv):
                            acc[i0 * ROWS + ii, d] = tile[ii, d]
            for i in range(T.min(BQ, Sq - q0)):
                for d in T.vectorized(Dv):
                    of[bb * Sq * Dv + (q0 + i) * Dv + d] = T.Select(lsum[i] > f32(0.0), acc[i, d] / lsum[i], f32(0.0))

    if has_mask:

        @T.prim_func(private=True)
        def kernel(q: T.Buffer(sh.q, "float32"), k: T.Buffer(sh.kt, "float32"), v: T.Buffer(sh.v, "float32"),
                   mask: T.Buffer(sh.mask, mdtype), out: T.Buffer(sh.out, "float32")):
            T.func_attr({"tirx.noalias": True})
            body(T.decl_buffer((size(sh.q),), "float32", data=q.data), T.decl_buffer((size(sh.kt),), "float32", data=k.data),
                 T.decl_buffer((size(sh.v),), "float32", data=v.data), T.decl_buffer((size(sh.mask),), mdtype, data=mask.data),
                 T.decl_buffer((size(sh.out),), "float32", data=out.data))

        return kernel

    @T.prim_func(private=True)
    def kernel_nomask(q: T.Buffer(sh.q, "float32"), k: T.Buffer(sh.kt, "float32"), v: T.Buffer(sh.v, "float32"),
                      out: T.Buffer(sh.out, "float32")):
        T.func_attr({"tirx.noalias": True})
        body(T.decl_buffer((size(sh.q),), "float32", data=q.data), T.decl_buffer((size(sh.kt),), "float32", data=k.data),
             T.decl_buffer((size(sh.v),), "float32", data=v.data), None, T.decl_buffer((size(sh.out),), "float32", data=out.data))

    return kernel_nomask
