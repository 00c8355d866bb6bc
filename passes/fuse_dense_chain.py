"""Back-to-back GEMM fusion for CPU targets: a dense layer whose only consumer is a narrow
dense layer (a classifier head), and that layer's softmax, become ONE kernel
(``fused[dense_chain]``), computed row tile by row tile
(graphc.codegen.schedule.cpu_chain): the hidden activation never reaches memory and the
small GEMM costs no kernel launch.

Runs after the layout pass (the weights are packed; the groups are the ``dense_epilogue``
groups `fuse_groups` built), from `graphc.compile`, for targets the CPU rules schedule.
It fuses only when the second layer is narrow (one weight panel) and the rows' hidden
activations fit a small scratch: then the first GEMM's tiles are unchanged and the second
one is nearly free. Wide second layers (a transformer's FFN down projection) keep their
own kernels, which parallelize over their columns.

Measured on the seed MLP (batch 64, 784 -> 128 -> 10 -> softmax, 2 threads): three kernels,
74-84 us per `Session.run`; fc1 alone 66-75 us.
"""
from __future__ import annotations

from graphc.ir import Graph, GraphBuilder, Node, Value

from .autodiff import emit_graph
from .rewrite import copy_node, map_nodes

# the second GEMM's output columns: at most one packed weight panel (one register tile wide)
MAX_HEAD_PANELS = 1
# the hidden activations of one row tile stay in L1 (the chain rule sizes its tiles by this)
MAX_HIDDEN_FEATURES = 1024


def _linear_of(node: Node) -> Node | None:
    """The linear_packed anchor of a dense_epilogue group reading its first input, or None."""
    if node.op != "fused" or node.attrs.get("kind") != "dense_epilogue" or len(node.outputs) != 1:
        return None
    anchors = [n for n in node.body.nodes if n.op == "linear_packed"]
    if len(anchors) != 1 or anchors[0].inputs[0] is not node.body.inputs[0]:
        return None
    return anchors[0]


def _is_row_softmax(node: Node) -> bool:
    return node.op == "softmax" and node.attrs.get("axis") in (-1, node.inputs[0].type.rank - 1)


def plan_chains(graph: Graph) -> list[list[Node]]:
    """[first dense group, narrow dense group, (softmax)] chains, in topological order."""
    users = graph.users()
    outputs = set(graph.outputs)

    def only_user(v: Value) -> Node | None:
        us = users.get(v, [])
        return us[0] if len(us) == 1 and v not in outputs else None

    chains = []
    for first in graph.nodes:
        lin1 = _linear_of(first)
        if lin1 is None or lin1.outputs[0].type.rank != 2:
            continue
        second = only_user(first.outputs[0])
        lin2 = _linear_of(second) if second is not None else None
        if lin2 is None or second.inputs[0] is not first.outputs[0]:
            continue
        hidden = first.outputs[0].shape[-1]
        if hidden > MAX_HIDDEN_FEATURES or lin2.inputs[1].shape[0] > MAX_HEAD_PANELS:
            continue
        chain = [first, second]
        tail = only_user(second.outputs[0])
        if tail is not None and _is_row_softmax(tail):
            chain.append(tail)
        chains.append(chain)
    return chains


def fuse_dense_chains(graph: Graph) -> Graph:
    chains = plan_chains(graph)
    if not chains:
        return graph
    last = {chain[-1]: chain for chain in chains}

    def visit(b, node: Node, ins: list[Value]):
        chain = last.get(node)
        if chain is None:
            return None  # the chain's earlier members are copied, then pruned as dead
        return _emit_chain(b, chain)

    return map_nodes(graph, visit)


def _emit_chain(b, chain: list[Node]) -> list[Value]:
    """One fused node computing the chain's last output from the members' outside inputs."""
    body = GraphBuilder("dense_chain")
    outer: list[Value] = []
    inner: dict[Value, Value] = {}

    def bind(v: Value) -> Value:
        if v not in inner:
            inner[v] = body.input(f"in{len(outer)}", v.type)
            outer.append(v)
        return inner[v]

    with body:
        for node in chain:
            ins = [bind(v) for v in node.inputs]  # a member's output is bound already (inner)
            outs = emit_graph(body, node.body, ins) if node.op == "fused" else copy_node(body, node, ins)
            inner.update(zip(node.outputs, outs))
    body_graph = body.build([inner[chain[-1].outputs[0]]])
    return b.emit("fused", [b.vmap[v] for v in outer], {"kind": "dense_chain"}, body=body_graph, loc=chain[-1].loc or chain[0].loc)
