"""Run GPU-scheduled kernels on the CPU, to check their numerics where no GPU is.

`serialize(func)` turns a CUDA-scheduled PrimFunc into one LLVM can build: every loop bound
to blockIdx/threadIdx becomes a serial loop and every shared/local buffer ordinary memory.
That is the same computation whenever threads communicate only through barrier-separated
phases, which is how graphc's GPU schedules and kernels are built: a cooperative copy into
shared memory nested under a thread loop then copies the whole tile for each serialized
thread (redundant, same values), and sibling thread loops (copy, then compute; conv tile,
then pool) run one after the other. What it cannot see: data races, missing barriers,
shared-memory limits, warp-level code — those need a GPU (scripts/gpu/run_on_gpu.py).

`emulated_module(build)` applies it to every kernel of a `codegen.module.ModuleBuild`, so a
whole model scheduled for CUDA runs on the CPU through the same Relax `main`.
"""
from __future__ import annotations

import re

_THREAD_LOOP = re.compile(r"T\.thread_binding\(([^()]*(?:\([^()]*\)[^()]*)*?),\s*thread=\"[\w.]+\"\)")
_SCOPE = re.compile(r',\s*scope="(?:shared|local|shared\.dyn)"')


def serialize(func):
    """The PrimFunc with thread bindings serial and GPU memory scopes global (via TVMScript text)."""
    from tvm.script import from_source

    text = func.script()
    text = _THREAD_LOOP.sub(lambda m: f"T.serial({m.group(1)})", text)
    text = _SCOPE.sub("", text)
    out = from_source(text)
    return out if not hasattr(out, "functions") else next(iter(out.functions.values()))


def emulated_module(build):
    """The build's IRModule with every PrimFunc serialized (build: graphc.codegen.module.ModuleBuild)."""
    import tvm
    from tvm import tirx

    funcs = {}
    for gv, f in build.mod.functions.items():
        if isinstance(f, tirx.PrimFunc):
            f = serialize(f).with_attr("global_symbol", gv.name_hint)
        funcs[gv] = f
    return tvm.IRModule(funcs)
