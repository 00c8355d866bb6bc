"""Device runtimes: making TVM's CUDA runtime available, and checking a GPU can run an artifact.

`import tvm` with the full TVM loads its CUDA runtime library (libtvm_runtime_cuda.so)
as a backend; the runtime-only TVM (TVM_USE_RUNTIME_LIB=1, what deployment boxes have)
does not, so `ensure_cuda_runtime` loads it. That library needs the NVIDIA driver
(libcuda.so.1) and the CUDA 13 runtime (libcudart.so.13); when the latter is not on the
loader path, the copy pip installs with PyTorch or `nvidia-cuda-runtime` is used.
"""
from __future__ import annotations

import ctypes
import glob
import os
import sys

from graphc.errors import TargetError

_CUDA_LOADED: list[bool] = []  # [True] once libtvm_runtime_cuda.so is loaded in this process
CUDART = "libcudart.so.13"


def _tvm():
    import tvm.runtime  # noqa: F401  (runtime only)

    return tvm


def _cuda_api_registered() -> bool:
    import tvm_ffi

    return tvm_ffi.get_global_func("device_api.cuda", allow_missing=True) is not None


def _pip_cudart() -> list[str]:
    """libcudart.so.13 from pip wheels (nvidia/cu13/lib, nvidia/cuda_runtime/lib) on sys.path."""
    found = []
    for root in sys.path:
        for pattern in ("nvidia/cu13/lib/" + CUDART, "nvidia/cuda_runtime/lib/" + CUDART):
            found += glob.glob(os.path.join(root or ".", pattern))
    return found


def ensure_cuda_runtime() -> None:
    """Load TVM's CUDA runtime library if this process does not have it yet; a TargetError says what is missing."""
    tvm = _tvm()
    if _CUDA_LOADED or _cuda_api_registered():
        _CUDA_LOADED[:] = [True]
        return
    lib_dir = os.path.join(os.path.dirname(tvm.__file__), "lib")
    lib = os.path.join(lib_dir, "libtvm_runtime_cuda.so")
    if not os.path.exists(lib):
        raise TargetError(f"this TVM installation has no CUDA runtime ({lib} is missing): install a CUDA-enabled TVM")
    try:
        ctypes.CDLL("libcuda.so.1", mode=ctypes.RTLD_GLOBAL)
    except OSError:
        raise TargetError(
            "the artifact runs on an NVIDIA GPU, but this machine has no NVIDIA driver (libcuda.so.1 not found): "
            "run it on a machine with a CUDA GPU and its driver installed"
        ) from None
    for cudart in [CUDART, *_pip_cudart()]:
        try:
            ctypes.CDLL(cudart, mode=ctypes.RTLD_GLOBAL)
            break
        except OSError:
            continue
    else:
        raise TargetError(
            f"the CUDA 13 runtime ({CUDART}) is not installed: install the CUDA 13 toolkit or "
            "`pip install nvidia-cuda-runtime` (PyTorch's CUDA 13 wheels bring it too), or add its lib/ to LD_LIBRARY_PATH"
        )
    try:
        ctypes.CDLL(lib, mode=ctypes.RTLD_GLOBAL)
    except OSError as e:
        raise TargetError(f"TVM's CUDA runtime does not load on this machine: {e}") from None
    _CUDA_LOADED[:] = [True]


def check_cuda_device(arch: str, index: int = 0) -> None:
    """A CUDA GPU `index` exists and can run code built for `arch` (sm_XY: same or newer)."""
    ensure_cuda_runtime()
    dev = _tvm().cuda(index)
    if not dev.exist:
        raise TargetError(
            f"the artifact runs on an NVIDIA GPU ({arch}), but there is no CUDA device cuda:{index} on this machine "
            "(check nvidia-smi and CUDA_VISIBLE_DEVICES)"
        )
    have = dev.compute_version  # "9.0"
    major, minor = (int(p) for p in have.split("."))
    want = int(arch.removeprefix("sm_"))
    if major * 10 + minor < want:
        raise TargetError(
            f"the artifact was compiled for {arch}, but cuda:{index} ({dev.device_name}) is sm_{major}{minor}: "
            f"recompile with --arch sm_{major}{minor}"
        )
