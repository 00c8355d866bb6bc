"""Flash attention for CPUs: one kernel, online softmax over key blocks.

For each (batch, block of BQ query rows) — the parallel loop — the kernel walks the
keys in blocks of BK, keeping a running row max m, running row sums l and the output
accumulator acc (BQ x Dv) rescaled by 2**(m_old - m_new). The seq x seq score matrix
never exists in memory. Causal masks skip whole key blocks past the diagonal. A row
whose keys are all masked outputs zeros (like torch).

Each group of ROWS query rows does a key block's whole step with its scores in
registers, like a GEMM micro-kernel: the ROWS x BK score tile (K comes transposed,
[..., D, Sk], so a row of scores is D broadcast-FMAs of contiguous key vectors), then
scale, mask, row max and exp on the tile (scores carry a log2(e) factor so exp is a
cheap exp2), P stored once (ROWS x BK, L1), then acc += P @ V_block as a ROWS x Dv
tile. Row sums stay lane-wise until the output is written, so a block needs one
horizontal reduction per row (the max, a shuffle butterfly). The generated loops are
checked in the assembly: tiles in zmm registers, exp2 as 16-lane vector code.

Batch dims broadcast numpy-style: every operand is addressed through a flat view
with a per-operand batch offset computed from the flattened batch index.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from tvm import tirx
from tvm.script import tirx as T

BLOCK_Q = 64  # query rows per task: each key / value block loaded into L1 serves BLOCK_Q / ROWS row groups
BLOCK_K = 64
ROWS = 4  # query rows sharing each key / value vector load (ROWS x 4 zmm accumulators)


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

    @property
    def flat_batch(self) -> int:
        """Number of (broadcast) batch slices: the kernels' flat batch index runs over it."""
        return int(np.prod(self.batch, dtype=np.int64)) if self.batch else 1

    def operand_strides(self) -> tuple[list[int], list[int], list[int]]:
        """Per output-batch-dim element strides of q, k and v (0 where one broadcasts); k's are
        the same whether it is stored [..., D, Sk] or [..., Sk, D]."""
        Sq, D = self.q[-2:]
        Sk, Dv = self.kt[-1], self.v[-1]
        return (_batch_strides(self.q, self.batch, Sq * D), _batch_strides(self.kt, self.batch, D * Sk),
                _batch_strides(self.v, self.batch, Sk * Dv))


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


LOG2E = 1.4426950408889634


def _exp2(x):
    """2**x for float32 x <= 0 (what the online softmax feeds it: scores minus their running max),
    -inf -> 0, NaN propagates: round to the nearest integer n, a degree-6 polynomial for 2**(x-n) on
    [-0.5, 0.5] (Cephes exp2f, relative error ~1e-7), 2**n put in the exponent bits. Unlike
    `fast_exp` it needs no upper clamp and no ln2 range reduction, and it has no `isnan` (which
    stops TVM from vectorizing the loop): the lower clamp is a compare-select that lets NaN through,
    and NaN then propagates through the arithmetic."""

    def c(v):
        return tirx.const(v, "float32")

    xc = tirx.Select(x < c(-127.0), c(-127.0), x)  # 2**-127 and below flush to 0 (exponent field 0)
    n = tirx.floor(xc + c(0.5))
    f = xc - n
    poly = c(1.535336188319500e-4)
    for coef in (1.339887440266574e-3, 9.618437357674640e-3, 5.550332471162809e-2, 2.402264791363012e-1, 6.931472028550421e-1):
        poly = poly * f + c(coef)
    two_n = tirx.reinterpret("float32", tirx.shift_left(tirx.Cast("int32", n) + tirx.const(127, "int32"), tirx.const(23, "int32")))
    return (poly * f + c(1.0)) * two_n


def _row_vec(buf, row, start, lanes: int):
    """buf[row, start:start+lanes] as one vector expression."""
    return tirx.BufferLoad(buf, [row, tirx.Ramp(start, 1, lanes)])


def _lane_fold(buf, row, width: int, lanes: int, op):
    """buf[row, :width] folded lane-wise to one `lanes`-wide vector (op over its width/lanes pieces).
    The row is read as one access as wide as the vectorized loops that wrote it: narrower accesses
    make LLVM split the register tile into scalar pieces."""
    whole = _row_vec(buf, row, 0, width)
    v = tirx.Shuffle([whole], list(range(lanes)))
    for jc in range(1, width // lanes):
        v = op(v, tirx.Shuffle([whole], list(range(jc * lanes, (jc + 1) * lanes))))
    return v


def _hreduce(v, lanes: int, op):
    """op over the lanes of vector v, as a log2(lanes)-step butterfly of full-width lane permutations
    (a serial pass over the lanes is a lanes-long dependency chain)."""
    w = lanes
    while w > 1:
        w //= 2
        v = op(v, tirx.Shuffle([v], [c ^ w for c in range(lanes)]))
    return tirx.Shuffle([v], [0])


def _chunk(dv: int, most: int) -> int:
    """Width of the output-column chunks of the P @ V micro-kernel: the largest divisor of dv up to
    `most` (one ROWS x chunk accumulator tile in registers), or dv itself when it has no useful one."""
    best = max(c for c in range(1, min(dv, most) + 1) if dv % c == 0)
    return best if best * 4 >= min(dv, most) else dv


def flash_attention_cpu(sh: AttentionShapes, scale: float, causal: bool, lanes: int = 16):
    """The PrimFunc (destination-passing: q, kT, v[, mask], out).

    Per task (batch, BQ query rows) and key block (BK keys), each group of ROWS rows runs the whole
    online-softmax step with its scores in registers, like a GEMM micro-kernel: S = Q K^T as a
    ROWS x BK tile (D broadcast-FMAs of contiguous key vectors), then scale / mask / row max / exp2
    on the tile itself (scores pre-multiplied by log2(e), so exp is exp2), P stored once (ROWS x BK,
    L1), then acc[rows] = acc[rows] * alpha + P @ V_block as a ROWS x chunk tile. Row sums stay
    lane-wise vectors until the end, so the only horizontal reduction per block is the row max."""
    *_, Sq, D = sh.q
    Sk, Dv = sh.kt[-1], sh.v[-1]
    B = sh.flat_batch
    BQ = min(BLOCK_Q, -(-Sq // ROWS) * ROWS)  # short sequences: no rows computed only to be dropped
    BK0 = BLOCK_K if lanes >= 16 else 4 * lanes  # ROWS x BK/lanes accumulators must fit the register file
    # key blocks that tile Sk exactly keep key loads contiguous; otherwise the last block's
    # indices are clamped (correct, but gathered)
    exact = [bk for bk in range(BK0, lanes - 1, -lanes) if Sk % bk == 0]
    BK = exact[0] if exact else min(BK0, -(-Sk // lanes) * lanes)
    DC = _chunk(Dv, BK0)

    def key_index(j):
        return j if exact else tirx.min(j, Sk - 1)

    nqb, nkb = -(-Sq // BQ), -(-Sk // BK)
    qs, ks, vs = sh.operand_strides()
    has_mask = sh.mask is not None
    mask_term, valid, mdtype = score_terms(sh, causal)
    neg_inf = -math.inf
    size = lambda shape: int(np.prod(shape, dtype=np.int64))  # noqa: E731

    def f32(v):
        return tirx.const(v, "float32")

    def key_blocks(q0):
        return tirx.min(nkb, (q0 + BQ + BK - 1) // BK) if causal else nkb

    def add(a, b):
        return a + b

    def row_max(buf, ii):
        return _hreduce(_lane_fold(buf, ii, BK, lanes, tirx.max), lanes, tirx.max)

    def row_sum(buf, i):
        return _hreduce(_row_vec(buf, i, 0, lanes), lanes, add)


    @T.macro
    def body(qf, kf, vf, mf, of):
        for task in T.parallel(B * nqb):
            acc = T.alloc_local((BQ, Dv), "float32")
            m = T.alloc_local((BQ,), "float32")  # running row max, log2 units
            lsum = T.alloc_local((BQ, lanes), "float32")  # running row sums, lane-wise
            p = T.alloc_local((ROWS, BK), "float32")
            tile = T.alloc_local((ROWS, max(BK, DC)), "float32")  # register tile: constant indices only
            mref = T.alloc_local((ROWS,), "float32")
            alpha = T.alloc_local((ROWS,), "float32")
            bb = task // nqb
            q0 = task % nqb * BQ
            qb = _offset(bb, sh.batch, qs)
            kb0 = _offset(bb, sh.batch, ks)
            vb = _offset(bb, sh.batch, vs)
            for i in range(BQ):
                m[i] = f32(neg_inf)
                for c in T.vectorized(lanes):
                    lsum[i, c] = f32(0.0)
                for d in T.vectorized(Dv):
                    acc[i, d] = f32(0.0)
            for kb in range(key_blocks(q0)):
                k0 = kb * BK
                for i0 in range(BQ // ROWS):
                    r0 = q0 + i0 * ROWS
                    for ii in T.unroll(ROWS):
                        for j in T.vectorized(BK):
                            tile[ii, j] = f32(0.0)
                    for d in range(D):
                        for ii in T.unroll(ROWS):
                            for j in T.vectorized(BK):
                                tile[ii, j] = tile[ii, j] + qf[qb + T.min(r0 + ii, Sq - 1) * D + d] * kf[kb0 + d * Sk + key_index(k0 + j)]
                    for ii in T.unroll(ROWS):
                        for j in T.vectorized(BK):  # log2-scaled, masked scores
                            tile[ii, j] = T.Select(
                                valid(r0 + ii, k0 + j),
                                tile[ii, j] * f32(scale * LOG2E) + mask_term(mf, bb, r0 + ii, k0 + j) * f32(LOG2E),
                                f32(neg_inf),
                            )
                        alpha[ii] = m[i0 * ROWS + ii]
                        m[i0 * ROWS + ii] = T.max(alpha[ii], row_max(tile, ii))
                        # rows with every key masked so far: exp2(-inf - 0) = 0, not exp2(nan)
                        mref[ii] = T.Select(m[i0 * ROWS + ii] == f32(neg_inf), f32(0.0), m[i0 * ROWS + ii])
                        alpha[ii] = _exp2(alpha[ii] - mref[ii])
                    for ii in T.unroll(ROWS):
                        for j in T.vectorized(BK):
                            p[ii, j] = _exp2(tile[ii, j] - mref[ii])
                    for ii in T.unroll(ROWS):  # row sums stay lane-wise: no horizontal add per block
                        lsum[i0 * ROWS + ii, T.Ramp(0, 1, lanes)] = lsum[i0 * ROWS + ii, T.Ramp(0, 1, lanes)] * T.Broadcast(
                            alpha[ii], lanes) + _lane_fold(p, ii, BK, lanes, add)
                    for dc in range(Dv // DC):
                        for ii in T.unroll(ROWS):
                            for d in T.vectorized(DC):
                                tile[ii, d] = acc[i0 * ROWS + ii, dc * DC + d] * alpha[ii]
                        for j in range(T.min(BK, Sk - k0)):
                            for ii in T.unroll(ROWS):
                                for d in T.vectorized(DC):
                                    tile[ii, d] = tile[ii, d] + p[ii, j] * vf[vb + (k0 + j) * Dv + dc * DC + d]
                        for ii in T.unroll(ROWS):
                            for d in T.vectorized(DC):
                                acc[i0 * ROWS + ii, dc * DC + d] = tile[ii, d]
            for i in range(T.min(BQ, Sq - q0)):
                mref[0] = row_sum(lsum, i)
                for d in T.vectorized(Dv):
                    of[bb * Sq * Dv + (q0 + i) * Dv + d] = T.Select(mref[0] == f32(0.0), f32(0.0), acc[i, d] / mref[0])

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
