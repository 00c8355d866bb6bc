"""Schedule rules per target. `schedule_kernel` is the one entry point codegen uses."""
from __future__ import annotations

from ...errors import TargetError
from ...targets import Target
from .cpu import CpuParams, schedule_cpu


def schedule_kernel(kernel, target: Target):
    """Returns (scheduled PrimFunc, notes on which rules applied)."""
    if target.kind in ("x86", "arm"):  # the same rules; NEON is 128 bits wide
        return schedule_cpu(kernel.func, CpuParams(target.vector_bits, target.num_threads))
    if target.kind == "cuda":
        from .gpu import GpuParams, schedule_gpu

        return schedule_gpu(kernel.func, GpuParams(), target.tvm_target())
    raise TargetError(f"no schedule rules for target kind {target.kind!r}")
