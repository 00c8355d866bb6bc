"""Common-subexpression elimination: one node per (op, attributes, inputs); equal constants merged.

Constants merge when their contents and names agree (differently named weights
stay apart so parameter tables keep every name).
"""
from __future__ import annotations

from graphc.ir import Graph, Node, Value
from graphc.printer import format_attr, print_graph

from .rewrite import copy_node, map_nodes


def _key(node: Node, ins: list[Value]) -> tuple:
    if node.op == "const":
        return ("const", node.data_hash(), node.outputs[0].name)
    body = print_graph(node.body) if node.body is not None else None
    return (node.op, format_attr(node.attrs), tuple(id(v) for v in ins), body)


def cse(graph: Graph) -> Graph:
    seen: dict[tuple, list[Value]] = {}

    def visit(b, node, ins):
        key = _key(node, ins)
        if key not in seen:
            seen[key] = copy_node(b, node, ins)
        return seen[key]

    return map_nodes(graph, visit)
