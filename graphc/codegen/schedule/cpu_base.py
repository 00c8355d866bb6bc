"""What every CPU schedule rule shares: target parameters, the generic spatial and
reduction schedules, and the exception an anchor rule raises to decline.

* spatial blocks: the innermost axis is split by the vector width and vectorized,
  everything outside it is fused and run in parallel;
* reductions: spatial axes fused and parallel; a reduction along a contiguous last axis
  accumulates one vector of partial results per row (rfactor), then folds it.
"""
from __future__ import annotations

from dataclasses import dataclass

import tvm
from tvm import s_tir

from ..knobs import knob
from ..tiles import lane_candidates
from .common import is_param, largest_divisor, loop_extents, param_buffers, region_buffer

# below this many output elements a kernel runs on one thread: waking the pool costs more
PARALLEL_MIN_ELEMENTS = 4096


@dataclass(frozen=True)
class CpuParams:
    vector_bits: int  # 512 for AVX-512, 256 for AVX2, 128 for NEON
    num_threads: int

    def lanes(self, dtype_bits: int = 32) -> int:
        return max(self.vector_bits // dtype_bits, 1)


class Decline(Exception):
    """An anchor rule does not apply to this instance; the generic rules take over."""


def dtype_bits(sch, blk) -> int:
    writes = sch.get(blk).writes
    if not writes:
        return 32
    return max(tvm.DataType(str(region_buffer(writes[0]).dtype)).bits, 8)


def prod_extents(sch, loops) -> int:
    out = 1
    for e in loop_extents(sch, loops):
        out *= e
    return out


def param_read_index(sch: s_tir.Schedule, blk, rank: int) -> int:
    """Index of the block's last read of a kernel-argument buffer of the given rank (a weight)."""
    params = param_buffers(sch.mod["main"])
    reads = sch.get(blk).reads
    found = [i for i, r in enumerate(reads) if is_param(region_buffer(r), params) and len(region_buffer(r).shape) == rank]
    if not found:
        raise Decline(f"no rank-{rank} weight argument")
    return found[-1]


def schedule_spatial(sch: s_tir.Schedule, blk, p: CpuParams) -> None:
    loops = sch.get_loops(blk)
    if not loops:
        return
    ext = loop_extents(sch, loops)
    total = prod_extents(sch, loops)
    # narrower vectors: a tuner's alternative (a divisor, so one value fits blocks of any dtype)
    full = max(p.lanes(dtype_bits(sch, blk)) // knob("spatial.lanes_divisor", 1, (1, 2, 4)), 1)
    lanes = largest_divisor(ext[-1], lane_candidates(full))
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
    if total >= parallel_min_elements(p) and p.num_threads > 1:
        sch.parallel(fused)


def parallel_min_elements(p: CpuParams) -> int:
    """Elements below which a generic block runs on one thread (a knob for the whole kernel)."""
    options = [PARALLEL_MIN_ELEMENTS * f for f in (1 / 4, 4, 16, 64)] if p.num_threads > 1 else []
    return knob("parallel_min_elements", PARALLEL_MIN_ELEMENTS, [int(x) for x in options])


def schedule_reduction(sch: s_tir.Schedule, blk, p: CpuParams) -> None:
    stmt = sch.get(blk)
    loops = sch.get_loops(blk)
    n_spatial = sum(1 for iv in stmt.iter_vars if iv.iter_type == 0)
    if not loops[:n_spatial]:
        return
    work = prod_extents(sch, loops)
    lanes = _partial_lanes(sch, blk, p, n_spatial)
    if lanes and not knob("reduction.vector_partials", True, (True, False)):
        lanes = 0
    if lanes:  # tried on a copy first: rfactor declines reducers it does not recognize
        try:
            _vector_partials(sch.copy(), blk, lanes, n_spatial)
        except Exception:  # noqa: BLE001 - keep the serial reduction
            lanes = 0
    rf = _vector_partials(sch, blk, lanes, n_spatial) if lanes else None
    spatial = sch.get_loops(blk)[:n_spatial]
    fused = sch.fuse(*spatial) if len(spatial) > 1 else spatial[0]
    if work >= parallel_min_elements(p) and p.num_threads > 1 and int(sch.get(fused).extent) > 1:
        sch.parallel(fused)
    if rf is not None:  # partials per row, under the row loop: (vector accumulate over r_outer, then fold)
        sch.compute_at(rf, fused)
        lane, r_outer = sch.get_loops(rf)[-2:]
        sch.reorder(r_outer, lane)
        sch.vectorize(lane)  # before decompose_reduction: the update block alone is not a reduction block
        init = sch.decompose_reduction(rf, r_outer)
        sch.vectorize(sch.get_loops(init)[-1])


def _partial_lanes(sch: s_tir.Schedule, blk, p: CpuParams, n_spatial: int) -> int:
    """Vector lanes for a row reduction over one contiguous innermost axis (layer_norm's mean and
    variance, softmax's sum): a multiple of the lanes, at least two vectors long. 0: stay serial."""
    from tvm.tirx.analysis import undefined_vars

    stmt = sch.get(blk)
    loops = sch.get_loops(blk)
    if len(stmt.iter_vars) != n_spatial + 1 or len(loops) != n_spatial + 1:
        return 0
    lanes = p.lanes(dtype_bits(sch, blk))
    extent = int(sch.get(loops[-1]).extent)
    if extent % lanes or extent < 2 * lanes:
        return 0
    rvar = stmt.iter_vars[-1].var
    written = {region_buffer(w).name for w in stmt.writes}
    for r in stmt.reads:  # every read walks the reduced axis along its last, contiguous dim (or not at all)
        if region_buffer(r).name in written or not r.region:
            continue
        for dim, rng in enumerate(r.region):
            uses = any(v.same_as(rvar) for v in undefined_vars(rng.min, []))
            if uses and dim != len(r.region) - 1:
                return 0
    return lanes


def _vector_partials(sch: s_tir.Schedule, blk, lanes: int, n_spatial: int):
    """Split the reduction into `lanes` partial results accumulated as one vector (rfactor), then
    the short serial reduction of the partials: a dependent scalar add per element becomes one
    vector add per `lanes` elements. Returns the partials block."""
    ro, ri = sch.split(sch.get_loops(blk)[-1], [None, lanes])
    return sch.rfactor(ri, n_spatial)


def loops_of_iters(sch: s_tir.Schedule, blk) -> list:
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
