"""Constant folding: evaluate nodes whose inputs are all constants with the reference interpreter.

Folding never expands data: a node whose result is larger than its constant
inputs together (e.g. broadcasting a scalar to a big shape) is left for codegen,
which computes it on the fly instead of storing it as a parameter.
"""
from __future__ import annotations

from graphc.ir import Graph
from graphc.runtime.interpreter import eval_node

from .rewrite import map_nodes

# results up to this many elements are folded even when they grow (small shape tensors, masks)
ALWAYS_FOLD_ELEMENTS = 1024


def fold_constants(graph: Graph) -> Graph:
    def visit(b, node, ins):
        if node.op == "const" or not ins or not all(v.is_const for v in ins):
            return None
        in_elems = sum(v.type.numel for v in ins)
        out_elems = sum(o.type.numel for o in node.outputs)
        if out_elems > max(in_elems, ALWAYS_FOLD_ELEMENTS):
            return None
        results = eval_node(node, [v.node.data for v in ins])
        name = next((v.name for v in ins if v.name), None)
        return [b.const(r, name=name if len(results) == 1 else None) for r in results]

    return map_nodes(graph, visit)
