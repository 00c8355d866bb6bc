"""The train step as one graph: forward, loss, backward (autodiff) and optimizer update.

    build_train_graph(forward, loss, optimizer) -> TrainGraphs(step, eval, layout, params)

`forward` is the model's graph with its weights as named constants (what
graphc.trace, from_torch and from_onnx produce). The trainable parameters are the
named float constants the loss depends on (optionally restricted); they become
inputs. The step graph takes ``(*data, *targets, *params, *state, lr, step)`` and
returns ``(loss, *new_params, *new_state)`` (see graphc.runtime.train); the eval
graph is the forward with the parameters as inputs. Both are then compiled with the
normal pass pipeline and codegen.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Collection

import numpy as np

from ..ir import Graph, GraphBuilder, TensorType, Value
from ..passes.autodiff import differentiable_inputs, emit_graph, grad
from ..passes.lift_params import lift_params, param_values
from ..runtime.artifact import TensorSpec
from ..runtime.train import TrainLayout
from ..tensor import Tensor
from .losses import Loss, TrainError


@dataclass
class TrainGraphs:
    step: Graph  # (*data, *targets, *params, *state, lr, step) -> (loss, *new_params, *new_state)
    eval: Graph  # (*data, *params) -> the model's outputs
    layout: TrainLayout
    params: dict[str, np.ndarray]  # initial values of the trainable parameters


def _spec(v: Value, name: str | None = None) -> TensorSpec:
    return TensorSpec(name or v.name, v.dtype, v.shape)


def _free_name(name: str, taken: set[str]) -> str:
    while name in taken:
        name = f"{name}_"
    taken.add(name)
    return name


def _loss_graph(forward: Graph, loss: Loss, names: list[str]) -> tuple[Graph, list[str]]:
    """(*data, *targets, *params) -> loss, with `names` lifted from constants to inputs."""
    lifted = lift_params(forward, set(names))
    n_data = len(forward.inputs)
    params = lifted.inputs[n_data:]
    taken = {v.name for v in lifted.inputs}
    target_types = loss.target_types([v.type for v in forward.outputs])
    target_names = [_free_name("target" if len(target_types) == 1 else f"target{i}", taken) for i in range(len(target_types))]
    b = GraphBuilder(f"{forward.name}_loss")
    data = [b.input(v.name, v.type) for v in lifted.inputs[:n_data]]
    targets = [b.input(n, t) for n, t in zip(target_names, target_types)]
    pins = [b.input(v.name, v.type) for v in params]
    with b:
        outputs = [Tensor(v) for v in emit_graph(b, lifted, data + pins)]
        value = loss(outputs, [Tensor(t) for t in targets])
    return b.build([value.value], ["loss"]), target_names


def trainable_names(forward: Graph, loss: Loss, only: Collection[str] | None = None, frozen: Collection[str] = ()) -> list[str]:
    """Named float constants of `forward` the loss depends on (within `only`, minus `frozen`), in graph order."""
    values = param_values(forward)
    candidates = [n for n, a in values.items() if a.dtype.kind == "f" and n not in frozen and (only is None or n in only)]
    if only is not None:
        unknown = sorted(set(only) - set(values))
        if unknown:
            raise TrainError(f"trainable parameter(s) {', '.join(unknown)} are not named weights of the model")
    loss_graph, _ = _loss_graph(forward, loss, candidates)
    connected = set(differentiable_inputs(loss_graph))
    return [n for n in candidates if n in connected]


def build_train_graph(forward: Graph, loss: Loss, optimizer, *, only: Collection[str] | None = None, frozen: Collection[str] = ()) -> TrainGraphs:
    names = trainable_names(forward, loss, only, frozen)
    if not names:
        raise TrainError(f"the loss of @{forward.name} depends on no trainable weight (named float constants: "
                         f"{', '.join(n for n, a in param_values(forward).items() if a.dtype.kind == 'f') or 'none'})")
    loss_graph, target_names = _loss_graph(forward, loss, names)
    n_data, n_targets = len(forward.inputs), len(target_names)
    with_grads = grad(loss_graph, wrt=names)
    values = param_values(forward)
    slots = optimizer.slots()

    b = GraphBuilder(f"{forward.name}_train_step")
    data = [b.input(v.name, v.type) for v in loss_graph.inputs[: n_data + n_targets]]
    params = [b.input(v.name, v.type) for v in loss_graph.inputs[n_data + n_targets :]]
    taken = {v.name for v in data + params}
    state = [[b.input(_free_name(f"{p.name}:{s}", taken), p.type) for s in slots] for p in params]
    lr = b.input(_free_name("lr", taken), TensorType("f32", ()))
    step = b.input(_free_name("step", taken), TensorType("i64", ()))
    with b:
        loss_value, *grads = emit_graph(b, with_grads, data + params)
        new_params, new_state = [], []
        for p, g, st in zip(params, grads, state):
            rate = Tensor(lr) if p.dtype == "f32" else Tensor(lr).astype(p.dtype)
            p_new, *st_new = optimizer.update(Tensor(p), Tensor(g), rate, Tensor(step), *[Tensor(s) for s in st])
            new_params.append(p_new.value)
            new_state.extend(t.value for t in st_new)
    out_names = ["loss"] + [p.name for p in params] + [v.name for st in state for v in st]
    step_graph = b.build([loss_value, *new_params, *new_state], out_names)

    eval_graph = lift_params(forward, set(names))
    layout = TrainLayout(
        data=[_spec(v) for v in forward.inputs],
        targets=[_spec(v) for v in loss_graph.inputs[n_data : n_data + n_targets]],
        params=[_spec(v) for v in params],
        slots=list(slots),
        eval_outputs=[_spec(v, forward.output_name(i)) for i, v in enumerate(forward.outputs)],
        optimizer=optimizer.to_json(),
        loss=loss.to_json(),
    )
    return TrainGraphs(step_graph, eval_graph, layout, {n: np.asarray(values[n]) for n in names})

