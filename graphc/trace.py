"""graphc's tracing frontend: run a Python function on symbolic tensors, record a graph.

    def mlp(x):
        h = gnn.relu(gnn.linear(x, w1, b1))
        return gnn.softmax(gnn.linear(h, w2, b2), dim=-1)

    graph = graphc.trace(mlp, np.zeros((64, 784), np.float32))

Example inputs give each graph input its type (a numpy array, a TensorType or a
(shape, dtype) pair); graph inputs take the function's parameter names. Numpy
arrays the function uses become constants; `graphc.param(name, array)` names
them, and `params_as_inputs=True` turns named parameters into graph inputs
(after the example inputs), e.g. for training or to swap weights at run time.
"""
from __future__ import annotations

import inspect
from typing import Any, Callable

import numpy as np

from . import dtypes
from .errors import IRError
from .ir import Graph, GraphBuilder, TensorType
from .tensor import Tensor


def _input_type(example: Any) -> TensorType:
    if isinstance(example, TensorType):
        return example
    if isinstance(example, tuple) and len(example) == 2 and isinstance(example[1], str):
        return TensorType(dtypes.check(example[1]), tuple(example[0]))
    arr = np.asarray(example)
    return TensorType.of(arr)


def _input_names(fn: Callable, n: int) -> list[str]:
    try:
        params = [
            p.name
            for p in inspect.signature(fn).parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]
    except (TypeError, ValueError):
        params = []
    names = params[:n]
    names += [f"x{i}" for i in range(len(names), n)]
    return names


def _flatten_outputs(result) -> tuple[list[Tensor], list[str] | None]:
    if isinstance(result, Tensor):
        return [result], None
    if isinstance(result, dict):
        outs = list(result.values())
        names = [str(k) for k in result]
    elif isinstance(result, (list, tuple)):
        outs, names = list(result), None
    else:
        raise IRError(f"a traced function must return graphc tensors (or a tuple/list/dict of them), got {type(result).__name__}")
    for o in outs:
        if not isinstance(o, Tensor):
            raise IRError(f"a traced function returned a {type(o).__name__} among its outputs; only graphc tensors can be outputs")
    return outs, names


def trace(fn: Callable, *example_inputs: Any, name: str | None = None, params_as_inputs: bool = False) -> Graph:
    """Record the graphc ops `fn` performs on symbolic inputs shaped like `example_inputs`."""
    b = GraphBuilder(name or getattr(fn, "__name__", "main").replace("<", "").replace(">", "") or "main")
    names = _input_names(fn, len(example_inputs))
    args = [Tensor(b.input(n, _input_type(e))) for n, e in zip(names, example_inputs)]
    with b:
        result = fn(*args)
    outs, out_names = _flatten_outputs(result)
    graph = b.build([o.value for o in outs], out_names)
    if params_as_inputs:
        from .passes.lift_params import lift_params

        graph = lift_params(graph)
    return graph
