"""What every CPU schedule rule shares: target parameters, the generic spatial and
reduction schedules, and the exception an anchor rule raises to decline.

* spatial blocks: the innermost axis is split by the vector width and vectorized,
  everything outside it is fused and run in parallel;
* reductions: spatial axes fused and parallel, reduction axes serial.
"""
from __future__ import annotations

from dataclasses import dataclass

import tvm
from tvm import s_tir

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


def lane_candidates(lanes: int) -> list[int]:
    out, v = [], lanes
    while v >= 2:
        out.append(v)
        v //= 2
    return out


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
    total = 1
    for e in ext:
        total *= e
    full = p.lanes(dtype_bits(sch, blk))
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
