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
    "arm": "aarch64 Linux CPU, NEON (--cpu cortex-a72 default, neoverse-n1, ...); "
    "needs the aarch64 cross compiler (Debian: gcc-aarch64-linux-gnu)",
    "cuda": "NVIDIA GPU (--arch sm_90 default, sm_80, sm_86, sm_89); device code compiled by nvcc (CUDA toolkit), "
    "host code x86-64",
}


@dataclass(frozen=True)
class Target:
    kind: str  # "x86", "arm"
    mtriple: str
    mcpu: str
    vector_bits: int
    num_threads: int
    features: tuple[str, ...] = field(default_factory=tuple)  # CPU flags the code requires (checked at load)
    arch: str = ""  # cuda: the GPU architecture the device code is for ("sm_90")

    def tvm_target(self):
        import tvm

        if self.kind == "x86":
            return tvm.target.Target(
                {"kind": "llvm", "mtriple": self.mtriple, "mcpu": self.mcpu, "num-cores": self.num_threads}
            )
        if self.kind == "arm":
            return tvm.target.Target(
                {"kind": "llvm", "mtriple": self.mtriple, "mcpu": self.mcpu, "num-cores": self.num_threads}
            )
        if self.kind == "cuda":
            return tvm.target.Target(cuda_tvm_target(self))
        raise TargetError(f"no TVM target for kind {self.kind!r}")

    def export_options(self) -> dict:
        """Keyword arguments for TVM's `export_library`: cross targets link with their cross compiler."""
        if self.kind == "arm":
            from tvm.support import cc

            return {"fcompile": cc.cross_compiler(arm_cross_compiler())}
        if self.kind == "cuda":  # device code goes in as nvcc-built fatbins, not CUDA source
            from .codegen.cuda_build import pack_imports_with_fatbins

            return {"fpack_imports": pack_imports_with_fatbins(self.arch)}
        return {}

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
        if self.kind == "cuda":
            return f"cuda ({self.arch}, host {self.mcpu})"
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
        if options.get("cpu"):
            raise TargetError(f"--cpu {options['cpu']} picks an ARM core (--target arm); --target x86 compiles for this machine's CPU")
        return x86_host(options.get("num_threads"))
    if target in ("arm", "aarch64", "arm64"):
        return arm(options.get("cpu"), options.get("num_threads"))
    if target in ("cuda", "gpu"):
        return cuda(options.get("arch"))
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
    elif target.kind == "arm":
        check_arm_loadable(target)
    elif target.kind == "cuda":
        check_cuda_loadable(target)
    else:
        raise TargetError(f"artifact target kind {target.kind!r} is not known to this graphc version")


# ---------------------------------------------------------------------------------------
# arm: aarch64 Linux, NEON, cross-compiled on the x86 build machine
# ---------------------------------------------------------------------------------------
ARM_TRIPLE = "aarch64-linux-gnu"
# ARMv8.0-A + NEON: code for it runs on every 64-bit ARM Linux machine (Raspberry Pi 4,
# AWS Graviton, Ampere, ...); pick a newer core with --cpu for its extra instructions
ARM_DEFAULT_CPU = "cortex-a72"
ARM_DEFAULT_THREADS = 4  # a scheduling hint only (parallelize or not): the runtime uses the cores it finds
ARM_CC_ENV = "GRAPHC_ARM_CC"  # overrides the cross compiler used to link ARM artifacts
ARM_CC_DEFAULT = "aarch64-linux-gnu-gcc"
ARM_CC_PACKAGE = "gcc-aarch64-linux-gnu"
# LLVM CPU features the generated code may use -> the Linux HWCAP name that says a CPU has it
_LLVM_TO_HWCAP = {
    "fp-armv8": "fp", "neon": "asimd", "fullfp16": "asimdhp", "dotprod": "asimddp", "lse": "atomics",
    "rcpc": "lrcpc", "sve": "sve", "sve2": "sve2", "i8mm": "i8mm", "bf16": "bf16",
}
# bit positions in AT_HWCAP / AT_HWCAP2 (linux arch/arm64/include/uapi/asm/hwcap.h)
_HWCAP_BITS = {"fp": 0, "asimd": 1, "atomics": 8, "fphp": 9, "asimdhp": 10, "lrcpc": 15, "asimddp": 20, "sve": 22}
_HWCAP2_BITS = {"sve2": 1, "i8mm": 13, "bf16": 14}


def arm_cross_compiler() -> str:
    """Path of the aarch64 cross compiler, or a TargetError saying what to install."""
    import shutil

    cc = os.environ.get(ARM_CC_ENV) or ARM_CC_DEFAULT
    found = shutil.which(cc)
    if found is None:
        raise TargetError(
            f"--target arm links with the aarch64 cross compiler {cc!r}, which is not installed: "
            f"install it with `apt-get install {ARM_CC_PACKAGE}` (Debian/Ubuntu), "
            f"or set {ARM_CC_ENV} to an aarch64 Linux gcc"
        )
    return found


def arm(cpu: str | None = None, num_threads: int | None = None) -> Target:
    """aarch64 Linux with NEON (128-bit vectors) for core `cpu` (an LLVM AArch64 CPU name)."""
    import tvm
    from tvm.target import codegen

    cpu = cpu or ARM_DEFAULT_CPU
    probe = tvm.target.Target({"kind": "llvm", "mtriple": ARM_TRIPLE})
    known = sorted(str(c) for c in codegen.llvm_get_cpu_archlist(probe))
    if cpu not in known:
        raise TargetError(f"--cpu {cpu!r} is not an AArch64 core LLVM knows; choose one of: {', '.join(known)}")
    arm_cross_compiler()  # fail now, not after compiling every kernel
    llvm = tvm.target.Target({"kind": "llvm", "mtriple": ARM_TRIPLE, "mcpu": cpu})
    feats = {str(f) for f in codegen.llvm_get_cpu_features(llvm)}
    needs = tuple(sorted({hw for f, hw in _LLVM_TO_HWCAP.items() if f in feats}))
    if "asimd" not in needs:
        raise TargetError(f"--cpu {cpu!r} has no NEON (Advanced SIMD), which graphc's ARM kernels use")
    return Target("arm", ARM_TRIPLE, cpu, 128, num_threads or ARM_DEFAULT_THREADS, needs)


def arm_hwcaps() -> set[str]:
    """The CPU features the kernel grants this process (AT_HWCAP/AT_HWCAP2 from /proc/self/auxv:
    unlike /proc/cpuinfo, qemu-user emulates it)."""
    import struct

    try:
        with open("/proc/self/auxv", "rb") as f:
            aux = dict(struct.iter_unpack("<QQ", f.read()))
    except (OSError, struct.error):
        return {"fp", "asimd"}  # not Linux-like: assume the ARMv8.0 baseline
    hw, hw2 = aux.get(16, 0), aux.get(26, 0)  # AT_HWCAP, AT_HWCAP2
    return {n for n, b in _HWCAP_BITS.items() if hw >> b & 1} | {n for n, b in _HWCAP2_BITS.items() if hw2 >> b & 1}


def check_arm_loadable(target: Target) -> None:
    machine = platform.machine()
    if machine not in ("aarch64", "arm64"):
        raise TargetError(
            f"artifact was compiled for aarch64 ({target.mcpu}); this machine is {machine}: "
            "run it on a 64-bit ARM Linux machine (or under qemu-aarch64)"
        )
    missing = [f for f in target.features if f not in arm_hwcaps()]
    if missing:
        raise TargetError(
            f"artifact was compiled for {target.mcpu} and needs CPU features {', '.join(missing)}, "
            f"which this machine lacks; recompile it with --cpu naming this machine's core (or {ARM_DEFAULT_CPU})"
        )


# ---------------------------------------------------------------------------------------
# cuda: NVIDIA GPUs; device code by nvcc, host code (kernel launches, the VM) x86-64 LLVM
# ---------------------------------------------------------------------------------------
CUDA_ARCHS = ("sm_80", "sm_86", "sm_89", "sm_90")  # Ampere, Ada, Hopper: what CUDA 13's nvcc builds
CUDA_DEFAULT_ARCH = "sm_90"
CUDA_HOST_CPU = "x86-64"  # the GPU box's CPU is not this one: host code for any x86-64
CUDA_SHARED_BYTES = 48 * 1024  # shared memory a block may use without opting in, on every arch above
NVCC_ENV = "GRAPHC_NVCC"  # overrides the nvcc used to compile device code


def find_nvcc() -> str:
    """Path of nvcc, or a TargetError saying what to install."""
    import shutil

    nvcc = os.environ.get(NVCC_ENV) or shutil.which("nvcc") or ("/usr/local/cuda/bin/nvcc" if os.path.exists("/usr/local/cuda/bin/nvcc") else None)
    if nvcc is None:
        raise TargetError(
            "--target cuda compiles device code with nvcc, which is not installed: install the NVIDIA CUDA "
            f"Toolkit 12.x or 13.x (https://developer.nvidia.com/cuda-downloads, or `apt-get install cuda-toolkit`) "
            f"and put its bin/ on PATH, or set {NVCC_ENV} to nvcc's path"
        )
    return nvcc


def cuda(arch: str | None = None) -> Target:
    """An NVIDIA GPU of architecture `arch` (sm_XY), with x86-64 host code."""
    arch = arch or CUDA_DEFAULT_ARCH
    if arch not in CUDA_ARCHS:
        raise TargetError(f"--arch {arch!r} is not a supported GPU architecture; choose one of: {', '.join(CUDA_ARCHS)}")
    find_nvcc()  # fail now, not after scheduling every kernel
    return Target("cuda", "x86_64-linux-gnu", CUDA_HOST_CPU, 128, 1, (), arch)


def cuda_tvm_target(target: Target) -> dict:
    return {
        "kind": "cuda",
        "arch": target.arch,
        "max_shared_memory_per_block": CUDA_SHARED_BYTES,
        "max_threads_per_block": 1024,
        "thread_warp_size": 32,
        "host": {"kind": "llvm", "mtriple": target.mtriple, "mcpu": target.mcpu},
    }


def check_cuda_loadable(target: Target) -> None:
    machine = platform.machine()
    if machine not in ("x86_64", "AMD64"):
        raise TargetError(f"artifact was compiled for an NVIDIA GPU with an x86-64 host; this machine is {machine}")
    from .runtime.devices import check_cuda_device

    check_cuda_device(target.arch)
