"""CUDA schedule rules: every block of every kernel bound to thread blocks and threads.

After the spatial stages are inlined (`common.auto_inline`), what is left is scheduled as:

* anchors (annotated by their op's lowering with ``graphc_rule``):
  - ``matmul`` / ``dense``: a shared-memory tiled GEMM. Each thread block owns a
    (TM*RM) x (TN*RN) output tile; per K step it stages an A and a B tile in shared
    memory (all its threads fetching cooperatively), and each thread accumulates an
    RM x RN register tile. The epilogue (bias, activation, residual) is applied to the
    registers before the single store.
  - ``conv2d``: direct convolution, the same idea: a block owns (channels x rows x
    columns) of the output, stages the input patch and the weights of an input-channel
    slice in shared memory, and each thread accumulates RF channels in registers.
  - a conv whose only consumer pools it (``fused[conv_bias_relu_pool]``): the pooled
    output drives the loops; each thread block computes the conv tile its pooled tile
    reads into shared memory (with bias and activation), then pools from there and
    writes the pooled output: the full-resolution activation never reaches memory.
* reductions: one thread block per output element with its threads splitting the
  reduction (TVM's cross-thread allreduce: warp shuffles, then shared memory) when the
  reduction is long and its combiner is one TVM knows (sum, max, min...); otherwise
  one thread per output element reducing serially.
* everything else (elementwise, injective, window ops): one thread per output element.

A conv's zero padding (materialized on the CPU, see ops/window.py KEEP) is computed where
it is read here: into the shared-memory copy of the input patch, or inline.

`schedule_gpu` builds each scheduled kernel once (TVM's CUDA codegen, no nvcc) to
catch what TVM rejects only at build time (and shared memory beyond the per-block
limit, which only ptxas would report), and falls back to the simple
one-thread-per-element schedule for that kernel, saying so in its notes. The kernels
are marked ``tirx.is_scheduled`` so relax.build leaves them alone.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from tvm import s_tir

from ...errors import CompileError
from .common import (
    KEEP_KEY,
    auto_inline,
    blocks,
    has_annotation,
    is_reduction,
    loop_extents,
    region_buffer,
    rule_of,
    strip_annotations,
)


@dataclass(frozen=True)
class GpuParams:
    threads: int = 256  # threads per block for elementwise and serial-reduction kernels
    max_threads: int = 1024
    shared_bytes: int = 48 * 1024
    warp: int = 32


# a reduction at least this long gets a thread block per output (shorter ones: a thread)
CROSS_THREAD_MIN = 64
# ...unless there are so many outputs that one thread each already fills the GPU
SERIAL_MIN_OUTPUTS = 16384


class _Fallback(Exception):
    """An anchor rule does not apply to this instance; the generic rules take over."""


def _prod(xs) -> int:
    out = 1
    for x in xs:
        out *= int(x)
    return out


def _divisor(n: int, candidates) -> int:
    for c in candidates:
        if c <= n and n % c == 0:
            return c
    return 1


def _fused(sch: s_tir.Schedule, loops):
    return sch.fuse(*loops) if len(loops) > 1 else loops[0]


# ---------------------------------------------------------------------------------------
# generic rules
# ---------------------------------------------------------------------------------------
def _bind_flat(sch: s_tir.Schedule, loop, threads: int) -> None:
    """One loop over all elements -> blockIdx.x x threadIdx.x."""
    n = int(sch.get(loop).extent)
    if n == 0:  # an empty tensor: the loop vanishes at lowering, and no kernel is launched
        return
    bx, tx = sch.split(loop, [None, min(n, threads)])
    sch.bind(bx, "blockIdx.x")
    sch.bind(tx, "threadIdx.x")


def _spatial_loops(sch: s_tir.Schedule, blk) -> tuple[list, list]:
    """(spatial loops, reduction loops) of a block in TE order (spatial first); a block with no
    spatial loop (a full reduction, a 0-d output) gets a unit loop outside all its loops."""
    loops = sch.get_loops(blk)
    n_spatial = sum(1 for iv in sch.get(blk).iter_vars if iv.iter_type == 0)
    spatial, reduce = list(loops[:n_spatial]), list(loops[n_spatial:])
    if not spatial:
        spatial = [sch.add_unit_loop(loops[0] if loops else blk)]
    return spatial, reduce


def schedule_spatial(sch: s_tir.Schedule, blk, p: GpuParams) -> None:
    loops = sch.get_loops(blk)
    if not loops:
        loops = [sch.add_unit_loop(blk)]
    _bind_flat(sch, _fused(sch, loops), p.threads)


def schedule_serial_reduction(sch: s_tir.Schedule, blk, p: GpuParams) -> None:
    """One thread per output element, reducing in a register."""
    spatial, _ = _spatial_loops(sch, blk)
    _bind_flat(sch, _fused(sch, spatial), p.threads)


def _reduction_threads(n_red: int, p: GpuParams) -> int:
    t = p.warp
    while t * 2 <= min(n_red, p.threads):
        t *= 2
    return t


def schedule_reduction(sch: s_tir.Schedule, blk, p: GpuParams, cross_thread: bool = True) -> str:
    """Cross-thread when long enough (and few enough outputs), else serial. Returns which."""
    spatial, reduce = _spatial_loops(sch, blk)
    n_out = _prod(loop_extents(sch, spatial))
    n_red = _prod(loop_extents(sch, reduce))
    if not cross_thread or not reduce or n_red < CROSS_THREAD_MIN or n_out >= SERIAL_MIN_OUTPUTS:
        schedule_serial_reduction(sch, blk, p)
        return "serial"
    sch.bind(_fused(sch, spatial), "blockIdx.x")
    _, tx = sch.split(_fused(sch, reduce), [None, _reduction_threads(n_red, p)])
    sch.bind(tx, "threadIdx.x")
    return "cross-thread"


# ---------------------------------------------------------------------------------------
# anchors
# ---------------------------------------------------------------------------------------
def _epilogue_into(sch: s_tir.Schedule, writeback) -> None:
    """Inline the elementwise consumers of an accumulator's write-back into it."""
    for consumer in sch.get_consumers(writeback):
        try:
            sch.reverse_compute_inline(consumer)
        except Exception:  # noqa: BLE001 - not elementwise over the anchor (a pool, a reduction): leave it
            pass


# (threads, registers) along one output dim: the tile is threads * registers and must divide it
_TILES = [(16, 4), (16, 2), (8, 4), (16, 1), (8, 2), (4, 4), (8, 1), (4, 2), (2, 4), (4, 1), (2, 2), (1, 4), (2, 1), (1, 2), (1, 1)]


def _thread_tile(n: int, max_threads: int = 16) -> tuple[int, int]:
    for t, r in _TILES:
        if t <= max_threads and n % (t * r) == 0:
            return t, r
    return 1, 1


def _cooperative_fetch(sch: s_tir.Schedule, cache, n_outer: int, threads: list[tuple[str, int]]) -> None:
    """The copy loops of a shared-memory cache block, spread over the block's threads."""
    loops = sch.get_loops(cache)[n_outer:]
    fused = _fused(sch, loops)
    extents = [n for _, n in threads]
    parts = sch.split(fused, [None, *extents])
    for (axis, _), lp in zip(threads, parts[1:]):
        sch.bind(lp, axis)


def _operand_reads(sch: s_tir.Schedule, blk) -> list[int]:
    """Indices of the block's reads that are kernel inputs or intermediate buffers (not scalars)."""
    return [i for i, r in enumerate(sch.get(blk).reads) if len(region_buffer(r).shape) >= 1]


def _tile_bytes(sch: s_tir.Schedule, blk, at) -> int:
    """Bytes of the tile a block computed under loop `at` writes: its own loops' extents (the
    buffer keeps its full shape until TVM compacts it at lowering)."""
    own = sch.get_loops(blk)[_depth_of(sch, blk, at) :]
    n_reduce = sum(1 for iv in sch.get(blk).iter_vars if iv.iter_type != 0)
    spatial = own[: len(own) - n_reduce] if n_reduce else own
    buf = region_buffer(sch.get(blk).writes[0])
    return _prod(loop_extents(sch, spatial)) * max(int(buf.dtype.bits) // 8, 1)


def schedule_gemm(sch: s_tir.Schedule, blk, p: GpuParams, kind: str) -> str:
    loops = sch.get_loops(blk)
    if len(loops) < 3:
        raise _Fallback("no row dimension")
    *outer, j, k = loops
    if kind == "dense":  # x[..., K] @ w[N, K]^T: every leading dim is a row
        batch, i = [], _fused(sch, outer)
    else:
        *batch, i = outer
    M, N, K = (int(sch.get(x).extent) for x in (i, j, k))
    if M < 8:
        raise _Fallback(f"{M} row(s): a matrix-vector product (the reduction rule splits K over threads)")
    (tm, rm), (tn, rn) = _thread_tile(M), _thread_tile(N)
    bk = _divisor(K, [16, 8, 4, 2])
    i0, i1, i2 = sch.split(i, [None, tm, rm])
    j0, j1, j2 = sch.split(j, [None, tn, rn])
    k0, k1 = sch.split(k, [None, bk])
    sch.reorder(*batch, i0, j0, i1, j1, k0, k1, i2, j2)
    sch.bind(_fused(sch, [*batch, i0, j0]), "blockIdx.x")
    sch.bind(i1, "threadIdx.y")
    sch.bind(j1, "threadIdx.x")
    acc = sch.cache_write(blk, 0, "local")
    sch.reverse_compute_at(acc, j1)
    _epilogue_into(sch, acc)
    reads = _operand_reads(sch, blk)
    caches = []
    if len(reads) == 2:  # stage A and B tiles (shared reads must come before decompose_reduction)
        caches = [sch.cache_read(blk, idx, "shared") for idx in reads]
        for c in caches:
            sch.compute_at(c, k0, preserve_unit_loops=True)
        if sum(_tile_bytes(sch, c, k0) for c in caches) > p.shared_bytes:
            raise _Fallback("tiles exceed shared memory")
        for c in caches:
            _cooperative_fetch(sch, c, _depth_of(sch, c, k0), [("threadIdx.y", tm), ("threadIdx.x", tn)])
    sch.decompose_reduction(blk, k0)
    return f"{kind}: tiled {tm * rm}x{tn * rn} block tile, {rm}x{rn} per thread, K by {bk}" + (" via shared memory" if caches else "")


def _depth_of(sch: s_tir.Schedule, blk, loop) -> int:
    """How many of blk's loops are `loop` and the loops outside it."""
    loops = sch.get_loops(blk)
    for d, lp in enumerate(loops):
        if sch.get(lp).same_as(sch.get(loop)):
            return d + 1
    raise CompileError("internal: loop is not an ancestor of the block")


def schedule_matmul(sch, blk, p):
    return schedule_gemm(sch, blk, p, "matmul")


def schedule_dense(sch, blk, p):
    return schedule_gemm(sch, blk, p, "dense")


def _conv_tiles(F: int, OH: int, OW: int) -> tuple[int, int, int, int]:
    """(channel threads, registers per thread along channels, row threads, column threads)."""
    tx = _divisor(OW, [16, 14, 8, 7, 4, 2])
    ty = _divisor(OH, [d for d in (8, 7, 4, 2) if d * tx <= 64])
    tf = _divisor(F, [d for d in (16, 8, 4, 2) if d * ty * tx <= 256])
    rf = _divisor(F // tf, [4, 2])
    return tf, rf, ty, tx


def schedule_conv2d(sch: s_tir.Schedule, blk, p: GpuParams) -> str:
    """Direct NCHW convolution: (TF*RF channels x TY rows x TX columns) per thread block."""
    pool = _pooling_consumer(sch, blk)
    if pool is not None:
        return _schedule_conv_pool(sch, blk, pool, p)
    n, f, y, x, rc, ry, rx = sch.get_loops(blk)
    F, OH, OW, C = (int(sch.get(lp).extent) for lp in (f, y, x, rc))
    tf, rf, ty, tx = _conv_tiles(F, OH, OW)
    f0, f1, f2 = sch.split(f, [None, tf, rf])
    y0, y1 = sch.split(y, [None, ty])
    x0, x1 = sch.split(x, [None, tx])
    for bc in (8, 4, 2, 1):  # input channels staged per step: as many as shared memory holds
        if C % bc == 0:
            break
    rc0, rc1 = sch.split(rc, [None, bc])
    sch.reorder(n, f0, y0, x0, f1, y1, x1, rc0, ry, rx, rc1, f2)
    sch.bind(_fused(sch, [n, f0, y0, x0]), "blockIdx.x")
    sch.bind(f1, "threadIdx.z")
    sch.bind(y1, "threadIdx.y")
    sch.bind(x1, "threadIdx.x")
    acc = sch.cache_write(blk, 0, "local")
    sch.reverse_compute_at(acc, x1)
    _epilogue_into(sch, acc)
    reads = _operand_reads(sch, blk)
    staged = ""
    if len(reads) == 2:
        caches = [sch.cache_read(blk, idx, "shared") for idx in reads]
        for c in caches:
            sch.compute_at(c, rc0, preserve_unit_loops=True)
            _inline_padding(sch, c)
        if sum(_tile_bytes(sch, c, rc0) for c in caches) <= p.shared_bytes:
            for c in caches:
                _cooperative_fetch(sch, c, _depth_of(sch, c, rc0), [("threadIdx.z", tf), ("threadIdx.y", ty), ("threadIdx.x", tx)])
            staged = f", input patch and weights of {bc} channels per step in shared memory"
        else:
            raise _Fallback("conv tiles exceed shared memory")
    sch.decompose_reduction(blk, rc0)
    return f"conv2d: direct, {tf * rf}x{ty}x{tx} outputs per block, {rf} channels per thread{staged}"


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


def _pool_tiles(C: int, PH: int, PW: int) -> tuple[int, int, int]:
    """(channels, pooled rows, pooled columns) per thread block: about 128 pooled outputs."""
    bw = _divisor(PW, [16, 14, 8, 7, 4, 2])
    bh = _divisor(PH, [d for d in (8, 7, 4, 2) if d * bw <= 64])
    bc = _divisor(C, [d for d in (16, 8, 4, 2) if d * bh * bw <= 128])
    return bc, bh, bw


def _schedule_conv_pool(sch: s_tir.Schedule, conv, pool, p: GpuParams) -> str:
    n, c, ph, pw = sch.get_loops(pool)
    C, PH, PW = (int(sch.get(lp).extent) for lp in (c, ph, pw))
    bc, bh, bw = _pool_tiles(C, PH, PW)
    c0, c1 = sch.split(c, [None, bc])
    h0, h1 = sch.split(ph, [None, bh])
    w0, w1 = sch.split(pw, [None, bw])
    sch.reorder(n, c0, h0, w0, c1, h1, w1)
    block = _fused(sch, [n, c0, h0, w0])
    sch.bind(block, "blockIdx.x")
    threads = bc * bh * bw
    sch.bind(_fused(sch, [c1, h1, w1]), "threadIdx.x")
    # the conv tile this pooled tile reads: computed by the same threads into shared memory
    sch.compute_at(conv, block, preserve_unit_loops=True)
    sch.set_scope(conv, 0, "shared")
    n_reduce = sum(1 for iv in sch.get(conv).iter_vars if iv.iter_type != 0)
    own = sch.get_loops(conv)[_depth_of(sch, conv, block) :]  # the tile's loops, then the reduction's
    tile = _fused(sch, own[: len(own) - n_reduce])
    _, tx = sch.split(tile, [None, threads])
    sch.bind(tx, "threadIdx.x")
    tile_bytes = _tile_bytes(sch, conv, block)
    if tile_bytes > p.shared_bytes:
        raise _Fallback(f"conv tile ({tile_bytes} bytes) exceeds shared memory")
    return f"conv2d+pool: {bc}x{bh}x{bw} pooled outputs per block from a {tile_bytes // 4}-element conv tile in shared memory"


ANCHOR_RULES = {
    "conv2d": schedule_conv2d,
    "matmul": schedule_matmul,
    "dense": schedule_dense,
}


# ---------------------------------------------------------------------------------------
# driver
# ---------------------------------------------------------------------------------------
def _is_bound(sch: s_tir.Schedule, blk) -> bool:
    return any(sch.get(lp).thread_binding is not None for lp in sch.get_loops(blk))


def _is_padding(sch: s_tir.Schedule, blk) -> bool:
    return sch.get(blk).name_hint.startswith("pad") and has_annotation(sch, blk, KEEP_KEY)


def _inline_padding(sch: s_tir.Schedule, consumer=None) -> None:
    """A conv's zero padding computed where it is read (a bounds test per load) instead of
    materialized: the CPU keeps it so its inner loops stay branch-free; on a GPU it would cost a
    kernel launch and a round trip of the padded input through global memory. With a
    `consumer` (a shared-memory copy of the padded input), only the padding it reads: the
    copy then fills its tile's border with zeros and the tile keeps its compact shape."""
    pads = [b for b in (sch.get_producers(consumer) if consumer is not None else blocks(sch)) if _is_padding(sch, b)]
    for blk in pads:
        sch.unannotate(blk, KEEP_KEY)
        sch.compute_inline(blk)


def _schedule(func, p: GpuParams, simple: bool):
    notes: list[str] = []
    sch = s_tir.Schedule(func)
    auto_inline(sch)
    if not simple:
        anchors = [(sch.get(b).name_hint, rule_of(sch, b)) for b in blocks(sch) if rule_of(sch, b) in ANCHOR_RULES]
        for name, rule in anchors:
            saved = sch.copy()
            try:
                notes.append(ANCHOR_RULES[rule](sch, sch.get_sblock(name), p))
            except Exception as e:  # noqa: BLE001 - fall back to the generic schedule, say why
                sch = saved
                notes.append(f"{rule}: generic ({e.__class__.__name__}: {_first_line(e)})")
    _inline_padding(sch)  # the padding no anchor rule staged
    for blk in blocks(sch):
        if _is_bound(sch, blk):
            continue
        if is_reduction(sch, blk):
            how = schedule_reduction(sch, blk, p, cross_thread=not simple)
            if how == "cross-thread":
                notes.append(f"{sch.get(blk).name_hint}: cross-thread reduction")
        else:
            schedule_spatial(sch, blk, p)
    strip_annotations(sch)
    # tells relax.build's CUDA pipeline (DLight) to leave this kernel as graphc scheduled it
    return sch.mod["main"].with_attr("tirx.is_scheduled", True), notes


def schedule_gpu(func, p: GpuParams, tvm_target):
    """Schedule one kernel PrimFunc for CUDA; returns (scheduled func, notes)."""
    attempts = []
    for simple in (False, True):
        try:
            out, notes = _schedule(func, p, simple)
            _check_builds(out, tvm_target)
            if simple:
                notes = notes + [f"simple schedule ({attempts[0]})"]
            return out, notes
        except Exception as e:  # noqa: BLE001 - try the simple schedule, then report both
            attempts.append(f"{type(e).__name__}: {_first_line(e)}")
    raise CompileError(f"no CUDA schedule builds: {'; '.join(attempts)}")


def _check_builds(func, tvm_target) -> None:
    """TVM's device lowering and CUDA codegen on this one kernel (cheap: nvcc runs later)."""
    import tvm

    lib = tvm.tirx.build(tvm.IRModule({"main": func.with_attr("global_symbol", "main")}), tvm_target)
    limit = int(tvm_target.attrs.get("max_shared_memory_per_block", GpuParams.shared_bytes))
    for source in (m.inspect_source() for m in lib.imports if m.kind == "cuda"):
        for kernel in source.split("__global__")[1:]:
            used = sum(int(n) * _C_BYTES.get(t, 4) for t, n in _SHARED.findall(kernel))
            if used > limit:  # ptxas would reject it (nvcc runs only later, on the whole module)
                raise _Fallback(f"{used} bytes of shared memory per block, more than {limit}")


_SHARED = re.compile(r"__shared__ (?:alignas\(\d+\) )?([\w ]+?) \w+\[(\d+)\]")
_C_BYTES = {"float": 4, "int": 4, "half": 2, "double": 8, "signed char": 1, "unsigned char": 1, "bool": 1,
            "nv_bfloat16": 2, "short": 2, "long": 8, "int64_t": 8, "uint": 4}


def _first_line(e: Exception) -> str:
    lines = [ln for ln in str(e).splitlines() if ln.strip() and "ScheduleError" not in ln and not ln.startswith(("  File", "Traceback"))]
    return (lines[-1] if lines else type(e).__name__)[:200]
