"""CPU GEMM rules: linear with a packed weight, linear with a weight known only at run
time, and matmul (numpy semantics, batched).

All three share one micro-kernel (`tile_gemm`): an ``mr x (nv * vl)`` accumulator tile
held in registers, the whole reduction walked under it (K unrolled by up to 4; each
step: ``nv`` weight-vector loads, ``mr`` broadcasts, ``mr * nv`` FMAs), then ONE
store of the tile through the output stage, with the elementwise epilogue (bias,
activation, residual) and the crop of a packed weight's padding applied on the way.

Loop order: column panels outside row tiles, so each core streams one weight panel
(``K x nr`` floats, contiguous when packed, L2-resident) under all the row tiles.
Panels and row tiles are fused into one parallel loop. A packed weight small enough to stay
in every core's L2 (the seed MLP's 784x128) takes row tiles outside instead: each core then
reads only its rows of the activation, which the previous kernel (or the session's input copy)
has just written on one core, rather than pulling all of it across (measured: the seed MLP's
Session.run 98 -> 89 us; the kernel timed alone on an unchanged input did not differ).
"""
from __future__ import annotations

import math

from tvm import s_tir

from ..knobs import knob
from ..tiles import column_vectors, pick_rows, tile_row_candidates
from .common import is_reduction, largest_divisor, region_buffer, writes_output
from .cpu_base import (
    PARALLEL_MIN_ELEMENTS,
    CpuParams,
    Decline,
    dtype_bits,
    lane_candidates,
    param_read_index,
    prod_extents,
    schedule_spatial,
)

UNROLL_K = 4
# a packed weight up to this size takes row tiles outside panels (see the module docstring)
SHARED_WEIGHT_BYTES = 512 * 1024


def vector_split(n: int, lanes: int) -> tuple[int, int]:
    """(vector lanes, vectors per tile row) for n output columns read from an unpacked operand."""
    vl, nv = column_vectors(n, lanes)
    if vl == 1:
        raise Decline(f"{n} output columns split into no vector width")
    return vl, nv


def _unpacked_tile(sch: s_tir.Schedule, blk, p: CpuParams) -> tuple[int, int]:
    """(vl, nv) of the register tile of a GEMM anchor whose right operand is not packed
    (matmul, or dense with a run-time weight); its producers get their own loop nests."""
    loops = sch.get_loops(blk)
    if len(loops) < 3:
        raise Decline("no row dimension")
    N = int(sch.get(loops[-2]).extent)
    if N < 2:
        raise Decline("a single output column (matrix-vector product)")
    vl, nv = vector_split(N, p.lanes(dtype_bits(sch, blk)))
    for prod in sch.get_producers(blk):
        schedule_spatial(sch, prod, p)
    return vl, nv


def output_stage(sch: s_tir.Schedule, blk):
    """The single spatial block the anchor's result flows through to memory, with the anchor's
    buffer made a per-tile register scratch: the anchor's own consumer (a crop, an epilogue)
    when it has exactly one, else a new write-back block (`cache_write`)."""
    consumers = sch.get_consumers(blk)
    if not writes_output(sch, blk) and len(consumers) == 1 and not is_reduction(sch, consumers[0]):
        out = consumers[0]
        if len(sch.get_loops(out)) == len(sch.get_loops(blk)) - 1:
            sch.set_scope(blk, 0, "local")
            return out
    return sch.cache_write(blk, 0, "local")


def tile_gemm(sch: s_tir.Schedule, blk, p: CpuParams, vl: int, nv: int, rows: int | None = None,
              column_group: int = 1, order: str = "panels_outside", under: int = 0) -> None:
    """Register-tile the anchor `blk`, whose loops are (*batch, i, j, k) or (j, k), through its
    output stage. Row tails (M not a multiple of mr) are predicated; column counts must be
    multiples of nv * vl in the anchor (a packed weight's padding) or equal to vl * nv.
    `rows`: the tile's row count when the caller knows better (a weight panel's height).
    `column_group`: column panels one row tile walks before the next (panels-outside order
    only): the group's columns of the right operand stay in L2 under all row tiles, each row
    tile's weights in L1 across the group, and each output row is written group * nr long.
    `order`: the default of the "gemm.order" knob.
    `under`: loops of an enclosing schedule (a GEMM chain's row tile) the anchor and its output
    stage already sit under: left alone, and the tile loops stay serial (the enclosing loop is
    the parallel one)."""
    loops = sch.get_loops(blk)
    if len(loops) < 2:
        raise Decline("no output column loop")
    k_loop = loops[-1]
    K = int(sch.get(k_loop).extent)
    out = output_stage(sch, blk)
    o_loops = sch.get_loops(out)[under:]
    *batch, i, j = o_loops if len(o_loops) >= 2 else (None, *o_loops)
    batch = [b for b in batch if b is not None]
    M = int(sch.get(i).extent) if i is not None else 1
    N = int(sch.get(j).extent)
    nr = nv * vl
    mr = knob("gemm.rows", min(rows, M) if rows else pick_rows(M, nv, p.vector_bits), tile_row_candidates(M, nv, p.vector_bits))
    work = M * N * K * prod_extents(sch, batch)
    jo, ji = sch.split(j, [None, nr])
    if i is not None:
        io, ii = sch.split(i, [None, mr])
        order = knob("gemm.order", order, ("panels_outside", "rows_outside"))
        tiles = [io, jo] if order == "rows_outside" else [jo, io]
        serial = []
        if column_group > 1 and order == "panels_outside":
            jg, jo = sch.split(jo, [None, column_group])
            tiles, serial = [jg, io], [jo]
        sch.reorder(*batch, *tiles, *serial, ii, ji)
        tile_loop, outer = (serial or tiles)[-1], [*batch, *tiles]
    else:
        ii, tile_loop, outer, serial = None, jo, [*batch, jo], []
    sch.compute_at(blk, tile_loop)
    # the anchor under the tile: (rows, cols, k) -> (ko, ki, rows, col vectors, lanes)
    a_loops = sch.get_loops(blk)[under + len(outer) + len(serial):]
    *a_rows, a_j, a_k = a_loops
    jm, jv = sch.split(a_j, [None, vl])
    ku = knob("gemm.unroll_k", largest_divisor(K, [UNROLL_K, 2]), [u for u in (1, 2, 4, 8) if K % u == 0])
    ko, ki = sch.split(a_k, [None, ku])
    sch.reorder(ko, ki, *a_rows, jm, jv)
    fused = sch.fuse(*outer) if len(outer) > 1 else outer[0]
    share_out = work >= PARALLEL_MIN_ELEMENTS * 64 and p.num_threads > 1  # enough multiply-adds to share out
    if not under and knob("gemm.parallel", share_out, (True, False) if p.num_threads > 1 else ()):
        sch.parallel(fused)
    sch.unroll(ki)
    for r in a_rows:
        sch.unroll(r)
    sch.unroll(jm)
    sch.vectorize(jv)
    # the output stage stores whole vectors (a crop's last panel is predicated)
    if ii is not None:
        sch.unroll(ii)
    if vl > 1:
        _, wb_v = sch.split(ji, [None, vl])
        sch.vectorize(wb_v)
    sch.decompose_reduction(blk, ko)


def packed_weight_tile(sch: s_tir.Schedule, blk, p: CpuParams):
    """(packed weight buffer, vector lanes, vectors) of a linear_packed anchor's register tile:
    one panel of the weight wide."""
    wp = region_buffer(sch.get(blk).reads[param_read_index(sch, blk, rank=3)])
    panel = int(wp.shape[-1])
    vl = largest_divisor(panel, lane_candidates(p.lanes(dtype_bits(sch, blk))))
    return wp, vl, panel // vl


def schedule_linear_packed(sch: s_tir.Schedule, blk, p: CpuParams) -> None:
    """x[..., K] @ wp[N/nr, K, nr] (a weight packed at compile time): the tile is one panel wide."""
    wp, vl, nv = packed_weight_tile(sch, blk, p)
    weight_bytes = math.prod(int(d) for d in wp.shape) * dtype_bits(sch, blk) // 8
    tile_gemm(sch, blk, p, vl, nv, order="rows_outside" if weight_bytes <= SHARED_WEIGHT_BYTES else "panels_outside")


def schedule_matmul(sch: s_tir.Schedule, blk, p: CpuParams) -> None:
    """[batch..] x [M,K] @ [K,N]: B rows are already contiguous along N."""
    vl, nv = _unpacked_tile(sch, blk, p)
    tile_gemm(sch, blk, p, vl, nv)


def schedule_dense(sch: s_tir.Schedule, blk, p: CpuParams) -> None:
    """x[..., K] @ w[N, K]^T with a weight known only at run time (training, weights as
    inputs): the weight is packed into [N/nr, K, nr] panels on every call, then the GEMM tile."""
    vl, nv = _unpacked_tile(sch, blk, p)
    nr = vl * nv
    wcache = sch.cache_read(blk, param_read_index(sch, blk, rank=2), "global")
    sch.transform_layout(wcache, ("write", 0), lambda jj, kk: (jj // nr, kk, jj % nr))
    schedule_spatial(sch, wcache, p)
    tile_gemm(sch, blk, p, vl, nv)

