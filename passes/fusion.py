"""Fused groups: building them, and the greedy grouping pass for what the pattern rules leave.

A fused group is a node of op ``fused`` with a body Graph and a kind; codegen turns
each one into ONE kernel (graphc.codegen.lower composes the body's TE). `make_fused`
wraps a convex set of old nodes into such a node; scalar constants stay inside the
body (baked into the kernel), every other outside value becomes an input.

`fuse_groups` is the general pass (after the pattern-based fusions): like TVM's
FuseOps, it merges along single-use edges:

* an anchor (conv2d, linear, matmul) absorbs the chain of elementwise ops that
  consume it (bias add, activation, residual add): its *epilogue*, computed on the
  accumulator tile before the single store;
* elementwise and injective producers join their only consumer (an elementwise
  chain, or the prologue of a reduction such as ``softmax(x * s + mask)``);
* reductions (softmax, layer_norm, sum...) absorb their elementwise epilogue.

It never fuses into an anchor's inputs (recomputing a producer per reuse inside a
conv or matmul costs more than the memory it saves).
"""
from __future__ import annotations

from graphc.codegen.policy import is_inline_const
from graphc.ir import Graph, GraphBuilder, Node, Value
from graphc.ops.registry import ANCHOR, ELEMWISE, INJECTIVE, REDUCE, get_op

from .rewrite import RewriteBuilder, copy_node

VIEW_OPS = ("reshape",)


def make_fused(b: RewriteBuilder, kind: str, nodes: list[Node], outputs: list[Value], attrs: dict | None = None) -> list[Value]:
    """Emit one fused node computing `outputs` (old values) from `nodes` (old, topologically ordered)."""
    body = GraphBuilder(kind)
    inner: dict[Value, Value] = {}
    outer_inputs: list[Value] = []
    for node in nodes:
        for v in node.inputs:
            if v in inner:
                continue
            if v.is_const and is_inline_const(v.node.data):
                inner[v] = body.const(v.node.data, share=False)
            else:
                inner[v] = body.input(f"in{len(outer_inputs)}", v.type)
                outer_inputs.append(v)
        for old, new in zip(node.outputs, copy_node(body, node, [inner[v] for v in node.inputs])):
            inner[old] = new
    body_graph = body.build([inner[v] for v in outputs])
    loc = next((n.loc for n in reversed(nodes) if n.loc), None)
    return b.emit("fused", [b.new(v) for v in outer_inputs], {"kind": kind, **(attrs or {})}, body=body_graph, loc=loc)


def fused_call(b: GraphBuilder, kind: str, inputs: list[Value], fn, attrs: dict | None = None, loc: str | None = None) -> list[Value]:
    """Emit a fused node whose body is what `fn` computes from tensors standing for `inputs`
    (new values of the graph being built)."""
    from graphc.tensor import Tensor

    body = GraphBuilder(kind)
    args = [Tensor(body.input(f"in{i}", v.type)) for i, v in enumerate(inputs)]
    with body:
        result = fn(*args)
    outs = [result] if isinstance(result, Tensor) else list(result)
    body_graph = body.build([t.value for t in outs])
    return b.emit("fused", inputs, {"kind": kind, **(attrs or {})}, body=body_graph, loc=loc)


# ---------------------------------------------------------------------------------------
# greedy grouping
# ---------------------------------------------------------------------------------------
def _fusion(node: Node) -> str | None:
    if node.op in ("const", "fused"):
        return None
    return get_op(node.op).fusion


def _anchor_kind(node: Node) -> str:
    return {"conv2d": "conv_epilogue", "linear": "dense_epilogue", "matmul": "matmul_epilogue"}.get(node.op, f"{node.op}_epilogue")


class _Groups:
    """Union-find over compute nodes; each group remembers its root node (anchor or last op)."""

    def __init__(self, nodes: list[Node]):
        self.parent = {n: n for n in nodes}
        self.anchor: dict[Node, Node | None] = {n: (n if _fusion(n) in (ANCHOR, REDUCE) else None) for n in nodes}

    def find(self, n: Node) -> Node:
        while self.parent[n] is not n:
            self.parent[n] = self.parent[self.parent[n]]
            n = self.parent[n]
        return n

    def union(self, a: Node, b: Node) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra is rb:
            return
        self.parent[ra] = rb
        self.anchor[rb] = self.anchor[rb] or self.anchor[ra]


def plan_groups(graph: Graph) -> list[list[Node]]:
    """Groups of >= 2 compute nodes to fuse, each in topological order."""
    nodes = [n for n in graph.nodes if n.op not in ("const", "fused")]
    users = graph.users()
    outputs = set(graph.outputs)
    groups = _Groups(nodes)

    def single_user(v: Value) -> Node | None:
        us = users.get(v, [])
        return us[0] if len(us) == 1 and v not in outputs and us[0] in groups.parent else None

    for node in nodes:  # producers first: each node decides whether to join its only consumer
        if len(node.outputs) != 1:
            continue
        consumer = single_user(node.outputs[0])
        if consumer is None:
            continue
        p_kind, c_kind = _fusion(node), _fusion(consumer)
        same_shape = consumer.outputs[0].shape == node.outputs[0].shape if len(consumer.outputs) == 1 else False
        p_group_anchor = groups.anchor[groups.find(node)]
        c_group_anchor = groups.anchor[groups.find(consumer)]
        if p_kind in (ANCHOR, REDUCE) or p_group_anchor is not None:
            # epilogue: an elementwise consumer of the same shape joins the anchor/reduction's group
            if c_kind == ELEMWISE and same_shape and c_group_anchor is None:
                groups.union(consumer, node)
        elif p_kind in (ELEMWISE, INJECTIVE) and node.op not in VIEW_OPS:
            if c_kind in (ELEMWISE, INJECTIVE, REDUCE) and not (c_kind == INJECTIVE and consumer.op in VIEW_OPS):
                if c_group_anchor is None or _fusion(c_group_anchor) == REDUCE:
                    groups.union(node, consumer)
    members: dict[Node, list[Node]] = {}
    for n in nodes:
        members.setdefault(groups.find(n), []).append(n)
    return [ms for ms in members.values() if len(ms) > 1]


def group_kind(group: list[Node]) -> str:
    anchors = [n for n in group if _fusion(n) == ANCHOR]
    if anchors:
        return _anchor_kind(anchors[0])
    if any(_fusion(n) == REDUCE for n in group):
        reductions = [n.op for n in group if _fusion(n) == REDUCE]
        return reductions[0] if len(set(reductions)) == 1 else "reduce"
    return "elementwise"


def fuse_groups(graph: Graph) -> Graph:
    return _map_groups(graph, plan_groups(graph))


def _group_outputs(graph: Graph, group: list[Node], users: dict) -> list[Value]:
    """Values of the group used outside it (or returned by the graph)."""
    inside = set(group)
    outputs = set(graph.outputs)
    return [v for n in group for v in n.outputs if v in outputs or any(u not in inside for u in users.get(v, []))]


def _map_groups(graph: Graph, plan: list[list[Node]]) -> Graph:
    """Rebuild the graph with each planned group emitted as one fused node at its last member.

    Values a group computes for outside users are defined by the fused node; since
    every outside user of a member comes after the group's last member (the group is
    convex and emitted in topological order), they can be remapped there."""
    member_of = {n: i for i, g in enumerate(plan) for n in g}
    last_of = {i: g[-1] for i, g in enumerate(plan)}
    order = {n: k for k, n in enumerate(graph.nodes)}
    users = graph.users()
    b = RewriteBuilder(graph.name)
    for v in graph.inputs:
        b.vmap[v] = b.input(v.name, v.type)
    with b:
        for node in graph.nodes:
            i = member_of.get(node)
            if i is None:
                outs = copy_node(b, node, [b.vmap[v] for v in node.inputs])
                b.vmap.update(zip(node.outputs, outs))
                continue
            if node is not last_of[i]:
                continue
            g = sorted(plan[i], key=order.__getitem__)
            outs = _group_outputs(graph, g, users)
            b.vmap.update(zip(outs, make_fused(b, group_kind(g), g, outs)))
    return b.build([b.vmap[v] for v in graph.outputs], graph.output_names)

