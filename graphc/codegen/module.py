"""Assembling a graph of kernels into one TVM module.

Each compute node becomes one scheduled PrimFunc (identical kernels, e.g. the 12
layers of BERT, are compiled once); a Relax ``main`` calls them with ``call_tir``
so TVM's VM and its static memory planner do the executing. Pure reshapes
(reshape/flatten/squeeze/unsqueeze on their own) become Relax reshapes, which the
VM turns into zero-copy views. Constants become trailing ``main`` parameters,
uploaded once by the session.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import tvm
import tvm_ffi
from tvm import relax

from .. import dtypes
from ..errors import CompileError
from ..ir import Graph, Value
from ..targets import Target
from .kernels import template_kernel
from .lower import Kernel, lower_kernel
from .policy import is_inline_const
from .schedule import schedule_kernel

VIEW_OPS = ("reshape", "flatten", "squeeze", "unsqueeze")


@dataclass
class KernelInfo:
    name: str
    label: str
    notes: list[str]
    uses: int = 1


@dataclass
class ModuleBuild:
    mod: tvm.IRModule
    input_names: list[str]
    param_names: list[str]
    param_values: list[np.ndarray]
    kernels: list[KernelInfo] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)


def _sinfo(v: Value) -> relax.TensorType:
    return relax.TensorType(list(v.shape), dtypes.to_tvm(v.dtype))


def build_relax_module(
    graph: Graph, target: Target, func_name: str = "main", kernel_prefix: str = "", tuned=None
) -> ModuleBuild:
    """`graph` as the Relax function `func_name`; a `kernel_prefix` keeps kernel names unique when
    modules built for several graphs are merged into one (a train step and its eval function).
    `tuned(unscheduled PrimFunc) -> (scheduled PrimFunc, note or notes) | None` supplies tuned schedules
    (graphc.tuning: a tuning database's record, used where it measured faster than the rule's)."""
    t0 = time.perf_counter()
    bb = relax.BlockBuilder()
    env: dict[Value, relax.Expr] = {}
    input_vars = []
    for v in graph.inputs:
        var = relax.Var(v.name, _sinfo(v))
        env[v] = var
        input_vars.append(var)

    # constants the kernels take as arguments (scalars are baked into kernels instead)
    needed: set[Value] = set()
    for node in graph.nodes:
        if node.op == "const":
            continue
        for v in node.inputs:
            if v.is_const and (not is_inline_const(v.node.data) or node.op in VIEW_OPS):
                needed.add(v)
    needed.update(v for v in graph.outputs if v.is_const)
    param_vals: list[Value] = [n.outputs[0] for n in graph.nodes if n.op == "const" and n.outputs[0] in needed]
    param_vars = []
    param_names = []
    for i, v in enumerate(param_vals):
        name = v.name or f"param{i}"
        var = relax.Var(f"p{i}", _sinfo(v))
        env[v] = var
        param_vars.append(var)
        param_names.append(name)

    kernels: dict[tuple, tuple[relax.GlobalVar, KernelInfo]] = {}
    infos: list[KernelInfo] = []
    t_lower = t_sched = 0.0
    with bb.function(func_name, input_vars + param_vars):
        with bb.dataflow():
            for idx, node in enumerate(graph.nodes):
                if node.op == "const":
                    continue
                if node.op in VIEW_OPS:
                    out = node.outputs[0]
                    env[out] = bb.emit(relax.op.reshape(env[node.inputs[0]], list(out.shape)))
                    continue
                ta = time.perf_counter()
                name = f"{kernel_prefix}k{len(infos)}_{_ident(node)}"
                template = template_kernel(node, target)
                if template is not None:
                    func, note = template
                    func = func.with_attr("global_symbol", name)
                    kernel = Kernel(func, list(node.inputs), list(node.outputs), f"fused[{node.kind}]")
                    notes = [note]
                    tb = time.perf_counter()
                else:
                    kernel = lower_kernel(node, name)
                    tb = time.perf_counter()
                    hit_tuned = tuned(kernel.func) if tuned is not None else None
                    if hit_tuned is not None:  # (func, a note or the notes of graphc's rules run with tuned knobs)
                        note = hit_tuned[1]
                        func, notes = hit_tuned[0].with_attr("global_symbol", name), [note] if isinstance(note, str) else list(note)
                    else:
                        func, notes = schedule_kernel(kernel, target)
                t_lower += tb - ta
                t_sched += time.perf_counter() - tb
                key = (tvm_ffi.structural_hash(func.without_attr("global_symbol")),)
                hit = kernels.get(key)
                if hit is not None and tvm_ffi.structural_equal(
                    hit[0].func.without_attr("global_symbol"), func.without_attr("global_symbol")
                ):
                    gv, info = hit[0].gv, hit[1]
                    info.uses += 1
                else:
                    name = str(func.attrs["global_symbol"])
                    gv = bb.add_func(func, name)
                    info = KernelInfo(name, kernel.label, notes)
                    infos.append(info)
                    kernels[key] = (_Entry(gv, func), info)
                args = []
                for v in kernel.args:
                    if v not in env and v.is_const:  # a scalar a template kernel takes as an argument
                        env[v] = relax.const(v.node.data)
                    if v not in env:
                        raise CompileError(f"kernel {info.name}: argument {v} has no value (graph not topologically sorted?)")
                    args.append(env[v])
                out_sinfo = [_sinfo(o) for o in kernel.outputs]
                call = relax.call_tir(gv, args, out_sinfo if len(out_sinfo) > 1 else out_sinfo[0])
                res = bb.emit(call)
                if len(kernel.outputs) == 1:
                    env[kernel.outputs[0]] = res
                else:
                    for j, o in enumerate(kernel.outputs):
                        env[o] = bb.emit(relax.TupleGetItem(res, j))
            outs = [env[v] for v in graph.outputs]
            result = bb.emit_output(relax.Tuple(outs))
        bb.emit_func_output(result)
    mod = bb.get()
    return ModuleBuild(
        mod,
        [v.name for v in graph.inputs],
        param_names,
        [v.node.data for v in param_vals],
        infos,
        {"lower": t_lower, "schedule": t_sched, "assemble": time.perf_counter() - t0 - t_lower - t_sched},
    )


@dataclass
class _Entry:
    gv: relax.GlobalVar
    func: object


def _ident(node) -> str:
    label = node.kind if node.op == "fused" else node.op
    return "".join(c if c.isalnum() else "_" for c in str(label))


def compile_module(build: ModuleBuild, target: Target):
    """Relax module -> VM executable (LLVM codegen happens here)."""
    t0 = time.perf_counter()
    try:
        options = {}
        if target.kind == "cuda":  # graphc's kernels are fused and scheduled already: no TVM re-fusion
            from .cuda_build import relax_pipeline

            options["relax_pipeline"] = relax_pipeline()
        ex = relax.build(build.mod, target.tvm_target(), **options)
    except Exception as e:
        raise CompileError(f"TVM failed to build the module for {target.describe()}: {type(e).__name__}: {str(e)[:2000]}") from e
    build.seconds["tvm_build"] = time.perf_counter() - t0
    if target.kind == "cuda":  # nvcc now: its errors belong to compiling (export reuses the fatbins)
        from .cuda_build import compile_device_code

        t1 = time.perf_counter()
        compile_device_code(ex.mod, target.arch)
        build.seconds["nvcc"] = time.perf_counter() - t1
    return ex
