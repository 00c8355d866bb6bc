"""CPU rule for a GEMM chain kernel (passes/fuse_dense_chain.py): ``linear -> epilogue ->
linear -> epilogue [-> softmax]`` computed row tile by row tile.

The kernel's output rows are split into tiles of ``mr`` rows (the first GEMM's register
tile height) and every stage is computed at that tile, in one parallel loop: for each
tile, the first GEMM's micro-kernel walks its column panels into an ``mr x N1`` scratch
(stack, L1-resident), the second GEMM reads it straight from there, and the row-wise tail
(bias, softmax) runs on the ``mr x N2`` result. The intermediate activation never goes
to memory, and the second GEMM, too small to be worth a kernel launch of its own (the seed
MLP's 64x128x10: 164 KFLOP, 24% of the sgemm peak as a separate kernel), costs no call,
no thread-pool wake-up and no pass over the activation.
"""
from __future__ import annotations

from tvm import s_tir

from ..knobs import knob, scope
from ..tiles import max_rows
from .common import blocks, is_param, is_reduction, largest_divisor, param_buffers, region_buffer, rule_of, writes_output
from .cpu_base import CpuParams, Decline
from .cpu_gemm import packed_weight_tile, tile_gemm

# the row tile's intermediate (mr x N1 floats) should stay in L1 beside the weight panel it meets
CHAIN_SCRATCH_BYTES = 16 * 1024


def schedule_gemm_chain(sch: s_tir.Schedule, anchors: list[str], p: CpuParams) -> None:
    """Schedule a kernel whose GEMM anchors (block names, in order) form a chain; raises
    (Decline or a schedule error) when it is not one this rule handles."""
    outs = [b for b in blocks(sch) if writes_output(sch, b)]
    if len(outs) != 1:
        raise Decline(f"{len(outs)} output stages (a chain has one)")
    out = outs[0]
    loops = sch.get_loops(out)
    if len(loops) != 2:
        raise Decline("the chain's output is not a [rows, columns] matrix")
    first = sch.get_sblock(anchors[0])
    _, _, nv = _panel_tile(sch, first, p)
    M = int(sch.get(loops[0]).extent)
    n1 = int(region_buffer(sch.get(first).writes[0]).shape[-1])
    top = min(max_rows(nv, p.vector_bits), max(CHAIN_SCRATCH_BYTES // (n1 * 4), 1))
    mr = knob("chain.rows", largest_divisor(M, range(top, 0, -1)), [r for r in range(1, top + 1) if M % r == 0])
    if M // mr < p.num_threads:  # e.g. one row: each GEMM's own loop nest shares out its columns
        raise Decline(f"{M // mr} row tile(s) of {mr} rows for {p.num_threads} threads")
    io, _ = sch.split(loops[0], [None, mr])
    # every other stage at the row tile, consumers first (compute_at needs them placed)
    for blk in reversed(blocks(sch)):
        if not sch.get(blk).same_as(sch.get(out)):
            sch.compute_at(blk, io)
    if p.num_threads > 1:
        sch.parallel(io)
    for name in anchors:
        blk = sch.get_sblock(name)
        _, vl, nv = _panel_tile(sch, blk, p)
        with scope(f"{name}."):  # each GEMM's knobs tuned on their own
            tile_gemm(sch, blk, p, vl, nv, rows=mr, under=1)
    # the output stage (bias, softmax's normalization) along its columns; the row reductions
    # stay serial: vectorized across the tile's rows (strided reads of the [rows, columns]
    # tile) they measured slower on the seed MLP (76 vs 70 us per run)
    sch.vectorize(sch.get_loops(out)[-1])
    # intermediates are per-tile scratch: stack buffers compacted to the tile
    params = param_buffers(sch.mod["main"])
    for blk in blocks_under(sch, io):
        for k, w in enumerate(sch.get(blk).writes):
            buf = region_buffer(w)
            if not is_param(buf, params) and buf.scope() == "global":
                sch.set_scope(blk, k, "local")


def gemm_chain_links(sch: s_tir.Schedule) -> set[str]:
    """In a kernel with several linear_packed anchors, the spatial stages each later anchor
    reads (its input's epilogue: bias, activation). Kept as blocks (not inlined into the anchor)
    so the earlier GEMM applies them once per element as it stores its tile, instead of the
    later GEMM recomputing them for every broadcast of its micro-kernel (measured on the seed
    MLP: 75 vs 70 us per run)."""
    anchors = [b for b in blocks(sch) if rule_of(sch, b) == "linear_packed"]
    if len(anchors) < 2:
        return set()
    return {sch.get(p).name_hint for a in anchors[1:] for p in sch.get_producers(a) if not is_reduction(sch, p)}


def blocks_under(sch: s_tir.Schedule, loop) -> list:
    """Every block nested under `loop`, at any depth."""
    found, todo = [], list(sch.get_child_blocks(loop))
    while todo:
        blk = todo.pop()
        found.append(blk)
        todo.extend(sch.get_child_blocks(blk))
    return found


def _panel_tile(sch: s_tir.Schedule, blk, p: CpuParams):
    """`packed_weight_tile`, declining a panel that splits into no vector width."""
    wp, vl, nv = packed_weight_tile(sch, blk, p)
    if vl < 2:
        raise Decline(f"a {vl * nv}-wide panel splits into no vector width")
    return wp, vl, nv
