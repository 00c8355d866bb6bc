"""CPU schedule rules (x86 AVX-512/AVX2 and aarch64 NEON differ only in vector width).

Every kernel gets at least a parallel, vectorized schedule:

* spatial blocks: the innermost axis is split by the vector width and vectorized,
  everything outside it is fused and run in parallel;
* reductions: spatial axes fused and parallel, reduction axes serial;
* anchors (annotated by their op's lowering): register-blocked micro-kernels
  with a local accumulator and the elementwise epilogue (bias, activation,
  residual) computed on the accumulator before the single store to memory.

Rules take a `CpuParams` (vector lanes, thread count) so x86 and ARM share them.
"""
from __future__ import annotations

from dataclasses import dataclass

import tvm
from tvm import s_tir

from .common import (
    auto_inline,
    blocks,
    is_param,
    is_reduction,
    largest_divisor,
    loop_extents,
    param_buffers,
    region_buffer,
    rule_of,
    strip_annotations,
)

# below this many output elements a kernel runs on one thread: waking the pool costs more
PARALLEL_MIN_ELEMENTS = 4096
# largest accumulator tile (in floats) LLVM still keeps in registers (SROA gives up above 128)
ACC_TILE_FLOATS = 112


@dataclass(frozen=True)
class CpuParams:
    vector_bits: int  # 512 for AVX-512, 256 for AVX2, 128 for NEON
    num_threads: int

    def lanes(self, dtype_bits: int = 32) -> int:
        return max(self.vector_bits // dtype_bits, 1)


def _dtype_bits(sch, blk) -> int:
    writes = sch.get(blk).writes
    if not writes:
        return 32
    return max(tvm.DataType(str(region_buffer(writes[0]).dtype)).bits, 8)


def _lane_candidates(lanes: int) -> list[int]:
    out, v = [], lanes
    while v >= 2:
        out.append(v)
        v //= 2
    return out


# ---------------------------------------------------------------------------------------
# generic rules
# ---------------------------------------------------------------------------------------
def schedule_spatial(sch: s_tir.Schedule, blk, p: CpuParams) -> None:
    loops = sch.get_loops(blk)
    if not loops:
        return
    ext = loop_extents(sch, loops)
    total = 1
    for e in ext:
        total *= e
    full = p.lanes(_dtype_bits(sch, blk))
    lanes = largest_divisor(ext[-1], _lane_candidates(full))
    if lanes == 1 and 2 <= ext[-1] <= 4 * full:
        lanes = ext[-1]  # an odd short row (7 in a 7x7 map): one short vector, LLVM legalizes it
    outer = list(loops[:-1])
    if lanes > 1:
        lo, li = sch.split(loops[-1], [None, lanes])
        sch.vectorize(li)
        outer.append(lo)
    else:
        outer.append(loops[-1])
    fused = sch.fuse(*outer) if len(outer) > 1 else outer[0]
    if total >= PARALLEL_MIN_ELEMENTS and p.num_threads > 1:
        sch.parallel(fused)


def schedule_reduction(sch: s_tir.Schedule, blk, p: CpuParams) -> None:
    stmt = sch.get(blk)
    loops = sch.get_loops(blk)
    n_spatial = sum(1 for iv in stmt.iter_vars if iv.iter_type == 0)
    spatial = loops[:n_spatial]
    if not spatial:
        return
    ext = loop_extents(sch, loops)
    work = 1
    for e in ext:
        work *= e
    fused = sch.fuse(*spatial) if len(spatial) > 1 else spatial[0]
    if work >= PARALLEL_MIN_ELEMENTS and p.num_threads > 1 and int(sch.get(fused).extent) > 1:
        sch.parallel(fused)


# ---------------------------------------------------------------------------------------
# anchors
# ---------------------------------------------------------------------------------------
def _epilogue_into(sch: s_tir.Schedule, writeback) -> None:
    """Inline the (single, elementwise) consumer of an accumulator's write-back into it."""
    for consumer in sch.get_consumers(writeback):
        try:
            sch.reverse_compute_inline(consumer)
        except Exception:  # noqa: BLE001 - not elementwise over the anchor (e.g. a pool): leave it
            pass


def _conv_tiles(sch: s_tir.Schedule, blk, p: CpuParams) -> tuple[int, int]:
    """(vector lanes over output channels, output-column tile) of the conv micro-kernel."""
    loops = sch.get_loops(blk)
    O, OW = int(sch.get(loops[-6]).extent), int(sch.get(loops[-4]).extent)
    vl = largest_divisor(O, _lane_candidates(p.lanes(_dtype_bits(sch, blk))))
    if vl < 4:
        raise _Fallback("out channels not a multiple of 4")
    # The accumulator tile (tile x vl floats) must stay within what LLVM promotes to registers:
    # measured here, 7 x 16 runs at ~140 GFLOP/s while 8 x 16 spills to memory and runs at 4.
    max_tile = max(ACC_TILE_FLOATS // vl, 1)
    return vl, largest_divisor(OW, list(range(max_tile, 1, -1)))


def _conv_inputs(sch: s_tir.Schedule, blk, p: CpuParams, vl: int) -> None:
    """Padding and weight packing ([O, C, KH, KW] -> [O/vl, C, KH, KW, vl], one vector load per
    tap): their own parallel loop nests, run once per call before the main one."""
    for prod in sch.get_producers(blk):
        schedule_spatial(sch, prod, p)
    wcache = sch.cache_read(blk, _param_read_index(sch, blk, rank=4), "global")
    sch.transform_layout(wcache, ("write", 0), lambda oo, c, kh, kw: (oo // vl, c, kh, kw, oo % vl))
    schedule_spatial(sch, wcache, p)


def _conv_microkernel(sch: s_tir.Schedule, blk, o, w, reduce_loops, vl: int, tile: int):
    """Register-block the loops (o: out channels, w: out columns) of a conv block under its
    current outer loops: a (tile x vl) accumulator, the reduction over (c, kh, kw) outside it.
    Returns the accumulator's write-back block. The caller parallelizes the outer loops and
    then calls `decompose_reduction` (TVM requires that order)."""
    oo, oi = sch.split(o, [None, vl]) if int(sch.get(o).extent) > vl else (None, o)
    wo, wi = sch.split(w, [None, tile])
    order = ([oo] if oo is not None else []) + [wo, *reduce_loops, wi, oi]
    sch.reorder(*order)
    acc = sch.cache_write(blk, 0, "local")
    sch.reverse_compute_at(acc, wo)
    sch.unroll(wi)
    sch.vectorize(oi)
    return acc


def schedule_conv2d(sch: s_tir.Schedule, blk, p: CpuParams) -> None:
    """Direct NCHW convolution: out-channel vectors x an output-row tile held in registers.

    When the conv's only consumer pools it (a fused conv-bias-relu-pool group), the
    pooled output drives the loops instead: see `_schedule_conv_pool`.
    """
    vl, tile = _conv_tiles(sch, blk, p)
    _conv_inputs(sch, blk, p, vl)
    pool = _pooling_consumer(sch, blk)
    if pool is not None:
        _schedule_conv_pool(sch, blk, pool, p, vl, tile)
        return
    n, o, h, w, rc, rh, rw = sch.get_loops(blk)
    ob, oi = sch.split(o, [None, vl])
    sch.reorder(n, ob, h, oi, w)
    acc = _conv_microkernel(sch, blk, oi, w, [rc, rh, rw], vl, tile)
    _epilogue_into(sch, acc)
    sch.parallel(sch.fuse(n, ob, h))
    sch.decompose_reduction(blk, rc)


def _loops_of_iters(sch: s_tir.Schedule, blk) -> list:
    """For each block iter var (in order), the innermost loop whose var its binding uses, or
    None (compute_at drops unit-extent loops, e.g. for a single input channel)."""
    from tvm.tirx.analysis import undefined_vars

    loops = sch.get_loops(blk)
    realize = sch.get(loops[-1]).body  # the SBlockRealize directly under the innermost loop
    out = []
    for value in realize.iter_values:
        used = undefined_vars(value, [])
        bound = [lp for lp in loops if any(sch.get(lp).loop_var.same_as(u) for u in used)]
        out.append(bound[-1] if bound else None)
    return out


def _pooling_consumer(sch: s_tir.Schedule, blk):
    """The conv's single consumer if it is a spatial stage reading the conv through windows
    (its output is spatially smaller: a max/avg pool with the epilogue inlined into it)."""
    consumers = sch.get_consumers(blk)
    if len(consumers) != 1 or is_reduction(sch, consumers[0]):
        return None
    out = region_buffer(sch.get(consumers[0]).writes[0])
    conv_out = region_buffer(sch.get(blk).writes[0])
    if len(out.shape) != 4 or [int(d) for d in out.shape[:2]] != [int(d) for d in conv_out.shape[:2]]:
        return None
    smaller = int(out.shape[2]) < int(conv_out.shape[2]) or int(out.shape[3]) < int(conv_out.shape[3])
    return consumers[0] if smaller else None


def _schedule_conv_pool(sch: s_tir.Schedule, conv, pool, p: CpuParams, vl: int, tile: int) -> None:
    """One kernel for conv -> (bias, activation) -> pool: for each (image, channel block, pooled
    row), the conv rows that pooled row reads are computed into a small scratch buffer
    ([rows, width, vl] floats, stack-allocated, L1-resident) by the register micro-kernel, and
    the pool reads them from there: the full-resolution activation never reaches memory."""
    n, c, ph, pw = sch.get_loops(pool)
    cb, ci = sch.split(c, [None, vl])
    sch.reorder(n, cb, ph, pw, ci)
    outer = sch.fuse(n, cb, ph)
    sch.parallel(outer)
    sch.compute_at(conv, outer)
    # scratch layout [n, h, w, c]: channel vectors contiguous for the micro-kernel's stores
    # and the pool's loads; "local" scope keeps it a per-iteration stack buffer
    sch.transform_layout(conv, ("write", 0), lambda n_, c_, h_, w_: (n_, h_, w_, c_))
    sch.set_scope(conv, 0, "local")
    loops = _loops_of_iters(sch, conv)  # compute_at drops unit loops (e.g. one input channel)
    o, h, w = loops[1], loops[2], loops[3]
    reduce_loops = [lp for lp in loops[4:] if lp is not None]
    sch.reorder(*[lp for lp in (h, o, w) if lp is not None])
    acc = _conv_microkernel(sch, conv, o, w, reduce_loops, vl, tile)
    sch.vectorize(sch.get_loops(acc)[-1])
    sch.vectorize(ci)
    if reduce_loops:
        sch.decompose_reduction(conv, reduce_loops[0])


def _gemm_tiles(M: int, N: int, lanes: int) -> tuple[int, int, int]:
    """(mr rows, vectors per row, vector lanes) of the register tile for an M x N output."""
    if N <= lanes:
        vl = N  # e.g. N=10 classes: one short vector per row
    else:
        vl = largest_divisor(N, _lane_candidates(lanes))
    n_vec = largest_divisor(N // vl, [4, 3, 2]) if N // vl > 1 else 1
    mr = largest_divisor(M, [8, 6, 4, 2])
    return mr, n_vec, vl


def _tile_gemm(sch: s_tir.Schedule, blk, p: CpuParams, pack_weight: bool) -> None:
    """Register-blocked GEMM over loops (*batch, i, j, k): an mr x (n_vec*vl) accumulator tile
    kept in registers, K unrolled by up to 4, outer tiles fused and parallel, and the
    epilogue applied on the tile before its single store. With `pack_weight`, the
    [N, K] weight (a dense layer's) is repacked to [N/nr, K, nr] so the inner loop
    loads contiguous vectors."""
    loops = sch.get_loops(blk)
    if len(loops) < 3:
        raise _Fallback("no row dimension")
    *batch, i, j, k = loops
    M, N, K = (int(sch.get(x).extent) for x in (i, j, k))
    if N < 2:
        raise _Fallback("a single output column (matrix-vector product)")
    batch_size = _prod_extents(sch, batch)
    mr, n_vec, vl = _gemm_tiles(M, N, p.lanes(_dtype_bits(sch, blk)))
    nr = n_vec * vl
    for prod in sch.get_producers(blk):
        schedule_spatial(sch, prod, p)
    if pack_weight:
        wcache = sch.cache_read(blk, _param_read_index(sch, blk, rank=2), "global")
        sch.transform_layout(wcache, ("write", 0), lambda jj, kk: (jj // nr, kk, jj % nr))
        schedule_spatial(sch, wcache, p)
    io, ii = sch.split(i, [None, mr])
    jo, jm, jv = sch.split(j, [None, n_vec, vl])
    ku = largest_divisor(K, [4, 2])
    ko, ki = sch.split(k, [None, ku])
    sch.reorder(*batch, io, jo, ko, ki, ii, jm, jv)
    acc = sch.cache_write(blk, 0, "local")
    sch.reverse_compute_at(acc, jo)
    _epilogue_into(sch, acc)
    outer = sch.fuse(*batch, io, jo)
    if M * N * K * batch_size >= PARALLEL_MIN_ELEMENTS * 64:  # enough multiply-adds to share out
        sch.parallel(outer)
    sch.unroll(ki)
    sch.unroll(ii)
    sch.unroll(jm)
    sch.vectorize(jv)
    if vl > 1:  # the write-back (with its epilogue) stores whole vectors too
        _, wb_j = sch.split(sch.get_loops(acc)[-1], [None, vl])
        sch.vectorize(wb_j)
    sch.decompose_reduction(blk, ko)


def _prod_extents(sch, loops) -> int:
    out = 1
    for e in loop_extents(sch, loops):
        out *= e
    return out


def _param_read_index(sch: s_tir.Schedule, blk, rank: int) -> int:
    """Index of the block's last read of a kernel-argument buffer of the given rank (a weight)."""
    params = param_buffers(sch.mod["main"])
    reads = sch.get(blk).reads
    found = [i for i, r in enumerate(reads) if is_param(region_buffer(r), params) and len(region_buffer(r).shape) == rank]
    if not found:
        raise _Fallback(f"no rank-{rank} weight argument")
    return found[-1]


def schedule_matmul(sch: s_tir.Schedule, blk, p: CpuParams) -> None:
    """[batch..] x [M,K] @ [K,N]: B rows are already contiguous along N."""
    _tile_gemm(sch, blk, p, pack_weight=False)


def schedule_dense(sch: s_tir.Schedule, blk, p: CpuParams) -> None:
    """x[..., K] @ w[N, K]^T (a linear layer): weights repacked, then the GEMM tile."""
    _tile_gemm(sch, blk, p, pack_weight=True)


class _Fallback(Exception):
    """An anchor rule does not apply to this instance; the generic rules take over."""


ANCHOR_RULES = {
    "conv2d": schedule_conv2d,
    "matmul": schedule_matmul,
    "dense": schedule_dense,
}


def schedule_cpu(func, p: CpuParams):
    """Schedule one kernel PrimFunc for a CPU; returns (scheduled func, notes)."""
    notes: list[str] = []
    sch = s_tir.Schedule(func)
    auto_inline(sch)
    anchors = [(sch.get(b).name_hint, rule_of(sch, b)) for b in blocks(sch) if rule_of(sch, b) in ANCHOR_RULES]
    done: set[str] = set()  # blocks an anchor rule placed (its init, accumulator write-back, epilogue)
    for name, rule in anchors:
        saved = sch.copy()
        try:
            ANCHOR_RULES[rule](sch, sch.get_sblock(name), p)
            notes.append(f"{rule}: blocked")
            done.update(_blocks_nested_with(sch, name))
        except Exception as e:  # noqa: BLE001 - fall back to the generic schedule, say why
            sch = saved
            notes.append(f"{rule}: generic ({e.__class__.__name__}: {_first_line(e)})")
    for blk in blocks(sch):
        name = sch.get(blk).name_hint
        if name in done or _is_scheduled(sch, blk):
            continue
        try:
            if is_reduction(sch, blk):
                schedule_reduction(sch, blk, p)
            else:
                schedule_spatial(sch, blk, p)
        except Exception as e:  # noqa: BLE001 - keep the kernel correct (serial), and say so
            notes.append(f"{name}: unscheduled ({e.__class__.__name__}: {_first_line(e)})")
    strip_annotations(sch)
    return sch.mod["main"], notes


def _blocks_nested_with(sch: s_tir.Schedule, anchor: str) -> set[str]:
    """Names of the blocks sharing the anchor's outermost loop (its init, update, write-back)."""
    out: set[str] = set()
    for blk in blocks(sch):
        name = sch.get(blk).name_hint
        if name == anchor or name.startswith(anchor + "_"):
            loops = sch.get_loops(blk)
            if loops:
                out.update(sch.get(b).name_hint for b in sch.get_child_blocks(loops[0]))
            out.add(name)
    return out


def _first_line(e: Exception) -> str:
    lines = [ln for ln in str(e).splitlines() if ln.strip() and "ScheduleError" not in ln]
    return (lines[0] if lines else type(e).__name__)[:160]


def _is_scheduled(sch: s_tir.Schedule, blk) -> bool:
    """A block already under a parallel/vectorized loop, or nested in a scheduled anchor."""
    loops = sch.get_loops(blk)
    kinds = {int(sch.get(lp).kind) for lp in loops}
    # ForKind: 0 serial, 1 parallel, 2 vectorized, 3 unrolled, 4 thread binding
    return bool(kinds & {1, 2, 3})
