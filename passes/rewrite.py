"""The one mechanism passes use to build a new graph from an old one.

`map_nodes(graph, fn)` walks the graph in order, rebuilding it with a
GraphBuilder; for each node `fn(builder, node, new_inputs)` returns replacement
output values, or None to copy the node unchanged. Dead nodes are dropped at the
end. Passes stay pure: the input graph is never modified.
"""
from __future__ import annotations

from typing import Callable, Sequence

from graphc.ir import Graph, GraphBuilder, Node, Value

RewriteFn = Callable[[GraphBuilder, Node, list[Value]], "Sequence[Value] | None"]


def copy_node(b: GraphBuilder, node: Node, inputs: Sequence[Value]) -> list[Value]:
    new = Node(
        node.op,
        inputs,
        node.attrs,
        [o.type for o in node.outputs],
        body=node.body,
        data=node.data,
        loc=node.loc,
        output_names=[o.name for o in node.outputs],
    )
    b.add_node(new)
    return new.outputs


def map_nodes(graph: Graph, fn: RewriteFn, *, prune: bool = True) -> Graph:
    b = GraphBuilder(graph.name)
    vmap: dict[Value, Value] = {}
    for v in graph.inputs:
        vmap[v] = b.input(v.name, v.type)
    with b:
        for node in graph.nodes:
            ins = [vmap[v] for v in node.inputs]
            res = fn(b, node, ins)
            if res is None:
                res = copy_node(b, node, ins)
            res = list(res)
            if len(res) != len(node.outputs):
                raise AssertionError(f"rewrite of {node.describe()} returned {len(res)} values for {len(node.outputs)} outputs")
            for old, new in zip(node.outputs, res):
                if old.type != new.type:
                    raise AssertionError(f"rewrite of {node.describe()} changed a type: {old.type} -> {new.type}")
                vmap[old] = new
    return b.build([vmap[v] for v in graph.outputs], graph.output_names, prune_dead=prune)
