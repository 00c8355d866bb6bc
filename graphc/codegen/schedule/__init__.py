"""Schedule rules per target. `schedule_kernel` is the one entry point codegen uses."""
from __future__ import annotations

from ...errors import TargetError
from ...targets import Target
from .cpu import CpuParams, schedule_cpu


def schedule_kernel(kernel, target: Target):
    """Returns (scheduled PrimFunc, notes on which rules applied)."""
    if target.kind == "x86":
        return schedule_cpu(kernel.func, CpuParams(target.vector_bits, target.num_threads))
    raise TargetError(f"no schedule rules for target kind {target.kind!r}")
