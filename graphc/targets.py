"""Compilation targets: what graphc compiles for and how TVM is told about it.

A `Target` is plain data (JSON round-trips into the artifact), so the runtime can
check an artifact against the machine it is loaded on without importing TVM's
compiler. `tvm_target()` builds the JSON-dict TVM target (TVM 0.27 rejects the
old ``"llvm -mcpu=..."`` strings).
"""
from __future__ import annotations

import os
import platform
from dataclasses import asdict, dataclass, field

from .errors import TargetError

KNOWN_TARGETS = {
    "x86": "x86-64 Linux CPU; host CPU features detected (AVX-512 used when present)",
}


@dataclass(frozen=True)
class Target:
    kind: str  # "x86"
    mtriple: str
    mcpu: str
    vector_bits: int
    num_threads: int
    features: tuple[str, ...] = field(default_factory=tuple)  # CPU flags the code requires (checked at load)

    def tvm_target(self):
        import tvm

        if self.kind == "x86":
            return tvm.target.Target(
                {"kind": "llvm", "mtriple": self.mtriple, "mcpu": self.mcpu, "num-cores": self.num_threads}
            )
        raise TargetError(f"no TVM target for kind {self.kind!r}")

    def to_json(self) -> dict:
        d = asdict(self)
        d["features"] = list(self.features)
        return d

    @staticmethod
    def from_json(d: dict) -> "Target":
        d = dict(d)
        d["features"] = tuple(d.get("features", ()))
        return Target(**d)

    def describe(self) -> str:
        return f"{self.kind} ({self.mcpu}, {self.vector_bits}-bit vectors, {self.num_threads} threads)"


def host_cpu_flags() -> set[str]:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags") or line.startswith("Features"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def available_threads() -> int:
    try:
        return max(len(os.sched_getaffinity(0)), 1)
    except AttributeError:  # pragma: no cover - non-Linux
        return os.cpu_count() or 1


def x86_host(num_threads: int | None = None) -> Target:
    """The machine we are running on, with its vector width from the CPU flags."""
    if platform.machine() not in ("x86_64", "AMD64"):
        raise TargetError(f"--target x86 compiles for this machine's CPU, but this is {platform.machine()}")
    from tvm.target import codegen

    mcpu = codegen.llvm_get_system_cpu()
    flags = host_cpu_flags()
    if "avx512f" in flags:
        bits, feats = 512, ("avx512f",)
    elif "avx2" in flags:
        bits, feats = 256, ("avx2",)
    else:
        bits, feats = 128, ()
    return Target("x86", "x86_64-linux-gnu", mcpu, bits, num_threads or available_threads(), feats)


def resolve(target: "str | Target", **options) -> Target:
    if isinstance(target, Target):
        return target
    if target in ("x86", "llvm", "cpu", "host"):
        return x86_host(options.get("num_threads"))
    raise TargetError(f"unknown target {target!r}; available: {', '.join(KNOWN_TARGETS)}")


def check_loadable(target: Target) -> None:
    """Raise a clear error when an artifact cannot run on this machine."""
    machine = platform.machine()
    if target.kind == "x86":
        if machine not in ("x86_64", "AMD64"):
            raise TargetError(f"artifact was compiled for x86-64 ({target.mcpu}); this machine is {machine}")
        missing = [f for f in target.features if f not in host_cpu_flags()]
        if missing:
            raise TargetError(
                f"artifact was compiled for {target.mcpu} and needs CPU features {', '.join(missing)}, "
                "which this machine lacks; recompile it here"
            )
    else:
        raise TargetError(f"artifact target kind {target.kind!r} is not known to this graphc version")
