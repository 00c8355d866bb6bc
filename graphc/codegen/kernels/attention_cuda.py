"""Flash attention for CUDA: one kernel, online softmax over key tiles held in shared memory.

One thread block per (flattened batch*head, tile of BQ query rows), one thread per query
row. Each thread keeps its query row, its output accumulator (Dv floats), its running
max m and running sum l in registers. The block walks the keys in tiles of BK: all its
threads copy the K tile (read coalesced along the keys of the transposed K) and the V
tile into shared memory, then each thread scores its row against the BK keys (every
thread reads the same shared address at once: a broadcast, no bank conflicts), rescales
its accumulator by exp(m_old - m_new) and adds P @ V_tile. The seq x seq score matrix
never exists; causal masks skip whole key tiles past the block's last query row. A row
whose keys are all masked outputs zeros (like torch, and like the CPU kernel).

The kernel is written as sibling thread loops (copy, then compute) over per-thread
buffers indexed by the thread: TVM compacts a "local" buffer to one thread's slice and
inserts the __syncthreads between the copies and the reads. Built with
``emulate=True`` the thread loops are serial and the buffers ordinary memory: the same
program then runs on the CPU, which is how the tests check its numerics where no GPU is.
"""
from __future__ import annotations

import math

import numpy as np
from tvm import tirx
from tvm.script import tirx as T

from .attention_cpu import AttentionShapes, _offset, score_terms

MAX_THREADS = 64  # query rows (= threads) per block
TILE_KEYS = (16, 8)  # keys per shared-memory tile (32 would triple nvcc time for a few % fewer syncs)
SHARED_BYTES = 48 * 1024
MAX_HEAD_DIM = 256  # registers per thread: q row + accumulator + one score per tile key


def cuda_attention_plan(sh: AttentionShapes) -> tuple[int, int] | None:
    """(threads per block, keys per tile), or None when the head dims are too large for registers."""
    D, Dv, Sq = sh.q[-1], sh.v[-1], sh.q[-2]
    if D > MAX_HEAD_DIM or Dv > MAX_HEAD_DIM:
        return None
    bq = 32 if Sq <= 32 else MAX_THREADS
    for bk in TILE_KEYS:
        if bk * (D + Dv) * 4 <= SHARED_BYTES:
            return bq, bk
    return None


def flash_attention_cuda(sh: AttentionShapes, scale: float, causal: bool, emulate: bool = False):
    """The PrimFunc (destination-passing: q, kT, v[, mask], out); None if no plan fits."""
    plan = cuda_attention_plan(sh)
    if plan is None:
        return None
    BQ, BK = plan
    *_, Sq, D = sh.q
    Sk, Dv = sh.kt[-1], sh.v[-1]
    B = sh.flat_batch
    nqb, nkb = -(-Sq // BQ), -(-Sk // BK)
    qs, ks, vs = sh.operand_strides()
    has_mask = sh.mask is not None
    mask_term, valid, mdtype = score_terms(sh, causal)
    neg_inf = -math.inf
    size = lambda shape: int(np.prod(shape, dtype=np.int64))  # noqa: E731
    k_copies, v_copies = -(-BK * D // BQ), -(-BK * Dv // BQ)
    local, shared = ("global", "global") if emulate else ("local", "shared")
    grid_kind, thread_kind = ("serial", "serial") if emulate else ("blockIdx.x", "threadIdx.x")

    def f32(v):
        return tirx.const(v, "float32")

    def blocks(n):
        return T.serial(n) if emulate else T.thread_binding(n, thread=grid_kind)

    def threads():
        return T.serial(BQ) if emulate else T.thread_binding(BQ, thread=thread_kind)

    def key_tiles(q0):
        return tirx.min(nkb, (q0 + BQ + BK - 1) // BK) if causal else nkb

    def unroll(n):  # `#pragma unroll` for nvcc: TVM's explicit unrolling would bloat the source
        return T.serial(n) if emulate else T.unroll(n, annotations={"pragma_unroll_explicit": 0})

    @T.macro
    def body(qf, kf, vf, mf, of):
        for task in blocks(B * nqb):
            with T.sblock("tile"):  # its buffers are allocated per thread block
                T.reads()
                T.writes()
                # per-thread state ([thread, ...]: TVM compacts it to one thread's row, kept in registers)
                qr = T.alloc_buffer((BQ, D), "float32", scope=local)
                acc = T.alloc_buffer((BQ, Dv), "float32", scope=local)
                s = T.alloc_buffer((BQ, BK), "float32", scope=local)
                m = T.alloc_buffer((BQ,), "float32", scope=local)
                lsum = T.alloc_buffer((BQ,), "float32", scope=local)
                mnew = T.alloc_buffer((BQ,), "float32", scope=local)
                # the key and value tiles every thread of the block reads
                kt = T.alloc_buffer((BK, D), "float32", scope=shared)
                vt = T.alloc_buffer((BK, Dv), "float32", scope=shared)
                for t in threads():
                    for d in unroll(D):
                        qr[t, d] = qf[_offset(task // nqb, sh.batch, qs) + T.min(task % nqb * BQ + t, Sq - 1) * D + d]
                    for d in unroll(Dv):
                        acc[t, d] = f32(0.0)
                    m[t] = f32(neg_inf)
                    lsum[t] = f32(0.0)
                for kb in range(key_tiles(task % nqb * BQ)):
                    for t in threads():  # K^T tile [D, BK]: consecutive threads read consecutive keys
                        for c in range(k_copies):
                            if c * BQ + t < BK * D:
                                kt[(c * BQ + t) % BK, (c * BQ + t) // BK] = kf[
                                    _offset(task // nqb, sh.batch, ks) + (c * BQ + t) // BK * Sk + T.min(kb * BK + (c * BQ + t) % BK, Sk - 1)
                                ]
                        for c in range(v_copies):
                            if c * BQ + t < BK * Dv:
                                vt[(c * BQ + t) // Dv, (c * BQ + t) % Dv] = vf[
                                    _offset(task // nqb, sh.batch, vs) + T.min(kb * BK + (c * BQ + t) // Dv, Sk - 1) * Dv + (c * BQ + t) % Dv
                                ]
                    for t in threads():
                        mnew[t] = m[t]
                        for j in unroll(BK):
                            s[t, j] = f32(0.0)
                            for d in unroll(D):
                                s[t, j] = s[t, j] + qr[t, d] * kt[j, d]
                            s[t, j] = T.Select(
                                valid(task % nqb * BQ + t, kb * BK + j),
                                s[t, j] * f32(scale) + mask_term(mf, task // nqb, task % nqb * BQ + t, kb * BK + j),
                                f32(neg_inf),
                            )
                            mnew[t] = T.max(mnew[t], s[t, j])
                        # rows with every key masked so far: exp(-inf - 0) = 0, not exp(nan)
                        lsum[t] = lsum[t] * T.exp(m[t] - T.Select(mnew[t] == f32(neg_inf), f32(0.0), mnew[t]))
                        for d in unroll(Dv):
                            acc[t, d] = acc[t, d] * T.exp(m[t] - T.Select(mnew[t] == f32(neg_inf), f32(0.0), mnew[t]))
                        for j in unroll(BK):
                            s[t, j] = T.exp(s[t, j] - T.Select(mnew[t] == f32(neg_inf), f32(0.0), mnew[t]))
                            lsum[t] = lsum[t] + s[t, j]
                            for d in unroll(Dv):
                                acc[t, d] = acc[t, d] + s[t, j] * vt[j, d]
                        m[t] = mnew[t]
                for t in threads():
                    if task % nqb * BQ + t < Sq:
                        for d in unroll(Dv):
                            of[task // nqb * Sq * Dv + (task % nqb * BQ + t) * Dv + d] = T.Select(
                                lsum[t] > f32(0.0), acc[t, d] / lsum[t], f32(0.0)
                            )

    if has_mask:

        @T.prim_func(private=True, s_tir=True)
        def kernel(q: T.Buffer(sh.q, "float32"), k: T.Buffer(sh.kt, "float32"), v: T.Buffer(sh.v, "float32"),
                   mask: T.Buffer(sh.mask, mdtype), out: T.Buffer(sh.out, "float32")):
            T.func_attr({"tirx.noalias": True})
            body(T.decl_buffer((size(sh.q),), "float32", data=q.data), T.decl_buffer((size(sh.kt),), "float32", data=k.data),
                 T.decl_buffer((size(sh.v),), "float32", data=v.data), T.decl_buffer((size(sh.mask),), mdtype, data=mask.data),
                 T.decl_buffer((size(sh.out),), "float32", data=out.data))

        func = kernel
    else:

        @T.prim_func(private=True, s_tir=True)
        def kernel_nomask(q: T.Buffer(sh.q, "float32"), k: T.Buffer(sh.kt, "float32"), v: T.Buffer(sh.v, "float32"),
                          out: T.Buffer(sh.out, "float32")):
            T.func_attr({"tirx.noalias": True})
            body(T.decl_buffer((size(sh.q),), "float32", data=q.data), T.decl_buffer((size(sh.kt),), "float32", data=k.data),
                 T.decl_buffer((size(sh.v),), "float32", data=v.data), None, T.decl_buffer((size(sh.out),), "float32", data=out.data))

        func = kernel_nomask
    # relax.build's CUDA pipeline must leave the kernel as written (no DLight rescheduling)
    return func if emulate else func.with_attr("tirx.is_scheduled", True)
