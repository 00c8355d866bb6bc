"""Turn named constants (parameters) into graph inputs, after the existing inputs.

Used for training (weights become inputs the train step updates) and for models
whose weights are swapped at run time. Unnamed constants (scalars, folded shape
data) stay constants.
"""
from __future__ import annotations

from graphc.ir import Graph, Value

from .rewrite import map_nodes


def lift_params(graph: Graph, names: set[str] | None = None) -> Graph:
    lifted: list[Value] = []

    def visit(b, node, ins):
        if node.op == "const":
            v = node.outputs[0]
            if v.name and (names is None or v.name in names):
                new = b.input(v.name, v.type)
                lifted.append(new)
                return [new]
        return None

    return map_nodes(graph, visit)


def param_values(graph: Graph) -> dict[str, object]:
    """name -> array of every named constant (the values `lift_params` turns into inputs)."""
    return {n.outputs[0].name: n.data for n in graph.const_nodes() if n.outputs[0].name}
