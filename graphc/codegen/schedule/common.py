"""Block analysis and the inlining step shared by every target's schedule rules.

A kernel's PrimFunc holds one block per TE stage. Before a target's rules run,
cheap spatial stages (broadcasts, casts, elementwise math, reshapes) are inlined
into their consumers, so what is left is: anchor blocks (annotated by their op's
lowering with ``graphc_rule``), other reductions, and output blocks.
"""
from __future__ import annotations

from tvm import s_tir, tirx

RULE_KEY = "graphc_rule"  # block annotation set by op lowerings: which schedule rule fits
KEEP_KEY = "graphc_keep"  # block annotation: do not inline this stage (e.g. a conv's padding)


def blocks(sch: s_tir.Schedule) -> list:
    return list(sch.get_child_blocks(sch.get_sblock("root")))


def block_stmt(sch: s_tir.Schedule, blk):
    return sch.get(blk)


def is_reduction(sch: s_tir.Schedule, blk) -> bool:
    return any(iv.iter_type == tirx.IterVar.CommReduce for iv in sch.get(blk).iter_vars)


def rule_of(sch: s_tir.Schedule, blk) -> str | None:
    ann = sch.get(blk).annotations
    return str(ann[RULE_KEY]) if RULE_KEY in ann else None


def has_annotation(sch: s_tir.Schedule, blk, key: str) -> bool:
    return key in sch.get(blk).annotations


def param_buffers(func) -> list:
    """The PrimFunc's tensor arguments, in order (in TVM 0.27 a buffer argument is a typed Var)."""
    return [p for p in func.params if hasattr(p, "shape")]


def region_buffer(region):
    """The buffer (typed Var) a block read/write region refers to."""
    return region.source


def is_param(buf, params) -> bool:
    return any(buf.same_as(p) for p in params)


def writes_output(sch: s_tir.Schedule, blk) -> bool:
    params = param_buffers(sch.mod["main"])
    return any(is_param(region_buffer(w), params) for w in sch.get(blk).writes)


def loop_extents(sch: s_tir.Schedule, loops) -> list[int]:
    return [int(sch.get(lp).extent) for lp in loops]


def auto_inline(sch: s_tir.Schedule, keep: set[str] = frozenset()) -> None:
    """Inline every spatial, non-output, non-anchor stage (except the blocks named in `keep`)
    into its consumers (to a fixed point)."""
    changed = True
    while changed:
        changed = False
        for blk in reversed(blocks(sch)):
            if is_reduction(sch, blk) or writes_output(sch, blk) or sch.get(blk).name_hint in keep:
                continue
            if rule_of(sch, blk) is not None or has_annotation(sch, blk, KEEP_KEY):
                continue
            try:
                sch.compute_inline(blk)
                changed = True
            except Exception:  # noqa: BLE001 - not inlinable here (TVM says why); keep the stage
                continue


def largest_divisor(n: int, candidates) -> int:
    for c in candidates:
        if c <= n and n % c == 0:
            return c
    return 1


def strip_annotations(sch: s_tir.Schedule) -> None:
    for blk in blocks(sch):
        for key in (RULE_KEY, KEEP_KEY):
            if has_annotation(sch, blk, key):
                sch.unannotate(blk, key)
