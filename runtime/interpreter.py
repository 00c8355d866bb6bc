"""The reference interpreter: runs any graphc graph with the ops' numpy references.

It is the oracle every other stage is checked against (passes before/after,
codegen, frontends). Fused nodes run their body graph, so fusion is testable
without TVM. Importable without the TVM compiler.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from graphc.errors import GraphcError
from graphc.ir import Graph, Node, TensorType
from graphc.ops.registry import get_op

from .signature import bind_inputs


class InterpreterError(GraphcError):
    pass


def run_graph(graph: Graph, *args: Any, **kwargs: Any) -> list[np.ndarray]:
    """Evaluate `graph` on numpy inputs (positional or by name); returns the outputs."""
    arrays = bind_inputs([v.name for v in graph.inputs], [v.type for v in graph.inputs], args, kwargs, what=f"graph @{graph.name}")
    return _run(graph, arrays)


def run_graph_env(graph: Graph, arrays: Sequence[np.ndarray]) -> dict:
    """Evaluate and return every value's array (for debugging and numerics checks)."""
    env: dict = dict(zip(graph.inputs, arrays))
    for node in graph.nodes:
        outs = eval_node(node, [env[v] for v in node.inputs])
        env.update(zip(node.outputs, outs))
    return env


def _run(graph: Graph, arrays: Sequence[np.ndarray]) -> list[np.ndarray]:
    env: dict = dict(zip(graph.inputs, arrays))
    last_use = _last_uses(graph)
    for i, node in enumerate(graph.nodes):
        outs = eval_node(node, [env[v] for v in node.inputs])
        env.update(zip(node.outputs, outs))
        for v in last_use.get(i, ()):  # free intermediates early: big models otherwise hold every activation
            env.pop(v, None)
    return [env[v] for v in graph.outputs]


def _last_uses(graph: Graph) -> dict[int, list]:
    keep = set(graph.outputs)
    last: dict = {}
    for i, node in enumerate(graph.nodes):
        for v in node.inputs:
            last[v] = i
    out: dict[int, list] = {}
    for v, i in last.items():
        if v not in keep and v.node is not None and v.node.op != "const":
            out.setdefault(i, []).append(v)
    return out


def eval_node(node: Node, args: Sequence[np.ndarray]) -> list[np.ndarray]:
    if node.op == "const":
        return [node.data]
    if node.op == "fused":
        return _run(node.body, args)
    op = get_op(node.op)
    result = op.ref(*args, **node.attrs)
    results = list(result) if isinstance(result, (tuple, list)) else [result]
    if len(results) != len(node.outputs):
        raise InterpreterError(f"reference of {node.describe()} returned {len(results)} values for {len(node.outputs)} outputs")
    out = []
    for r, v in zip(results, node.outputs):
        r = np.asarray(r)
        if r.dtype != v.type.np_dtype:
            r = r.astype(v.type.np_dtype)
        if r.shape != v.type.shape:
            raise InterpreterError(
                f"reference of {node.describe()} produced shape {list(r.shape)}, its type says {v.type}"
            )
        out.append(r)
    return out


def eval_op(op_name: str, inputs: Sequence[np.ndarray], attrs: Mapping[str, Any] | None = None) -> list[np.ndarray]:
    """Run one op on arrays through a one-node graph (checks inference against the reference)."""
    from graphc.ir import GraphBuilder

    b = GraphBuilder(op_name)
    vals = [b.input(f"x{i}", TensorType.of(np.asarray(a))) for i, a in enumerate(inputs)]
    outs = b.emit(op_name, vals, dict(attrs or {}))
    g = b.build(outs)
    return _run(g, [np.asarray(a) for a in inputs])
