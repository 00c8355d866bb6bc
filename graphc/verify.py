"""Graph invariants. `verify(graph)` raises VerifyError naming the offending node.

Checked: every value is defined once (SSA); every input of a node is defined
before it (topological order, no dangling values); graph outputs are defined;
every node's attributes match its op's schema and its output types equal what the
op's inference says; fused bodies verify recursively and match their node's types;
constants hold arrays of their declared type.
"""
from __future__ import annotations

from .errors import GraphcError, VerifyError
from .ir import Graph, Node, TensorType


def _where(graph: Graph, i: int, node: Node) -> str:
    return f"graph @{graph.name}, node #{i} {node.describe()}"


def verify(graph: Graph) -> Graph:
    from .ops.registry import infer_node_types, normalize_attrs

    defined: set = set()
    names: set[str] = set()
    for v in graph.inputs:
        if v in defined:
            raise VerifyError(f"graph @{graph.name}: input {v.name!r} listed twice")
        if v.node is not None:
            raise VerifyError(f"graph @{graph.name}: input {v.name!r} is also produced by a node")
        if v.name in names:
            raise VerifyError(f"graph @{graph.name}: two inputs are named {v.name!r}")
        names.add(v.name)
        defined.add(v)
    for i, node in enumerate(graph.nodes):
        where = _where(graph, i, node)
        for j, v in enumerate(node.inputs):
            if v not in defined:
                origin = f"produced by {v.node.describe()}" if v.node is not None else "not a graph input"
                raise VerifyError(f"{where}: input {j} ({v.type}) is used before it is defined ({origin})")
        for j, v in enumerate(node.outputs):
            if v in defined:
                raise VerifyError(f"{where}: output {j} is defined twice")
            if v.node is not node or v.index != j:
                raise VerifyError(f"{where}: output {j} does not point back to its node")
            defined.add(v)
        if node.op == "const":
            if node.data is None or node.inputs or len(node.outputs) != 1:
                raise VerifyError(f"{where}: a const needs data, no inputs and one output")
            if TensorType.of(node.data) != node.outputs[0].type:
                raise VerifyError(f"{where}: data is {TensorType.of(node.data)}, declared {node.outputs[0].type}")
            continue
        if node.op == "fused":
            if node.body is None:
                raise VerifyError(f"{where}: fused node without a body")
            try:
                verify(node.body)
            except VerifyError as e:
                raise VerifyError(f"{where}: in its body: {e}") from None
        try:
            attrs = normalize_attrs(node.op, node.attrs)
            if attrs != node.attrs and node.op != "fused":
                raise VerifyError(f"{where}: attributes {node.attrs} are not normalized (expected {attrs})")
            expected = infer_node_types(node.op, [v.type for v in node.inputs], node.attrs, body=node.body, loc=node.loc)
        except VerifyError:
            raise
        except GraphcError as e:
            raise VerifyError(f"{where}: {e}") from None
        actual = [v.type for v in node.outputs]
        if expected != actual:
            raise VerifyError(
                f"{where}: output types {[str(t) for t in actual]} differ from the op's inference {[str(t) for t in expected]}"
            )
    for j, v in enumerate(graph.outputs):
        if v not in defined:
            raise VerifyError(f"graph @{graph.name}: output {j} ({v.type}) is not defined in the graph")
    if graph.output_names is not None and len(graph.output_names) != len(graph.outputs):
        raise VerifyError(f"graph @{graph.name}: {len(graph.output_names)} output names for {len(graph.outputs)} outputs")
    return graph
