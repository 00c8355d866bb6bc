"""CPU schedule rules (x86 AVX-512/AVX2 and aarch64 NEON differ only in vector width).

Every kernel gets at least a parallel, vectorized schedule:

* spatial blocks: the innermost axis is split by the vector width and vectorized,
  everything outside it is fused and run in parallel;
* reductions: spatial axes fused and parallel; a reduction along a contiguous last axis
  accumulates one vector of partial results per row (rfactor), then folds it;
* anchors (annotated by their op's lowering): register-blocked micro-kernels
  with a local accumulator and the elementwise epilogue (bias, activation,
  residual) computed on the accumulator before the single store to memory.

Rules take a `CpuParams` (vector lanes, thread count) so x86 and ARM share them.
"""
from __future__ import annotations

from tvm import s_tir

from ..knobs import configured, scope
from .common import auto_inline, blocks, is_reduction, rule_of, strip_annotations
from .cpu_base import CpuParams, schedule_reduction, schedule_spatial
from .cpu_chain import gemm_chain_links, schedule_gemm_chain
from .cpu_conv import schedule_conv2d, schedule_conv2d_packed
from .cpu_gemm import schedule_dense, schedule_linear_packed, schedule_matmul

ANCHOR_RULES = {
    "conv2d": schedule_conv2d,
    "matmul": schedule_matmul,
    "dense": schedule_dense,
    "linear_packed": schedule_linear_packed,
    "conv2d_packed": schedule_conv2d_packed,
}


def schedule_cpu(func, p: CpuParams, knobs: dict | None = None):
    """Schedule one kernel PrimFunc for a CPU; returns (scheduled func, notes). `knobs`: values
    for the rules' tunable parameters (graphc.codegen.knobs; a tuned kernel's record). None: the
    caller's `knobs.configured` context applies (defaults outside one)."""
    if knobs is None:
        return _schedule_cpu(func, p)
    with configured(knobs):
        return _schedule_cpu(func, p)


def _schedule_cpu(func, p: CpuParams):
    notes: list[str] = []
    sch = s_tir.Schedule(func)
    auto_inline(sch, keep=gemm_chain_links(sch))
    anchors = [(sch.get(b).name_hint, rule_of(sch, b)) for b in blocks(sch) if rule_of(sch, b) in ANCHOR_RULES]
    done: set[str] = set()  # blocks an anchor rule placed (its init, accumulator write-back, epilogue)
    if len(anchors) > 1 and all(rule == "linear_packed" for _, rule in anchors):
        saved = sch.copy()
        try:
            schedule_gemm_chain(sch, [name for name, _ in anchors], p)
            notes.append(f"gemm chain: {len(anchors)} GEMMs per row tile")
            strip_annotations(sch)
            return sch.mod["main"], notes
        except Exception as e:  # noqa: BLE001 - each GEMM on its own loop nest instead; say why
            sch = saved
            notes.append(f"gemm chain: declined ({e.__class__.__name__}: {_first_line(e)})")
    for name, rule in anchors:
        saved = sch.copy()
        try:
            with scope(f"{name}." if len(anchors) > 1 else ""):  # two anchors: tuned separately
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
