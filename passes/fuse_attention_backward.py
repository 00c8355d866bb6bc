"""Attention backward fusion: each scaled_dot_product_attention_backward op (what the
attention gradient rule emits) becomes ``fused[attention_backward](q, k, v[, mask], out, g)``
whose body is that one op.

Codegen gives the group one kernel: the flash-style backward template where it
applies (graphc/codegen/kernels/attention_backward_cpu.py: P recomputed block by
block, no [Sq, Sk] buffer), else the op's generic TE lowering. The template reads
q, k, v in their [..., S, D] layouts and transposes key/value blocks into a local
scratch itself, so the group takes its inputs as they come (no layout rewrite).
"""
from __future__ import annotations

from graphc.ir import Graph
from graphc.ops.registry import get_op

from .fusion import fused_call
from .rewrite import map_nodes

OP = "scaled_dot_product_attention_backward"


def _wrap(b, node, ins):
    if node.op != OP:
        return None
    attrs = dict(node.attrs)
    return fused_call(b, "attention_backward", ins, lambda *xs: get_op(OP)(*xs, **attrs), loc=node.loc)


def fuse_attention_backward(graph: Graph) -> Graph:
    if not any(n.op == OP for n in graph.nodes):
        return graph
    return map_nodes(graph, _wrap)
