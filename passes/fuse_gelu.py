"""GELU fusion by meaning, not by spelling.

Exporters write GELU in many arrangements (``x*0.5*(1+erf(x/sqrt2))``,
``0.5*x*(1+tanh(c*(x+0.044715*x^3)))`` with the scalars and products in any order).
Rather than one pattern per arrangement, this pass looks at small elementwise
expression trees containing an erf or tanh that depend on a single tensor x
(other leaves scalar constants), evaluates them with the reference interpreter
on sample points, and replaces those equal to gelu(x) (either form) with one gelu
op. The same check recognizes silu (x * sigmoid(x)).
"""
from __future__ import annotations

import numpy as np

from graphc import ops
from graphc.ir import Graph, Node, Value
from graphc.ops.registry import ELEMWISE, get_op
from graphc.pattern import Match, Pattern
from graphc.tensor import Tensor

from .rules import RewriteReport, Rule, apply_rules

MAX_CONE = 16  # nodes in an expression tree worth checking
SAMPLES = np.linspace(-6.0, 6.0, 97)
MARKERS = {"erf", "tanh", "sigmoid"}
TARGET_OPS = {"gelu", "silu"}  # already fused: a leaf, not part of a cone
TARGETS = {
    ("gelu", "none"): lambda x: get_op("gelu").ref(x, approximate="none"),
    ("gelu", "tanh"): lambda x: get_op("gelu").ref(x, approximate="tanh"),
    ("silu", None): lambda x: get_op("silu").ref(x),
}


def _cone(root: Value) -> tuple[list[Node], Value] | None:
    """The elementwise expression tree under `root`: its nodes (topologically ordered) and its
    single non-scalar leaf, or None if it has other leaves or grows too big."""
    nodes: list[Node] = []
    leaf: list[Value] = []
    seen: set[Node] = set()

    def visit(v: Value) -> bool:
        n = v.node
        if n is None or (n.op != "const" and (n.op == "fused" or get_op(n.op).fusion != ELEMWISE or n.op in TARGET_OPS)):
            if leaf and leaf[0] is not v:
                return False
            leaf[:] = [v]
            return True
        if n.op == "const":
            return n.data.size == 1
        if n in seen:
            return True
        seen.add(n)
        if len(seen) > MAX_CONE or not all(visit(i) for i in n.inputs):
            return False
        nodes.append(n)
        return True

    if not visit(root) or not leaf or leaf[0].type != root.type:
        return None
    return nodes, leaf[0]


def _evaluate(nodes: list[Node], leaf: Value, root: Value, x: np.ndarray) -> np.ndarray:
    """The cone's value at sample points x (scalar constants broadcast; ops' numpy references)."""
    env = {leaf: x}
    for n in nodes:
        args = [env[v] if v in env else np.asarray(v.node.data).reshape(()) for v in n.inputs]
        env[n.outputs[0]] = np.asarray(get_op(n.op).ref(*args, **n.attrs))
    return env[root]


class _ActivationCone(Pattern):
    def _match(self, value: Value, m: Match):
        if value.node is None or value.node.op == "const" or value.dtype not in ("f32", "f64", "f16"):
            return
        found = _cone(value)
        if found is None:
            return
        nodes, leaf = found
        if not any(n.op in MARKERS for n in nodes) or len(nodes) < 2:
            return
        x = SAMPLES.astype(leaf.type.np_dtype)
        try:
            with np.errstate(all="ignore"):
                got = _evaluate(nodes, leaf, value, x)
        except Exception:  # noqa: BLE001 - an expression the sampler cannot evaluate is no match
            return
        for (op_name, approximate), f in TARGETS.items():
            if got.shape == x.shape and np.allclose(got, f(x), rtol=1e-4, atol=1e-6):
                yield Match(value, {"x": leaf}, nodes, info={"op": op_name, "approximate": approximate})
                return


def _rewrite(b, m):
    op_name, approximate = m.info["op"], m.info["approximate"]
    x = Tensor(m["x"])
    return (ops.gelu(x, approximate=approximate) if op_name == "gelu" else ops.silu(x)).value


RULES = [Rule("fuse_gelu", _ActivationCone(), _rewrite, lambda m, ctx: ctx.only_feeds(m))]


def fuse_gelu(graph: Graph, report: RewriteReport | None = None) -> Graph:
    return apply_rules(graph, RULES, report)
