"""Schedule rules per target. `schedule_kernel` is the one entry point codegen uses."""
from __future__ import annotations

from ...errors import TargetError
from ...targets import Target
from .cpu import CpuParams, schedule_cpu


def schedule_kernel(kernel, target: Target, knobs: dict | None = None):
    """Returns (scheduled PrimFunc, notes on which rules applied). `knobs`: tuned values of the
    CPU rules' parameters (graphc.codegen.knobs)."""
    if target.kind in ("x86", "arm"):  # the same rules; NEON is 128 bits wide
        return schedule_cpu(kernel.func, CpuParams(target.vector_bits, target.num_threads), knobs)
    if target.kind == "cuda":
        from .gpu import GpuParams, schedule_gpu

        return schedule_gpu(kernel.func, GpuParams(), target.tvm_target())
    raise TargetError(f"no schedule rules for target kind {target.kind!r}")
