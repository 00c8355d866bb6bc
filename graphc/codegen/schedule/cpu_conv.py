"""CPU convolution rules (NCHW activations): conv2d_packed (weight packed at compile time into
[O/P, C, KH, KW, P] panels of P output channels) and conv2d (weight known only at run
time: packed into the same layout on every call).

Direct convolution as an implicit GEMM: the register tile is ``mr`` consecutive output
columns of one output row times the ``P = nv * vl`` channels of one panel. Each
reduction step (c, kh, kw) loads ``nv`` contiguous weight vectors, broadcasts ``mr``
input pixels and does ``mr * nv`` vector FMAs. The accumulator is laid out [w, o] (a
channel vector contiguous) so LLVM keeps it in registers; the tile is stored once
through the output stage (crop of the panel padding, bias, activation, residual).

Loop order (image, panel, output row, column tile): one core walks all rows under one
weight panel (L2-resident) before the next; the four loops are fused and parallel. When the
input is larger than the weight, rows go outside panels instead (an input row block stays
hot while every panel passes over it). 1x1 stride-1 convs over whole vectors of pixels are
lowered as GEMMs instead (`_conv_gemm`).

Measured on one AVX-512 core (ResNet-50 3x3 layers): 8 columns x 2 vectors ran at
140-190 GFLOP/s; 4 x 4 at 120-165, 7 x 3 or 14 x 2 at 85-170, unrolling the taps
slower still. When the conv's only consumer pools it (a fused conv-bias-relu-pool
group), the pooled output drives the loops instead: see `_schedule_conv_pool`; and when the
conv's reduction is short (a few input channels, e.g. an image's first layer) under a
non-overlapping pool, pixels rather than channels are the vector lanes: see
`_schedule_pixel_conv_pool`.
"""
from __future__ import annotations

import math

from tvm import s_tir

from ..knobs import knob
from ..tiles import CONV_PANEL_VECTORS, conv_columns, tile_row_candidates
from .common import is_reduction, largest_divisor, region_buffer
from .cpu_base import CpuParams, Decline, dtype_bits, lane_candidates, loops_of_iters, param_read_index, schedule_spatial
from .cpu_gemm import output_stage, tile_gemm, vector_split


def _conv_panels(sch: s_tir.Schedule, blk, p: CpuParams, panel: int) -> tuple[int, int]:
    vl = largest_divisor(panel, lane_candidates(p.lanes(dtype_bits(sch, blk))))
    if vl < 4:
        raise Decline(f"a panel of {panel} channels splits into no vector width")
    return vl, panel // vl


def schedule_conv2d_packed(sch: s_tir.Schedule, blk, p: CpuParams) -> None:
    if len(region_buffer(sch.get(blk).writes[0]).shape) == 3:  # a 1x1 conv lowered as a GEMM over pixels
        _conv_gemm(sch, blk, p)
        return
    wp = region_buffer(sch.get(blk).reads[param_read_index(sch, blk, rank=5)])
    vl, nv = _conv_panels(sch, blk, p, int(wp.shape[-1]))
    _conv(sch, blk, p, vl, nv)


def schedule_conv2d(sch: s_tir.Schedule, blk, p: CpuParams) -> None:
    """The weight [O, C, KH, KW] is an argument (not a constant): packed into panels per call."""
    O = int(region_buffer(sch.get(blk).writes[0]).shape[1])
    lanes = p.lanes(dtype_bits(sch, blk))
    panel = largest_divisor(O, [lanes * v for v in range(CONV_PANEL_VECTORS, 0, -1)] + lane_candidates(lanes)[1:])
    vl, nv = _conv_panels(sch, blk, p, panel)
    wcache = sch.cache_read(blk, param_read_index(sch, blk, rank=4), "global")
    sch.transform_layout(wcache, ("write", 0), lambda oo, c, kh, kw: (oo // panel, c, kh, kw, oo % panel))
    _conv(sch, blk, p, vl, nv)


def _conv_gemm(sch: s_tir.Schedule, blk, p: CpuParams) -> None:
    """[n, O, pixels] = wp[O, C] @ x[n, C, pixels] through the GEMM micro-kernel: rows are output
    channels (weight scalars broadcast from the panel), columns whole vectors of pixels (contiguous
    in NCHW: no transposed write-back). The output stage ([n, o, h, w]: crop, bias, activation,
    residual) is re-indexed by one flat pixel iterator so it tiles like the anchor."""
    pixels = int(region_buffer(sch.get(blk).writes[0]).shape[2])
    vl, nv = vector_split(pixels, p.lanes(dtype_bits(sch, blk)))
    consumers = sch.get_consumers(blk)
    if len(consumers) != 1 or is_reduction(sch, consumers[0]) or len(sch.get_loops(consumers[0])) != 4:
        raise Decline("the GEMM-form conv's output is not read by one [n, o, h, w] stage")
    width = int(region_buffer(sch.get(consumers[0]).writes[0]).shape[3])
    # one flat pixel iterator (not fused loops): its reads of the anchor simplify to [n, o, pixel]
    sch.transform_block_layout(consumers[0], lambda n, o, h, w: (n, o, h * width + w))
    # one weight panel per tile (the layout pass sized panels as the tile's rows): measured 5-20%
    # faster on ResNet's 1x1 convs than rows dividing the unpadded channel count (6 vs 4 on 64)
    panel = int(region_buffer(sch.get(blk).reads[param_read_index(sch, blk, rank=5)]).shape[-1])
    channels = int(region_buffer(sch.get(blk).reads[param_read_index(sch, blk, rank=5)]).shape[1])
    group = knob("conv.pixel_group", _pixel_group(pixels // (vl * nv), channels * vl * nv * 4),
                 [g for g in range(1, PIXEL_GROUP_MAX + 1) if (pixels // (vl * nv)) % g == 0])
    tile_gemm(sch, blk, p, vl, nv, rows=panel, column_group=group)


# pixel blocks one channel tile walks before the next (tile_gemm's column_group). Measured on
# ResNet's 1x1 convs, 2 threads, best of ~3500 interleaved rounds: 7 blocks vs 1: 64->256 @56
# 158 -> 182 GFLOP/s, 128->512 @28 187 -> 206, 512->128 @28 188 -> 195, 64->64 @56 177 -> 183,
# 256->64 and 256->128 @56 unchanged (+-1%).
PIXEL_GROUP_MAX = 8
PIXEL_GROUP_BYTES = 512 * 1024  # the group's input columns: half of a core's L2


def _pixel_group(blocks: int, block_bytes: int) -> int:
    """The largest group of pixel blocks dividing their count (no partial group) whose input
    columns fit PIXEL_GROUP_BYTES."""
    fits = [g for g in range(1, PIXEL_GROUP_MAX + 1) if blocks % g == 0 and g * block_bytes <= PIXEL_GROUP_BYTES]
    return max(fits, default=1)


def _conv(sch: s_tir.Schedule, blk, p: CpuParams, vl: int, nv: int) -> None:
    pool = _pooling_consumer(sch, blk)
    window = _pixel_pool_window(sch, blk, pool, p) if pool is not None else None
    if window is not None:
        _schedule_pixel_conv_pool(sch, blk, pool, p, window)
        return
    if pool is None and _pixel_conv_fits(sch, blk, p):  # unpooled: its output stage is the reader
        _schedule_pixel_conv_pool(sch, blk, [output_stage(sch, blk)], p, 1)
        return
    for prod in sch.get_producers(blk):  # the padded input (and a per-call weight pack): own loop nests
        if not _schedule_padding(sch, prod, p):
            schedule_spatial(sch, prod, p)
    if pool is not None:
        _schedule_conv_pool(sch, blk, pool, p, vl, nv)
        return
    panel = vl * nv
    out = output_stage(sch, blk)
    # accumulator layout [n, h, w, o]: a channel vector is contiguous, so the tile is a grid of
    # whole vectors LLVM keeps in registers (in NCHW order a vector would be strided and spill)
    sch.transform_layout(blk, ("write", 0), lambda n_, o_, h_, w_: (n_, h_, w_, o_))
    n, o, h, w = sch.get_loops(out)
    mr = _tile_columns(int(sch.get(w).extent), nv, p)
    ob, oi = sch.split(o, [None, panel])
    wo, wi = sch.split(w, [None, mr])
    order = knob("conv.order", "rows_outside" if _input_outweighs_weight(sch, blk) else "panels_outside",
                 ("panels_outside", "rows_outside"))
    outer = [n, h, ob, wo] if order == "rows_outside" else [n, ob, h, wo]
    sch.reorder(*outer, oi, wi)
    sch.compute_at(blk, wo)
    a_o, a_w, reduce_loops = _tile_loops(sch, blk, depth=4)
    sch.parallel(sch.fuse(*outer))
    _micro_kernel(sch, blk, a_o, a_w, reduce_loops, vl)
    sch.unroll(oi)
    sch.unroll(wi)
    if reduce_loops:
        sch.decompose_reduction(blk, reduce_loops[0])


def _tile_columns(ow: int, nv: int, p: CpuParams) -> int:
    """Output columns per register tile (a tunable knob; the packed panel is fixed by the layout pass)."""
    return knob("conv.columns", conv_columns(ow, nv, p.vector_bits), tile_row_candidates(ow, nv, p.vector_bits))


def _schedule_padding(sch: s_tir.Schedule, blk, p: CpuParams) -> bool:
    """The padded input [n, c, hp, wp] as one vector per padded row when a row is at most four
    vectors long (LLVM splits it into whole vectors and one masked tail): the generic rule would
    use the widest lane count dividing the row (2 for the seed CNN's 30-wide rows) and run 15
    scalar-ish iterations per row. Returns False (the generic rule applies) otherwise."""
    loops = sch.get_loops(blk)
    if len(loops) != 4 or len(sch.get(blk).writes) != 1:
        return False
    row = int(sch.get(loops[-1]).extent)
    lanes = p.lanes(dtype_bits(sch, blk))
    if row % lanes == 0 or row > 4 * lanes:
        return False  # whole vectors already, or long rows the generic split handles well
    sch.vectorize(loops[-1])
    outer = sch.fuse(*loops[:-1])
    if p.num_threads > 1:
        sch.parallel(outer)
    return True


def _input_outweighs_weight(sch: s_tir.Schedule, blk) -> bool:
    """Whether the conv reads more input than weight bytes. Panels outside rows re-read the whole
    input once per panel; rows outside panels re-read the weight once per output row instead
    (measured: ResNet's 1x1 stride-2 256->512 @56, 3.2 MB of input, 16 panels: 91 -> 124 GFLOP/s)."""
    written = {region_buffer(r).name for r in sch.get(blk).writes}  # the accumulator is read too
    reads = [b for b in map(region_buffer, sch.get(blk).reads) if b.name not in written]
    w = [b for b in reads if len(b.shape) == 5]  # the packed weight (a constant, or packed per call)
    x = [b for b in reads if len(b.shape) == 4]
    return bool(w and x) and max(map(_size, x)) > _size(w[0])


def _size(buf) -> int:
    out = 1
    for d in buf.shape:
        out *= int(d)
    return out


def _tile_loops(sch: s_tir.Schedule, blk, depth: int):
    """(channel loop, column loop, reduction loops) of a conv block under `depth` outer loops;
    compute_at drops unit loops (one input channel, a 1x1 kernel), those come back as None."""
    inner = {sch.get(lp) for lp in sch.get_loops(blk)[depth:]}
    per_iter = [lp if lp is not None and sch.get(lp) in inner else None for lp in loops_of_iters(sch, blk)]
    return per_iter[1], per_iter[3], [lp for lp in per_iter[4:] if lp is not None]


def _micro_kernel(sch: s_tir.Schedule, blk, o, w, reduce_loops, vl: int) -> None:
    """(c, kh, kw) outside, then the unrolled columns x channel vectors, lanes vectorized."""
    om, ov = sch.split(o, [None, vl])
    sch.reorder(*reduce_loops, *[lp for lp in (w, om, ov) if lp is not None])
    if w is not None:
        sch.unroll(w)
    sch.unroll(om)
    sch.vectorize(ov)


def _pooling_consumer(sch: s_tir.Schedule, blk):
    """The conv's consumers if they are spatial stages reading the conv through windows (their
    outputs are spatially smaller: a max/avg pool with the epilogue inlined into it), all of
    one shape; several when the pool has several outputs (training's max_pool2d_with_index: the
    pooled value and its tap, one TE compute that becomes one block per output)."""
    consumers = sch.get_consumers(blk)
    if not consumers or any(is_reduction(sch, c) for c in consumers):
        return None
    outs = [region_buffer(sch.get(c).writes[0]) for c in consumers]
    conv_out = region_buffer(sch.get(blk).writes[0])
    out = outs[0]
    if len(out.shape) != 4 or int(out.shape[0]) != int(conv_out.shape[0]):
        return None
    if any([int(d) for d in o.shape] != [int(d) for d in out.shape] for o in outs[1:]):
        return None
    smaller = int(out.shape[2]) < int(conv_out.shape[2]) or int(out.shape[3]) < int(conv_out.shape[3])
    return consumers if smaller else None


def _schedule_conv_pool(sch: s_tir.Schedule, conv, pools, p: CpuParams, vl: int, nv: int) -> None:
    """One kernel for conv -> (bias, activation) -> pool: for each (image, channel panel, pooled
    row), the conv rows that pooled row reads are computed into a small scratch buffer
    ([rows, width, panel] floats, stack-allocated, L1-resident) by the register micro-kernel,
    and the pool reads them from there: the full-resolution activation never reaches memory.
    A pool with several outputs (`pools`, one block each) shares one loop nest: each pooled
    element's outputs are computed together from the same scratch values."""
    panel = vl * nv
    if len(pools) > 1:
        sch.merge(*[sch.get_loops(b)[-1] for b in pools])
    n, c, ph, pw = sch.get_loops(pools[0])
    cb, ci = sch.split(c, [None, panel])
    cm, cv = sch.split(ci, [None, vl])
    sch.reorder(n, cb, ph, pw, cm, cv)
    outer = sch.fuse(n, cb, ph)
    sch.parallel(outer)
    sch.compute_at(conv, outer)
    # scratch layout [n, h, w, c]: channel vectors contiguous for the micro-kernel's stores
    # and the pool's loads; "local" scope keeps it a per-iteration stack buffer
    sch.transform_layout(conv, ("write", 0), lambda n_, c_, h_, w_: (n_, h_, w_, c_))
    sch.set_scope(conv, 0, "local")
    loops = loops_of_iters(sch, conv)
    o, h, w = loops[1], loops[2], loops[3]
    reduce_loops = [lp for lp in loops[4:] if lp is not None]
    mr = _tile_columns(int(sch.get(w).extent), nv, p)
    wo, wi = sch.split(w, [None, mr])
    sch.reorder(*[lp for lp in (h, wo, o, wi) if lp is not None])
    acc = sch.cache_write(conv, 0, "local")  # the register tile, stored into the scratch rows
    sch.reverse_compute_at(acc, wo)
    _micro_kernel(sch, conv, o, wi, reduce_loops, vl)
    sch.vectorize(sch.get_loops(acc)[-1])
    sch.vectorize(cv)
    sch.unroll(cm)
    if reduce_loops:
        sch.decompose_reduction(conv, reduce_loops[0])


# ---------------------------------------------------------------------------------------
# few input channels (under a non-overlapping pool, or unpooled): pixels as vector lanes
# ---------------------------------------------------------------------------------------
# reduction length (C * KH * KW) up to which the channel-panel micro-kernel does too few
# multiply-adds per accumulator to pay for its stores and for the pooled output's channel
# vectors, which NCHW scatters lane by lane (the seed CNN's conv1, 1 channel x 3x3: 9 steps)
PIXEL_REDUCTION_MAX = 32
PIXEL_TILE_VECTORS = 24  # accumulator (+ input) vectors of one register tile (of 32 AVX-512 registers)


def _pixel_conv_fits(sch: s_tir.Schedule, conv, p: CpuParams) -> bool:
    """Whether an unpooled conv is better computed with pixels as vector lanes: a short
    reduction, stride 1, output rows that split into a vector width, and it stores through
    nothing or one spatial [n, o, h, w] stage (its crop and epilogue)."""
    consumers = sch.get_consumers(conv)
    if len(consumers) > 1 or (consumers and (is_reduction(sch, consumers[0]) or len(sch.get(consumers[0]).iter_vars) != 4)):
        return False
    if not _short_unit_stride_conv(sch, conv):
        return False
    return _pixel_lanes(int(region_buffer(sch.get(conv).writes[0]).shape[3]), p) is not None


def _short_unit_stride_conv(sch: s_tir.Schedule, conv) -> bool:
    """A conv block (n, o, h, w, c, kh, kw) whose reduction is at most PIXEL_REDUCTION_MAX steps
    and which reads its (padded) input at [.., h + kh, w + kw]: stride 1, no dilation."""
    from tvm.sym.analyzer import Analyzer

    ivs = sch.get(conv).iter_vars
    if len(ivs) != 7 or math.prod(int(iv.dom.extent) for iv in ivs[4:]) > PIXEL_REDUCTION_MAX:
        return False
    x_read = _input_read(sch, conv)
    if x_read is None:
        return False
    ana = Analyzer()
    h, w, kh, kw = (iv.var for iv in (ivs[2], ivs[3], ivs[5], ivs[6]))
    return _same(ana, x_read.region[2].min, h + kh) and _same(ana, x_read.region[3].min, w + kw)


def _pixel_pool_window(sch: s_tir.Schedule, conv, pools, p: CpuParams) -> int | None:
    """The pool's window `s` (s x s, stride s, no padding) when the conv-pool kernel is better
    computed with pixels as vector lanes (`_schedule_pixel_conv_pool`); None otherwise: a long
    reduction, a strided or dilated conv, an overlapping or padded pool window, or pooled rows
    that split into no vector width."""
    from tvm.sym.analyzer import Analyzer

    if len(sch.get(pools[0]).iter_vars) != 4 or not _short_unit_stride_conv(sch, conv):
        return None
    conv_buf = region_buffer(sch.get(conv).writes[0])
    ana = Analyzer()
    # every pool reads [.., s*i : s*i + s, s*j : s*j + s] of the conv: a non-overlapping s x s window
    window = None
    for pool in pools:
        pst = sch.get(pool)
        pi, pj = pst.iter_vars[2].var, pst.iter_vars[3].var
        for r in pst.reads:
            if region_buffer(r).name != conv_buf.name:
                continue
            ri, rj = r.region[2], r.region[3]
            try:
                s, sw = int(ri.extent), int(rj.extent)
            except TypeError:  # a data-dependent window
                return None
            if s < 2 or sw != s or window not in (None, s):
                return None
            if not (_same(ana, ri.min, pi * s) and _same(ana, rj.min, pj * s)):
                return None
            window = s
    if window is None or int(conv_buf.shape[3]) % window:  # its columns split evenly by phase
        return None
    pooled_w = int(sch.get(pools[0]).iter_vars[3].dom.extent)
    if _pixel_lanes(pooled_w, p) is None:
        return None
    return window


def _same(ana, a, b) -> bool:
    return bool(ana.can_prove_equal(a, b))


def _input_read(sch: s_tir.Schedule, conv):
    """The conv's read of its (padded) input: its one rank-4 read other than its own accumulator
    (the weight is rank 5, packed at compile time or per call); None if that is ambiguous."""
    own = region_buffer(sch.get(conv).writes[0]).name
    reads = [r for r in sch.get(conv).reads if len(r.region) == 4 and region_buffer(r).name != own]
    return reads[0] if len(reads) == 1 else None


def _pixel_lanes(pooled_w: int, p: CpuParams) -> int | None:
    """Vector lanes for a pooled row of `pooled_w` pixels: the widest count dividing the row that
    fills at least half a vector (14 of 16 lanes for the seed CNN's 14-pixel rows: LLVM masks the
    rest); None when there is none (narrow vectors, or rows of a prime length above one vector)."""
    lanes = p.lanes(32)
    if lanes < 8:
        return None  # 4-lane NEON: the channel panels already fill whole vectors
    lv = largest_divisor(pooled_w, range(lanes, lanes // 2 - 1, -1))
    return lv if lv > 1 else None


# conv rows per register tile when no pool groups them (s = 1): with one channel vector per row,
# 2 rows x 4 channels keep 8 independent accumulators in flight (FMA latency 4, 2 pipes)
PIXEL_ROWS = 2
PIXEL_MIN_ACCUMULATORS = 8


def _pixel_channels(sch: s_tir.Schedule, conv, channels: int, s: int, rows: int) -> int:
    """Output channels per register tile (s * s accumulator vectors each). One, when the input
    vectors a tile reads (C x (s + KH - 1) rows x (s + KW - 1) column offsets) fit in registers
    beside its accumulators: they then stay there across all channels (seed CNN conv1, 1 x 3x3
    under a 2x2 pool: 16 input + 4 accumulator vectors; measured 196 us for 1 channel per tile,
    215 for 2 or 4, 340-470 for 8). Otherwise the inputs are reloaded from L1 for every tile,
    and the most channels the accumulators allow amortize those loads."""
    cin, kh, kw = (int(iv.dom.extent) for iv in sch.get(conv).iter_vars[4:7])
    per_channel = s * s * rows  # accumulator vectors
    inputs = cin * (s * rows + kh - 1) * (s + kw - 1)
    least = -(-PIXEL_MIN_ACCUMULATORS // per_channel) if s == 1 else 1
    if inputs + per_channel * least <= PIXEL_TILE_VECTORS:
        return largest_divisor(channels, range(least, 0, -1))
    return largest_divisor(channels, range(max(PIXEL_TILE_VECTORS // per_channel, 1), 0, -1))


def _schedule_pixel_conv_pool(sch: s_tir.Schedule, conv, pools, p: CpuParams, s: int) -> None:
    """conv -> (bias, activation) -> s x s pool with pixels as vector lanes. The conv's output
    columns are split by the pool stride, w = s * j + t, and a register tile holds, for a few
    channels, the s rows x s phases t of one vector of pooled columns j: every pool window is
    then the tile's s * s vectors at one lane, so the pool is s * s - 1 vector maxes and the
    pooled row is stored as contiguous vectors (NCHW). The padded input is stored with its
    columns deinterleaved by phase ([.., y, z % s, z // s]) so the conv's loads at w + kw are
    contiguous too (when the padded width is a multiple of s; otherwise they are strided, still
    correct). Each reduction step loads s * s input vectors, broadcasts one weight per channel
    and does s * s vector FMAs per channel. Unpooled (s = 1, `pools` = [its output stage]):
    a tile of PIXEL_ROWS rows instead, stored as whole pixel vectors."""
    pooled_w = int(sch.get(pools[0]).iter_vars[3].dom.extent)
    lanes = _pixel_lanes(pooled_w, p)
    x_name = region_buffer(_input_read(sch, conv)).name
    for prod in sch.get_producers(conv):  # the padded input and a per-call weight pack: own loop nests
        written = region_buffer(sch.get(prod).writes[0])
        if s > 1 and written.name == x_name and len(sch.get(prod).iter_vars) == 4 and int(written.shape[3]) % s == 0:
            sch.transform_layout(prod, ("write", 0), lambda b, ch, y, z: (b, ch, y, z % s, z // s))
            sch.transform_block_layout(prod, lambda b, ch, y, z: (b, ch, y, z % s, z // s))
            schedule_spatial(sch, prod, p)
        elif not _schedule_padding(sch, prod, p):
            schedule_spatial(sch, prod, p)
    if len(pools) > 1:
        sch.merge(*[sch.get_loops(b)[-1] for b in pools])
    n, c, ph, pw = sch.get_loops(pools[0])
    channels = int(sch.get(c).extent)
    # unpooled (s = 1): a tile of several rows; a pool's window already gives its tile s rows
    rows = largest_divisor(int(sch.get(ph).extent), range(PIXEL_ROWS, 0, -1)) if s == 1 else 1
    fits = [d for d in range(1, channels + 1) if channels % d == 0 and d * s * s * rows <= 2 * PIXEL_TILE_VECTORS]
    ct = knob("conv.pixel_channels", _pixel_channels(sch, conv, channels, s, rows), fits)
    co, ci = sch.split(c, [None, ct])
    pwo, pwi = sch.split(pw, [None, lanes])
    pho, phi = sch.split(ph, [None, rows])
    sch.reorder(n, pho, pwo, co, ci, phi, pwi)
    outer = sch.fuse(n, pho)
    sch.parallel(outer)
    sch.compute_at(conv, co)
    sch.set_scope(conv, 0, "local")
    if s > 1:
        sch.transform_layout(conv, ("write", 0), lambda n_, c_, h_, w_: (n_, c_, h_, w_ % s, w_ // s))
    inner = {sch.get(lp) for lp in sch.get_loops(conv)[3:]}  # under (n * pho, pwo, co)
    loops = [lp if lp is not None and sch.get(lp) in inner else None for lp in loops_of_iters(sch, conv)]
    o, h, w = loops[1], loops[2], loops[3]
    reduce_loops = [lp for lp in loops[4:] if lp is not None]
    j, t = sch.split(w, [None, s])
    sch.reorder(*reduce_loops, *[lp for lp in (o, h) if lp is not None], t, j)
    for lp in (o, h):
        if lp is not None:
            sch.unroll(lp)
    sch.unroll(t)
    sch.vectorize(j)
    if reduce_loops:
        sch.decompose_reduction(conv, reduce_loops[0])
    sch.unroll(ci)
    sch.unroll(phi)
    sch.vectorize(pwi)
