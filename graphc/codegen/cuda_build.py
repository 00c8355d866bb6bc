"""CUDA device code: nvcc-compiled fatbins inside the exported library.

TVM 0.27 keeps a CUDA module's device code as CUDA *source* and compiles it when the
library is loaded (NVRTC via a Python callback), which a deployment box may not have,
and which would move every compile error to load time. graphc compiles the source with
nvcc at compile time instead (`compile_device_code`; one nvcc run per module, all
kernels in it) and, when exporting, rewrites each CUDA module's serialized form from
``fmt="cuda"`` + source to ``fmt="fatbin"`` + the binary (`pack_imports_with_fatbins`),
which TVM's CUDA runtime loads with cuModuleLoadData and no compiler.

The fatbin holds SASS for the target architecture and its PTX, so an sm_80 artifact also
runs on newer GPUs (the driver JIT-compiles the PTX once).

The serialized library blob (``__tvm_ffi__library_bin``, written by TVM's
ModulePackImportsToC) is: u64 byte count; the import tree as two u64 vectors; then per
module its kind (u64-length string) and, except for the host library ``_lib``, a
u64-length payload. A CUDA payload is fmt string, function table, data string, in that
order; only fmt and data change.
"""
from __future__ import annotations

import hashlib
import os
import re
import struct
import subprocess
import tempfile
import threading

from ..errors import CompileError
from ..targets import find_nvcc

# TVM's own nvcc flags (tvm.support.nvcc) minus --use_fast_math: graphc's kernels are checked
# against numpy at 1e-5, and fast math flushes denormals and approximates division/sqrt
NVCC_FLAGS = [
    "-O3",
    "-U__CUDA_NO_HALF_OPERATORS__",
    "-U__CUDA_NO_HALF_CONVERSIONS__",
    "-U__CUDA_NO_BFLOAT16_OPERATORS__",
    "-U__CUDA_NO_BFLOAT16_CONVERSIONS__",
    "-U__CUDA_NO_BFLOAT162_OPERATORS__",
    "-U__CUDA_NO_BFLOAT162_CONVERSIONS__",
    "--expt-relaxed-constexpr",
    "--expt-extended-lambda",
]

_CACHE: dict[str, bytes] = {}  # sha256(arch + source) -> fatbin, for this process
_LOCK = threading.Lock()


def relax_pipeline():
    """relax.build's pipeline for graphc's CUDA modules: TVM's generic one plus DLight's fallback for
    the few PrimFuncs TVM itself legalizes (reshapes it does not turn into views). Not TVM's CUDA
    default: that one re-fuses graphc's already-fused, already-scheduled kernels (FuseOps/FuseTIR),
    which breaks on kernels that read one buffer through two views."""
    import tvm
    from tvm import relax
    from tvm.s_tir import dlight as dl

    return tvm.transform.Sequential(
        [
            relax.transform.LegalizeOps(),
            dl.ApplyDefaultSchedule(dl.gpu.Fallback()),  # skips kernels marked tirx.is_scheduled
            relax.pipeline.default_build_pipeline(),
        ]
    )


def cuda_sources(module) -> list[str]:
    """The CUDA source of every CUDA module in a TVM runtime module's import tree."""
    out, stack, seen = [], [module], set()
    while stack:
        m = stack.pop()
        if id(m) in seen:
            continue
        seen.add(id(m))
        if m.kind == "cuda":
            out.append(m.inspect_source())
        stack.extend(m.imports)
    return out


def _kernel_at(source: str, line: int) -> str:
    """Name of the __global__ function that contains `line` (1-based) of the source."""
    name = "?"
    for i, text in enumerate(source.splitlines()[:line], 1):
        m = re.search(r"__global__\s+void\s+(?:__launch_bounds__\(\d+\)\s+)?(\w+)\(", text)
        if m:
            name = m.group(1)
    return name


def compile_fatbin(source: str, arch: str) -> bytes:
    """nvcc `source` into a fatbin (SASS for `arch` + PTX); cached per source."""
    key = hashlib.sha256((arch + "\0" + source).encode()).hexdigest()
    with _LOCK:
        if key in _CACHE:
            return _CACHE[key]
    nvcc = find_nvcc()
    cc = arch.removeprefix("sm_")
    with tempfile.TemporaryDirectory(prefix="graphc-nvcc-") as tmp:
        src, out = os.path.join(tmp, "kernels.cu"), os.path.join(tmp, "kernels.fatbin")
        with open(src, "w") as f:
            f.write(source)
        cmd = [nvcc, "--fatbin", f"-gencode=arch=compute_{cc},code=[sm_{cc},compute_{cc}]", *NVCC_FLAGS, "-o", out, src]
        res = subprocess.run(cmd, capture_output=True, text=True)
        if res.returncode != 0:
            log = (res.stdout + res.stderr).strip()
            # the errors, not the warnings that precede them
            errors = [ln for ln in log.splitlines() if " error" in ln or ln.startswith("error")]
            log = "\n".join(errors) if errors else log
            m = re.search(r"kernels\.cu\((\d+)\): (?:catastrophic )?error", log) or re.search(r"kernels\.cu\((\d+)\)", log)
            where = f" in kernel {_kernel_at(source, int(m.group(1)))}" if m else ""
            raise CompileError(f"nvcc failed to compile the generated CUDA code{where} for {arch}:\n{log[:3000]}")
        with open(out, "rb") as f:
            fatbin = f.read()
    with _LOCK:
        _CACHE[key] = fatbin
    return fatbin


def compile_device_code(module, arch: str) -> list[bytes]:
    """Compile every CUDA module of a built TVM module now (errors at compile time, not at load)."""
    return [compile_fatbin(src, arch) for src in cuda_sources(module)]


# ---------------------------------------------------------------------------------------
# the serialized library blob
# ---------------------------------------------------------------------------------------
class _Reader:
    def __init__(self, data: bytes, pos: int = 0):
        self.data, self.pos = data, pos

    def u64(self) -> int:
        (v,) = struct.unpack_from("<Q", self.data, self.pos)
        self.pos += 8
        return v

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise CompileError("TVM's serialized library is not in the format graphc expects (truncated)")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def string(self) -> bytes:
        return self.take(self.u64())


def _u64(v: int) -> bytes:
    return struct.pack("<Q", v)


def _string(b: bytes) -> bytes:
    return _u64(len(b)) + b


def _cuda_payload_to_fatbin(payload: bytes, fatbins: dict[bytes, bytes]) -> bytes:
    r = _Reader(payload)
    fmt = r.string()
    if fmt != b"cuda":  # already binary
        return payload
    for src, fatbin in fatbins.items():
        tail = _string(src)
        if payload.endswith(tail):
            return _string(b"fatbin") + payload[r.pos : len(payload) - len(tail)] + _string(fatbin)
    raise CompileError("a CUDA module in the exported library has source graphc did not compile")


def patch_library_blob(blob: bytes, fatbins: dict[bytes, bytes]) -> bytes:
    """The library blob with every CUDA module's source replaced by its fatbin."""
    r = _Reader(blob)
    nbytes = r.u64()
    if nbytes != len(blob) - 8:
        raise CompileError(f"TVM's serialized library is not in the format graphc expects ({nbytes} != {len(blob) - 8})")
    head_start = r.pos
    for _ in range(2):  # import tree: row pointers, child indices
        r.take(8 * r.u64())
    body = [blob[head_start : r.pos]]
    while r.pos < len(blob):
        kind = r.string()
        body.append(_string(kind))
        if kind == b"_lib":
            continue
        payload = r.string()
        if kind == b"cuda":
            payload = _cuda_payload_to_fatbin(payload, fatbins)
        body.append(_string(payload))
    out = b"".join(body)
    return _u64(len(out)) + out


_ARRAY = re.compile(r"const unsigned char (\w+)\[(\d+)\] = \{(.*?)\};", re.S)


def pack_imports_with_fatbins(arch: str):
    """An `fpack_imports` for TVM's export_library: the imports blob, CUDA modules as fatbins,
    written as an assembler file that embeds the blob with .incbin."""

    def fpack_imports(mod, is_system_lib: bool, prefix: str, workspace_dir: str) -> str:
        from tvm.runtime import _ffi_api

        c_text = _ffi_api.ModulePackImportsToC(mod, is_system_lib, prefix)
        m = _ARRAY.search(c_text)
        if m is None:
            raise CompileError("TVM's packed imports are not in the format graphc expects (no byte array)")
        symbol = m.group(1)
        blob = bytes.fromhex(re.sub(r"0x|[,\s]", "", m.group(3)))
        if len(blob) != int(m.group(2)):
            raise CompileError("TVM's packed imports are not in the format graphc expects (array length)")
        sources = cuda_sources(mod)
        fatbins = {src.encode(): compile_fatbin(src, arch) for src in sources}
        patched = patch_library_blob(blob, fatbins)
        bin_path = os.path.join(workspace_dir, f"{prefix}devc.bin")
        with open(bin_path, "wb") as f:
            f.write(patched)
        asm_path = os.path.join(workspace_dir, f"{prefix}devc.s")
        with open(asm_path, "w") as f:
            f.write(
                f'\t.section .rodata\n\t.globl {symbol}\n\t.type {symbol}, @object\n\t.balign 16\n{symbol}:\n'
                f'\t.incbin "{bin_path}"\n\t.size {symbol}, {len(patched)}\n\t.section .note.GNU-stack,"",@progbits\n'
            )
        return asm_path

    return fpack_imports
