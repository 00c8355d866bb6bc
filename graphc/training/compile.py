"""compile_train: a model, a loss and an optimizer -> one compiled train step (and its eval function).

The step graph and the eval graph (graphc.training.graph) go through the normal
pass pipeline; codegen builds each into a Relax function (``main`` and ``eval``)
of ONE module, compiled once into one artifact that `graphc.runtime.train` runs.
"""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from typing import Any, Collection, Sequence

import numpy as np

from ..ir import Graph
from ..targets import Target, resolve
from .graph import TrainGraphs, build_train_graph
from .losses import parse_loss
from .optimizers import parse_optimizer


@dataclass
class TrainStep:
    """A compiled train step: `session()` runs it here, `save(path)` writes the artifact."""

    graphs: TrainGraphs  # as built (before the pass pipeline)
    step_graph: Graph  # optimized
    eval_graph: Graph  # optimized
    target: Target
    executable: Any  # tvm VMExecutable with functions main and eval
    build: Any  # codegen.module.ModuleBuild of both functions
    eval_consts: list[np.ndarray]
    timings: dict[str, float] = field(default_factory=dict)
    report: Any = None  # the step graph's PipelineReport

    @property
    def layout(self):
        return self.graphs.layout

    def _layout(self):
        return dataclasses.replace(self.graphs.layout, n_main_consts=len(self.build.param_values), n_eval_consts=len(self.eval_consts))

    def artifact(self):
        from ..compiler import CompiledModel
        from ..runtime.artifact import TensorSpec
        from ..runtime.train import ARTIFACT_KIND

        art = CompiledModel(self.step_graph, self.target, self.executable, self.build, self.timings, self.report).artifact()
        layout = self._layout()
        eval_params = [(TensorSpec(f"eval:const{i}", _dtype(a), a.shape), a) for i, a in enumerate(self.eval_consts)]
        init = [(p, np.asarray(self.graphs.params[p.name])) for p in layout.params]
        meta = {**art.meta, "kind": ARTIFACT_KIND, "train": layout.to_json()}
        return dataclasses.replace(art, params=art.params + eval_params + init, meta=meta)

    def save(self, path: str) -> str:
        from ..runtime.artifact import write_artifact

        write_artifact(path, self.artifact())
        return path

    def session(self, device: str = "cpu"):
        from ..runtime.train import TrainSession

        exe = self.executable.mod if hasattr(self.executable, "mod") else self.executable
        sess = TrainSession(exe, self._layout(), self.build.param_values, self.eval_consts, self.graphs.params, self.target, device)
        sess.compiled = self
        return sess


def _dtype(a) -> str:
    from .. import dtypes

    return dtypes.from_numpy(a.dtype)


def _torch_parameter_names(model) -> set[str] | None:
    """A torch module's trainable parameters (its buffers and frozen weights are constants)."""
    from ..compiler import _is_torch_model

    if not _is_torch_model(model) or not hasattr(model, "named_parameters"):
        return None
    return {n for n, p in model.named_parameters() if p.requires_grad}


def compile_train_step(
    model,
    loss: Any = "cross_entropy",
    optimizer: Any = "sgd",
    target: "str | Target" = "x86",
    *,
    example_inputs=None,
    input_shapes: dict | None = None,
    targets: Sequence[Any] = (),
    trainable: Collection[str] | None = None,
    frozen: Collection[str] = (),
    opt_level: int = 2,
    verify_numerics: bool = False,
    log=print,
) -> TrainStep:
    """Compile one train step; see `compile_train` for the arguments."""
    from ..codegen.module import ModuleBuild, build_relax_module, compile_module
    from ..compiler import to_graph
    from ..passes.pipeline import optimize

    t0 = time.perf_counter()
    tgt = resolve(target)
    loss_fn, opt = parse_loss(loss, targets), parse_optimizer(optimizer)
    forward = to_graph(model, input_shapes, example_inputs)
    only = set(trainable) if trainable is not None else _torch_parameter_names(model)
    graphs = build_train_graph(forward, loss_fn, opt, only=only, frozen=frozen)
    timings = {"build_graph": time.perf_counter() - t0}
    t1 = time.perf_counter()
    step_graph, report = optimize(graphs.step, opt_level, verify_numerics=verify_numerics, log=log)
    eval_graph, _ = optimize(graphs.eval, opt_level, log=log)
    timings["passes"] = time.perf_counter() - t1
    step_build = build_relax_module(step_graph, tgt)
    eval_build = build_relax_module(eval_graph, tgt, func_name="eval", kernel_prefix="eval_")
    mod = step_build.mod
    mod.update(eval_build.mod)
    seconds = {k: step_build.seconds[k] + eval_build.seconds[k] for k in step_build.seconds}
    build = ModuleBuild(mod, step_build.input_names, step_build.param_names, step_build.param_values,
                        step_build.kernels + eval_build.kernels, seconds)
    executable = compile_module(build, tgt)
    timings.update({f"codegen_{k}": v for k, v in build.seconds.items()})
    timings["total"] = time.perf_counter() - t0
    return TrainStep(graphs, step_graph, eval_graph, tgt, executable, build, list(eval_build.param_values), timings, report)


def compile_train(model, loss: Any = "cross_entropy", optimizer: Any = "sgd", target: "str | Target" = "x86", *,
                  device: str = "cpu", **options):
    """Compile a train step for `model` and return a ready `graphc.runtime.TrainSession`.

    model: a Graph (graphc.trace, from_onnx...), an ONNX file/proto or a torch module
        (with example_inputs=); its named float weights the loss depends on train
        (a torch module's parameters; restrict with trainable=, exclude with frozen=).
    loss: "cross_entropy[:label_smoothing=..,ignore_index=..]", "mse", a
        graphc.training Loss, or a function of (*outputs, *targets) returning a 0-d
        tensor (give its targets' types with targets=[...]).
    optimizer: "sgd[:lr=..,momentum=..,nesterov=..,weight_decay=..,dampening=..]",
        "adam[:lr=..,betas=b1/b2,eps=..,weight_decay=..]", "adamw[:...]", or an
        SGD/Adam/AdamW instance.
    Other options: example_inputs, input_shapes, targets, trainable, frozen,
    opt_level, verify_numerics, log.
    """
    return compile_train_step(model, loss, optimizer, target, **options).session(device)
