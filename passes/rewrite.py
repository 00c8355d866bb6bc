"""The one mechanism passes use to build a new graph from an old one.

`map_nodes(graph, fn)` walks the graph in order, rebuilding it with a
`RewriteBuilder`; for each node `fn(b, node, new_inputs)` returns replacement
output values, or None to copy the node unchanged. `b.new(old_value)` maps any
already-visited value of the old graph to the new one. Dead nodes are dropped at
the end. Passes stay pure: the input graph is never modified.
"""
from __future__ import annotations

from typing import Callable, Sequence

from graphc.ir import Graph, GraphBuilder, Node, Value


class RewriteBuilder(GraphBuilder):
    def __init__(self, name: str):
        super().__init__(name)
        self.vmap: dict[Value, Value] = {}

    def new(self, old: Value) -> Value:
        """The new graph's value for a value of the old graph (visited already)."""
        return self.vmap[old]


RewriteFn = Callable[[RewriteBuilder, Node, list[Value]], "Sequence[Value] | None"]


def copy_node(b: GraphBuilder, node: Node, inputs: Sequence[Value], body: Graph | None = None) -> list[Value]:
    new = Node(
        node.op,
        inputs,
        node.attrs,
        [o.type for o in node.outputs],
        body=body if body is not None else node.body,
        data=node.data,
        loc=node.loc,
        output_names=[o.name for o in node.outputs],
    )
    new._hash = node._hash  # same immutable data, same content hash
    b.add_node(new)
    return new.outputs


def map_nodes(graph: Graph, fn: RewriteFn, *, prune: bool = True) -> Graph:
    b = RewriteBuilder(graph.name)
    vmap = b.vmap
    for v in graph.inputs:
        vmap[v] = b.input(v.name, v.type)
    with b:
        for node in graph.nodes:
            ins = [vmap[v] for v in node.inputs]
            res = fn(b, node, ins)
            if res is None:
                res = copy_node(b, node, ins)
            res = [res] if isinstance(res, Value) else list(res)
            if len(res) != len(node.outputs):
                raise AssertionError(f"rewrite of {node.describe()} returned {len(res)} values for {len(node.outputs)} outputs")
            for old, new in zip(node.outputs, res):
                if old.type != new.type:
                    raise AssertionError(f"rewrite of {node.describe()} changed a type: {old.type} -> {new.type}")
                vmap[old] = new
    return b.build([vmap[v] for v in graph.outputs], graph.output_names, prune_dead=prune)
