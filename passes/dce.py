"""Dead-code elimination: drop nodes no graph output depends on (fused bodies too)."""
from __future__ import annotations

from graphc.ir import Graph

from .rewrite import copy_node, map_nodes


def dce(graph: Graph) -> Graph:
    def visit(b, node, ins):
        if node.body is not None:
            new = copy_node(b, node, ins)
            new[0].node.body = dce(node.body)
            return new
        return None

    return map_nodes(graph, visit, prune=True)
