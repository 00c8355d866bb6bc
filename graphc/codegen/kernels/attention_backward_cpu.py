"""Flash attention backward for CPUs: one kernel, two parallel loops, no [Sq, Sk] buffer.

The gradient of softmax(scale * q k^T + mask) v (FlashAttention-2's backward, see
graphc/ops/attention_backward.py for the formulas), with P recomputed tile by tile:

* phase 1, parallel over (batch, block of BQ query rows): D_i = rowsum(g_i * out_i),
  then ONE pass over the key blocks computing the score tile S and dP = g v^T,
  keeping the running row max m and sum l (online softmax, as the forward) and
  acc_i = sum_j exp(s_ij - m_i) (dP_ij - D_i) k_j rescaled by exp(m_old - m_new)
  when m grows, so dq = scale * acc / l needs no second pass. The row statistics
  (shift m, 1/l, D) go to a small [3, B * Sq] scratch.
* phase 2, parallel over (batch, block of BK keys): a pass over the query blocks
  recomputes S and dP, P = exp(S - m) / l, dS = P (dP - D), and accumulates
  dv += P^T g and dk += dS^T q in BK x D register-tiled accumulators.

Scores are vectorized over key lanes: each key (value) block is first copied
transposed into a [D, BK] local tile, so one score row is D broadcast-FMAs of
contiguous vectors like the forward's (the copy costs 1/BQ of the FMAs). A causal
mask skips key blocks past the diagonal in phase 1 and query blocks before it in
phase 2; fully masked rows get zero gradients (l = 0 -> 1/l stored as 0).

Operands may broadcast over batch dims (addressed like the forward's through
per-operand batch offsets); out, g and the three gradients are per broadcast batch.
"""
from __future__ import annotations

import math

import numpy as np
from tvm import tirx
from tvm.script import tirx as T

from ...ops.te_util import fast_exp
from .attention_cpu import AttentionShapes, _offset, score_terms

BLOCK_Q = 16
BLOCK_K = 64
ROWS = 4  # rows sharing each loaded vector (query rows for scores, key rows for dk / dv)


def _key_block(Sk: int, lanes: int) -> tuple[int, bool]:
    """(BK, exact): a block that tiles Sk exactly keeps key loads in range; else the last one is clamped."""
    exact = [bk for bk in range(BLOCK_K, lanes - 1, -lanes) if Sk % bk == 0]
    return (exact[0], True) if exact else (min(BLOCK_K, -(-Sk // lanes) * lanes), False)


def flash_attention_backward_cpu(sh: AttentionShapes, scale: float, causal: bool, lanes: int = 16):
    """The PrimFunc (destination-passing: q, k, v[, mask], out, g, dq, dk, dv); `sh.kt` is k's
    shape with its last two dims swapped (what score_terms reads) and `sh.out` the forward output's."""
    *_, Sq, D = sh.q
    Sk, Dv = sh.kt[-1], sh.v[-1]
    k_shape = (*sh.kt[:-2], Sk, D)
    B = sh.flat_batch
    BQ = BLOCK_Q
    BK, exact = _key_block(Sk, lanes)
    W = max(BK, D, Dv)  # register tile width: score rows (BK) or gradient rows (D, Dv)

    def key_index(j):
        return j if exact else tirx.min(j, Sk - 1)

    nqb, nkb = -(-Sq // BQ), -(-Sk // BK)
    qs, ks, vs = sh.operand_strides()
    mask_term, valid, mdtype = score_terms(sh, causal)
    neg_inf = -math.inf
    size = lambda shape: int(np.prod(shape, dtype=np.int64))  # noqa: E731
    dq_shape, dk_shape, dv_shape = (*sh.batch, Sq, D), (*sh.batch, Sk, D), (*sh.batch, Sk, Dv)

    def f32(v):
        return tirx.const(v, "float32")

    def key_blocks(q0):
        return tirx.min(nkb, (q0 + BQ + BK - 1) // BK) if causal else nkb

    def first_query_block(k0):
        return k0 // BQ if causal else 0

    @T.macro
    def load_kv_blocks(kf, vf, kT, vT, bb, k0):
        # k / v rows k0 .. k0 + BK, transposed so score rows vectorize over keys
        for d, j in T.grid(D, BK):
            kT[d, j] = kf[_offset(bb, sh.batch, ks) + key_index(k0 + j) * D + d]
        for e, j in T.grid(Dv, BK):
            vT[e, j] = vf[_offset(bb, sh.batch, vs) + key_index(k0 + j) * Dv + e]

    @T.macro
    def rows_times(tile, af, a_base, width, bT, r0):
        # tile = a[r0 .. r0 + ROWS, :width] @ bT[:width, :BK]: ROWS x BK accumulators in registers
        for ii in T.unroll(ROWS):
            for j in T.vectorized(BK):
                tile[ii, j] = f32(0.0)
        for d in range(width):
            for ii in T.unroll(ROWS):
                for j in T.vectorized(BK):
                    tile[ii, j] = tile[ii, j] + af[a_base + T.min(r0 + ii, Sq - 1) * width + d] * bT[d, j]

    @T.macro
    def score_tiles(qf, gf, mf, kT, vT, s, dp, tile, bb, q0, k0):
        # s = scale * q kT + mask (-inf where masked or out of range), dp = g vT: BQ x BK each
        for i0 in range(BQ // ROWS):
            rows_times(tile, qf, _offset(bb, sh.batch, qs), D, kT, q0 + i0 * ROWS)
            for ii in T.unroll(ROWS):
                for j in T.vectorized(BK):
                    s[i0 * ROWS + ii, j] = T.Select(
                        valid(q0 + i0 * ROWS + ii, k0 + j),
                        tile[ii, j] * f32(scale) + mask_term(mf, bb, q0 + i0 * ROWS + ii, k0 + j),
                        f32(neg_inf),
                    )
            rows_times(tile, gf, bb * Sq * Dv, Dv, vT, q0 + i0 * ROWS)
            for ii in T.unroll(ROWS):
                for j in T.vectorized(BK):
                    dp[i0 * ROWS + ii, j] = tile[ii, j]

    @T.macro
    def body(qf, kf, vf, mf, of, gf, dqf, dkf, dvf):
        stats = T.alloc_buffer((3, B * Sq), "float32")  # per query row: softmax shift m, 1 / l, D
        for task in T.parallel(B * nqb):  # phase 1: row statistics and dq
            s = T.alloc_local((BQ, BK), "float32")
            dp = T.alloc_local((BQ, BK), "float32")
            kT = T.alloc_local((D, BK), "float32")
            vT = T.alloc_local((Dv, BK), "float32")
            acc = T.alloc_local((BQ, D), "float32")
            m = T.alloc_local((BQ,), "float32")
            lsum = T.alloc_local((BQ,), "float32")
            drow = T.alloc_local((BQ,), "float32")
            tile = T.alloc_local((ROWS, W), "float32")  # register tile: constant indices only
            red = T.alloc_local((lanes,), "float32")
            one = T.alloc_local((2,), "float32")
            bb = task // nqb
            q0 = task % nqb * BQ
            for i in range(BQ):
                m[i] = f32(neg_inf)
                lsum[i] = f32(0.0)
                for d in T.vectorized(D):
                    acc[i, d] = f32(0.0)
                for e in T.vectorized(Dv):
                    tile[0, e] = gf[bb * Sq * Dv + T.min(q0 + i, Sq - 1) * Dv + e] * of[bb * Sq * Dv + T.min(q0 + i, Sq - 1) * Dv + e]
                drow[i] = f32(0.0)
                for e in range(Dv):
                    drow[i] = drow[i] + tile[0, e]
            for kb in range(key_blocks(q0)):
                k0 = kb * BK
                load_kv_blocks(kf, vf, kT, vT, bb, k0)
                score_tiles(qf, gf, mf, kT, vT, s, dp, tile, bb, q0, k0)
                for i in range(BQ):
                    # new row max (vector partial maxima, then a short serial pass), as the forward
                    for c in T.vectorized(lanes):
                        red[c] = f32(neg_inf)
                    for jc in range(BK // lanes):
                        for c in T.vectorized(lanes):
                            red[c] = T.max(red[c], s[i, jc * lanes + c])
                    one[0] = m[i]
                    for c in range(lanes):
                        one[0] = T.max(one[0], red[c])
                    one[1] = T.Select(one[0] == f32(neg_inf), f32(0.0), one[0])
                    for c in T.vectorized(lanes):
                        red[c] = f32(0.0)
                    for jc in range(BK // lanes):
                        for c in T.vectorized(lanes):
                            s[i, jc * lanes + c] = fast_exp(s[i, jc * lanes + c] - one[1])
                            red[c] = red[c] + s[i, jc * lanes + c]
                            # unnormalized dS (times l): masked keys have exp 0, so 0
                            s[i, jc * lanes + c] = s[i, jc * lanes + c] * (dp[i, jc * lanes + c] - drow[i])
                    alpha = fast_exp(m[i] - one[1])
                    lsum[i] = lsum[i] * alpha
                    for c in range(lanes):
                        lsum[i] = lsum[i] + red[c]
                    m[i] = one[0]
                    for d in T.vectorized(D):
                        acc[i, d] = acc[i, d] * alpha
                for i0 in range(BQ // ROWS):  # acc += dS @ K_block, each key row feeding ROWS rows
                    for ii in T.unroll(ROWS):
                        for d in T.vectorized(D):
                            tile[ii, d] = acc[i0 * ROWS + ii, d]
                    for j in range(T.min(BK, Sk - k0)):
                        for ii in T.unroll(ROWS):
                            for d in T.vectorized(D):
                                tile[ii, d] = tile[ii, d] + s[i0 * ROWS + ii, j] * kf[_offset(bb, sh.batch, ks) + (k0 + j) * D + d]
                    for ii in T.unroll(ROWS):
                        for d in T.vectorized(D):
                            acc[i0 * ROWS + ii, d] = tile[ii, d]
            for i in range(T.min(BQ, Sq - q0)):
                for d in T.vectorized(D):
                    dqf[bb * Sq * D + (q0 + i) * D + d] = T.Select(lsum[i] > f32(0.0), acc[i, d] * f32(scale) / lsum[i], f32(0.0))
                stats[0, bb * Sq + q0 + i] = T.Select(m[i] == f32(neg_inf), f32(0.0), m[i])
                stats[1, bb * Sq + q0 + i] = T.Select(lsum[i] > f32(0.0), f32(1.0) / lsum[i], f32(0.0))
                stats[2, bb * Sq + q0 + i] = drow[i]
        for task in T.parallel(B * nkb):  # phase 2: dk, dv for one key block
            s = T.alloc_local((BQ, BK), "float32")
            dp = T.alloc_local((BQ, BK), "float32")
            kT = T.alloc_local((D, BK), "float32")
            vT = T.alloc_local((Dv, BK), "float32")
            dk = T.alloc_local((BK, D), "float32")
            dv = T.alloc_local((BK, Dv), "float32")
            tile = T.alloc_local((ROWS, W), "float32")
            bb = task // nkb
            k0 = task % nkb * BK
            for j in range(BK):
                for d in T.vectorized(D):
                    dk[j, d] = f32(0.0)
                for e in T.vectorized(Dv):
                    dv[j, e] = f32(0.0)
            load_kv_blocks(kf, vf, kT, vT, bb, k0)
            for qb in range(first_query_block(k0), nqb):
                q0 = qb * BQ
                score_tiles(qf, gf, mf, kT, vT, s, dp, tile, bb, q0, k0)
                for i in range(BQ):  # P (rows past Sq: 0) and dS, in place of S and dP
                    for j in T.vectorized(BK):
                        s[i, j] = T.Select(
                            q0 + i < Sq,
                            fast_exp(s[i, j] - stats[0, bb * Sq + T.min(q0 + i, Sq - 1)]) * stats[1, bb * Sq + T.min(q0 + i, Sq - 1)],
                            f32(0.0),
                        )
                        dp[i, j] = s[i, j] * (dp[i, j] - stats[2, bb * Sq + T.min(q0 + i, Sq - 1)])
                for j0 in range(BK // ROWS):  # dv += P^T g, dk += dS^T q: each g / q row feeds ROWS keys
                    for jj in T.unroll(ROWS):
                        for e in T.vectorized(Dv):
                            tile[jj, e] = dv[j0 * ROWS + jj, e]
                    for i in range(T.min(BQ, Sq - q0)):
                        for jj in T.unroll(ROWS):
                            for e in T.vectorized(Dv):
                                tile[jj, e] = tile[jj, e] + s[i, j0 * ROWS + jj] * gf[bb * Sq * Dv + (q0 + i) * Dv + e]
                    for jj in T.unroll(ROWS):
                        for e in T.vectorized(Dv):
                            dv[j0 * ROWS + jj, e] = tile[jj, e]
                    for jj in T.unroll(ROWS):
                        for d in T.vectorized(D):
                            tile[jj, d] = dk[j0 * ROWS + jj, d]
                    for i in range(T.min(BQ, Sq - q0)):
                        for jj in T.unroll(ROWS):
                            for d in T.vectorized(D):
                                tile[jj, d] = tile[jj, d] + dp[i, j0 * ROWS + jj] * qf[_offset(bb, sh.batch, qs) + (q0 + i) * D + d]
                    for jj in T.unroll(ROWS):
                        for d in T.vectorized(D):
                            dk[j0 * ROWS + jj, d] = tile[jj, d]
            for j in range(T.min(BK, Sk - k0)):
                for d in T.vectorized(D):
                    dkf[bb * Sk * D + (k0 + j) * D + d] = dk[j, d] * f32(scale)
                for e in T.vectorized(Dv):
                    dvf[bb * Sk * Dv + (k0 + j) * Dv + e] = dv[j, e]

    def flat(buf, shape, dtype="float32"):
        return T.decl_buffer((size(shape),), dtype, data=buf.data)

    if sh.mask is not None:

        @T.prim_func(private=True)
        def kernel(q: T.Buffer(sh.q, "float32"), k: T.Buffer(k_shape, "float32"), v: T.Buffer(sh.v, "float32"),
                   mask: T.Buffer(sh.mask, mdtype), out: T.Buffer(sh.out, "float32"), g: T.Buffer(sh.out, "float32"),
                   dq: T.Buffer(dq_shape, "float32"), dk: T.Buffer(dk_shape, "float32"), dv: T.Buffer(dv_shape, "float32")):
            T.func_attr({"tirx.noalias": True})
            body(flat(q, sh.q), flat(k, k_shape), flat(v, sh.v), flat(mask, sh.mask, mdtype), flat(out, sh.out), flat(g, sh.out),
                 flat(dq, dq_shape), flat(dk, dk_shape), flat(dv, dv_shape))

        return kernel

    @T.prim_func(private=True)
    def kernel_nomask(q: T.Buffer(sh.q, "float32"), k: T.Buffer(k_shape, "float32"), v: T.Buffer(sh.v, "float32"),
                      out: T.Buffer(sh.out, "float32"), g: T.Buffer(sh.out, "float32"),
                      dq: T.Buffer(dq_shape, "float32"), dk: T.Buffer(dk_shape, "float32"), dv: T.Buffer(dv_shape, "float32")):
        T.func_attr({"tirx.noalias": True})
        body(flat(q, sh.q), flat(k, k_shape), flat(v, sh.v), None, flat(out, sh.out), flat(g, sh.out),
             flat(dq, dq_shape), flat(dk, dk_shape), flat(dv, dv_shape))

    return kernel_nomask


def attention_backward_template(node, target):
    """(PrimFunc, note) for fused[attention_backward] whose body is exactly the backward op on its
    inputs in order, f32, on a CPU target; else None (the op's generic lowering)."""
    body = node.body
    compute = [n for n in body.nodes if n.op != "const"]
    if target.kind not in ("x86", "arm") or len(compute) != 1 or compute[0].op != "scaled_dot_product_attention_backward":
        return None
    op = compute[0]
    if list(op.inputs) != list(body.inputs) or list(body.outputs) != list(op.outputs):
        return None
    q, k, v, *mask, out, _g = node.inputs
    if any(x.dtype != "f32" for x in (q, k, v, out)) or (mask and mask[0].dtype not in ("f32", "bool")):
        return None
    scale = op.attrs["scale"] if op.attrs["scale"] is not None else 1.0 / math.sqrt(q.shape[-1])
    kt = (*k.shape[:-2], k.shape[-1], k.shape[-2])
    shapes = AttentionShapes(q.shape, kt, v.shape, mask[0].shape if mask else None, mask[0].dtype if mask else None, out.shape)
    func = flash_attention_backward_cpu(shapes, float(scale), bool(op.attrs["causal"]), lanes=target.vector_bits // 32)
    return func, "attention backward: flash (P recomputed per block from the row statistics, no [Sq, Sk] buffer)"
