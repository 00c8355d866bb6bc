"""compile(model, target, ...) -> CompiledModel: the one orchestration point.

model (Graph, ONNX file/proto) -> graphc IR -> pass pipeline -> kernels + Relax
module -> TVM build -> artifact (in memory; `.save(path)` writes the one file).
"""
from __future__ import annotations

import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any

from . import __version__
from .errors import FrontendError
from .ir import Graph
from .targets import Target, resolve


@dataclass
class CompiledModel:
    graph: Graph  # the optimized graph that was compiled
    target: Target
    executable: Any  # tvm VMExecutable
    build: Any  # codegen.module.ModuleBuild
    timings: dict[str, float] = field(default_factory=dict)
    pipeline_report: Any = None

    def artifact(self):
        from .runtime.artifact import ArtifactData, TensorSpec

        with tempfile.TemporaryDirectory(prefix="graphc-") as tmp:
            lib_path = os.path.join(tmp, "lib.so")
            self.executable.export_library(lib_path, **self.target.export_options())
            with open(lib_path, "rb") as f:
                lib = f.read()
        g = self.graph
        return ArtifactData(
            target=self.target.to_json(),
            inputs=[TensorSpec(v.name, v.dtype, v.shape) for v in g.inputs],
            outputs=[TensorSpec(g.output_name(i), v.dtype, v.shape) for i, v in enumerate(g.outputs)],
            lib=lib,
            params=[(TensorSpec(n, _dtype_name(a), a.shape), a) for n, a in zip(self.build.param_names, self.build.param_values)],
            meta={
                "graph": g.name,
                "kernels": [{"name": k.name, "label": k.label, "uses": k.uses, "notes": k.notes} for k in self.build.kernels],
                "timings_s": self.timings,
            },
            graphc_version=__version__,
        )

    def save(self, path: str) -> str:
        from .runtime.artifact import write_artifact

        write_artifact(path, self.artifact())
        return path

    def session(self, device: str | None = None):
        """Run in this process, straight from the in-memory executable."""
        from .runtime.artifact import TensorSpec
        from .runtime.session import Session, session_from_artifact

        if self.target.kind == "cuda":  # in memory the device code is CUDA source; the artifact has nvcc's binaries
            return session_from_artifact(self.artifact(), device)
        g = self.graph
        return Session(
            self.executable.mod if hasattr(self.executable, "mod") else self.executable,
            [TensorSpec(v.name, v.dtype, v.shape) for v in g.inputs],
            [TensorSpec(g.output_name(i), v.dtype, v.shape) for i, v in enumerate(g.outputs)],
            self.build.param_values,
            self.target,
            device,
        )


def _dtype_name(a) -> str:
    from . import dtypes

    return dtypes.from_numpy(a.dtype)


def to_graph(model, input_shapes: dict | None = None, example_inputs=None) -> Graph:
    """Accept a Graph, an ONNX path, an ONNX ModelProto, or a torch module with its example inputs."""
    if isinstance(model, Graph):
        return model
    if _is_torch_model(model):
        from .frontends.torch import from_torch

        if example_inputs is None:
            raise FrontendError(f"compiling a torch {type(model).__name__} needs example_inputs=(...) to trace it with")
        return from_torch(model, example_inputs)
    if isinstance(model, (str, os.PathLike)):
        path = os.fspath(model)
        if path.endswith(".onnx"):
            from .frontends.onnx import from_onnx

            return from_onnx(path, input_shapes=input_shapes)
        raise FrontendError(f"{path}: unknown model format (expected a .onnx file)")
    if type(model).__name__ == "ModelProto":
        from .frontends.onnx import from_onnx

        return from_onnx(model, input_shapes=input_shapes)
    raise FrontendError(f"cannot compile a {type(model).__name__}: pass a graphc Graph, an ONNX model or a torch module")


def _is_torch_model(model) -> bool:
    """A torch.nn.Module or ExportedProgram (checked without importing torch: graphc works without it)."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(model, (torch.nn.Module, torch.export.ExportedProgram))


def compile(  # noqa: A001 - the product's verb
    model,
    target: "str | Target" = "x86",
    *,
    opt_level: int = 2,
    input_shapes: dict | None = None,
    example_inputs=None,
    verify_numerics: bool = False,
    print_after: tuple[str, ...] = (),
    dump_ir: str | None = None,
    log=print,
    tuning: "str | bool | None" = None,
) -> CompiledModel:
    """Compile a model for a target. See `graphc compile --help` for the options.

    `tuning`: None uses the target's default tuning database when one exists (`graphc tune`),
    a path uses that database, False uses graphc's schedule rules only."""
    from .codegen.module import build_relax_module, compile_module
    from .passes.pipeline import optimize

    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    tgt = resolve(target)
    graph = to_graph(model, input_shapes, example_inputs)
    timings["import"] = time.perf_counter() - t0
    t1 = time.perf_counter()
    graph, report = optimize(
        graph, opt_level, print_after=tuple(print_after), dump_dir=dump_ir, verify_numerics=verify_numerics, log=log
    )
    if opt_level >= 2:  # constant weights packed into the layouts the target's kernels read
        from .passes.fuse_dense_chain import fuse_dense_chains
        from .passes.layout import CPU_TARGET_KINDS, layout_for_target

        graph = layout_for_target(graph, tgt)
        if tgt.kind in CPU_TARGET_KINDS:  # back-to-back GEMMs, on the packed weights
            graph = fuse_dense_chains(graph)
    timings["passes"] = time.perf_counter() - t1
    from .tuning.database import open_database

    tuning_db = open_database(tuning, tgt) if tgt.kind != "cuda" else None  # MetaSchedule tuning: CPU targets
    build = build_relax_module(graph, tgt, tuned=tuning_db.lookup if tuning_db is not None else None)
    executable = compile_module(build, tgt)
    timings.update({f"codegen_{k}": v for k, v in build.seconds.items()})
    timings["total"] = time.perf_counter() - t0
    return CompiledModel(graph, tgt, executable, build, timings, report)
