"""networkx views of graphc graphs, and DOT export (`graphc inspect --dot`).

Graph algorithms (topological orders, reachability, cycle checks) use networkx
rather than hand-written traversals.
"""
from __future__ import annotations

import json

import networkx as nx

from .ir import Graph, Node


def to_networkx(graph: Graph) -> nx.MultiDiGraph:
    """Nodes are graph inputs (``("input", i)``) and IR nodes (``("node", i)``); edges carry values."""
    g = nx.MultiDiGraph(name=graph.name)
    key: dict[Node, tuple] = {}
    for i, v in enumerate(graph.inputs):
        g.add_node(("input", i), label=f"%{v.name}: {v.type}", kind="input")
    for i, node in enumerate(graph.nodes):
        key[node] = ("node", i)
        label = f"fused[{node.kind}]" if node.op == "fused" else node.op
        g.add_node(("node", i), label=label, kind=node.op, node=node)
    src = {v: ("input", i) for i, v in enumerate(graph.inputs)}
    for node in graph.nodes:
        for o in node.outputs:
            src[o] = key[node]
    for node in graph.nodes:
        for j, v in enumerate(node.inputs):
            g.add_edge(src[v], key[node], arg=j, type=str(v.type))
    for i, v in enumerate(graph.outputs):
        g.add_node(("output", i), label=graph.output_name(i), kind="output")
        g.add_edge(src[v], ("output", i), arg=0, type=str(v.type))
    return g


def topological_nodes(graph: Graph) -> list[Node]:
    """The graph's nodes in a topological order that keeps the existing order where it can."""
    g = to_networkx(graph)
    order = nx.lexicographical_topological_sort(g, key=lambda k: (k[0] != "input", k[1]))
    return [g.nodes[k]["node"] for k in order if k[0] == "node"]


def to_dot(graph: Graph) -> str:
    g = to_networkx(graph)
    lines = [f"digraph {json.dumps(graph.name)} {{", "  rankdir=TB;", '  node [shape=box, fontname="monospace"];']
    ids = {k: f"n{i}" for i, k in enumerate(g.nodes)}
    for k, data in g.nodes(data=True):
        shape = {"input": "ellipse", "output": "ellipse"}.get(data["kind"], "box")
        style = ', style=filled, fillcolor="#ffe9b3"' if data["kind"] == "fused" else ""
        if data["kind"] == "const":
            style = ', style=filled, fillcolor="#eeeeee"'
        lines.append(f"  {ids[k]} [label={json.dumps(data['label'])}, shape={shape}{style}];")
    for a, b, data in g.edges(data=True):
        lines.append(f"  {ids[a]} -> {ids[b]} [label={json.dumps(data['type'])}];")
    lines.append("}")
    return "\n".join(lines)
