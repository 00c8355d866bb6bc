"""Canonicalization: one spelling for each computation, so later rules match one form.

* inference dropout, stop_gradient (autodiff's marker), where(c, x, x), x*1, x+0, x-0,
  x/1, neg(neg(x)), cast to the same dtype, transposes by the identity and reshapes to
  the same shape disappear;
* division by a power-of-two scalar becomes multiplication by its reciprocal (exact;
  other divisors stay divisions), and chains of scalar multiplications merge;
* scalar scales move out of matmul operands and through transposes/reshapes onto
  the matmul result (``(q*a) @ (kT*b) -> (q @ kT) * (a*b)``), so an attention
  block has one scale in one place whatever the exporter did;
* flatten/squeeze/unsqueeze become reshape; reshape chains collapse; transposes of
  transposes compose;
* pow(x, 2) becomes x*x, pow(x, 0.5) sqrt(x), x / sqrt(y) x * rsqrt(y).

Rules preserve results exactly, except that reassociating scalar factors (merging
scales, moving them across a matmul) can change float rounding in the last bit.
"""
from __future__ import annotations

import numpy as np

from graphc import ops
from graphc.ir import Graph
from graphc.pattern import const, op, var
from graphc.tensor import Tensor

from .rules import RewriteReport, Rule, apply_rules


def _same_type(m, ctx):
    """Decline when dropping the op would change the type (broadcasting or dtype)."""
    return None if m["x"].type == m.root.type else "the operation changes the type (broadcast or dtype)"


def _scalar(m, name: str):
    arr = np.asarray(m.const(name))
    return arr.reshape(()) if arr.size == 1 else arr


def _float_scalar(name: str):
    return const(name, scalar=True, pred=lambda a: np.asarray(a).dtype.kind == "f")


def _power_of_two(a) -> bool:
    """x / c == x * (1/c) exactly only when c is a power of two."""
    v = float(np.asarray(a).reshape(-1)[0])
    return v != 0.0 and np.isfinite(v) and np.frexp(v)[0] in (0.5, -0.5)


def _identity_const(value: float):
    return const(pred=lambda a, v=value: a.size == 1 and float(np.asarray(a).reshape(-1)[0]) == v)


def _keep(name: str = "x"):
    return lambda b, m: m[name]


def _t(v):
    return Tensor(v)


def _mul_scalar(b, x, value):
    """x * value, with the scalar as a constant of x's dtype."""
    return ops.mul(_t(x), b.const(np.asarray(value, dtype=x.type.np_dtype))).value


IDENTITIES = [
    Rule("remove_dropout", op("dropout", var("x")), _keep()),
    Rule("remove_stop_gradient", op("stop_gradient", var("x")), _keep()),  # (differentiate before optimizing)
    Rule("where_same_branches", op("where", var("c"), var("x"), var("x")), _keep(), _same_type),
    Rule("mul_by_one", op("mul", var("x"), _identity_const(1.0)), _keep(), _same_type),
    Rule("add_zero", op("add", var("x"), _identity_const(0.0)), _keep(), _same_type),
    Rule("sub_zero", op("sub", var("x"), _identity_const(0.0)), _keep(), _same_type),
    Rule("div_by_one", op("div", var("x"), _identity_const(1.0)), _keep(), _same_type),
    Rule("neg_neg", op("neg", op("neg", var("x"))), _keep()),
    Rule("cast_same_dtype", op("cast", var("x"), where=lambda n: n.attrs["dtype"] == n.inputs[0].dtype), _keep()),
    Rule(
        "transpose_identity",
        op("transpose", var("x"), perm=lambda p: tuple(p) == tuple(range(len(p)))),
        _keep(),
    ),
    Rule("reshape_noop", op("reshape", var("x"), where=lambda n: n.inputs[0].shape == tuple(n.attrs["shape"])), _keep()),
]


def _compose_transposes(b, m):
    inner = m.node("inner").attrs["perm"]
    outer = m.node("outer").attrs["perm"]
    return ops.transpose(_t(m["x"]), perm=tuple(inner[p] for p in outer)).value


SHAPES = [
    Rule(
        "views_to_reshape",
        op(("flatten", "squeeze", "unsqueeze"), var("x"), name="view"),
        lambda b, m: ops.reshape(_t(m["x"]), shape=m.root.shape).value,
    ),
    Rule(
        "reshape_reshape",
        op("reshape", op("reshape", var("x"))),
        lambda b, m: ops.reshape(_t(m["x"]), shape=m.root.shape).value,
    ),
    Rule("transpose_transpose", op("transpose", op("transpose", var("x"), name="inner"), name="outer"), _compose_transposes),
]


def _div_to_mul(b, m):
    return _mul_scalar(b, m["x"], 1.0 / _scalar(m, "c"))


def _merge_scales(b, m):
    return _mul_scalar(b, m["x"], _scalar(m, "a") * _scalar(m, "b"))


def _matmul_then_scale(b, m):
    """(x*s) @ y or y @ (x*s) -> (x @ y or y @ x) * s: the operand order comes from the matched node."""
    lhs, rhs = m.nodes[-1].inputs
    scaled_left = lhs.node is not None and lhs.node in m.nodes
    a, c = (m["x"], m["y"]) if scaled_left else (m["y"], m["x"])
    return _mul_scalar(b, ops.matmul(_t(a), _t(c)).value, _scalar(m, "s"))


def _scale_through(b, m):
    """f(x * s) -> f(x) * s for a linear data-movement op f (transpose, reshape)."""
    node = m.nodes[-1]
    moved = ops.get_op(node.op)(_t(m["x"]), **node.attrs)
    return _mul_scalar(b, moved.value, _scalar(m, "s"))


SCALES = [
    Rule("div_by_scalar", op("div", var("x"), const("c", scalar=True, pred=lambda a: a.dtype.kind == "f" and _power_of_two(a))),
         _div_to_mul, _same_type),
    Rule("merge_scales", op("mul", op("mul", var("x"), _float_scalar("a")), _float_scalar("b")), _merge_scales),
    Rule("scale_out_of_matmul_lhs", op("matmul", op("mul", var("x"), _float_scalar("s")), var("y")), _matmul_then_scale),
    Rule("scale_out_of_matmul_rhs", op("matmul", var("y"), op("mul", var("x"), _float_scalar("s"))), _matmul_then_scale),
    Rule("scale_through_transpose", op("transpose", op("mul", var("x"), _float_scalar("s"))), _scale_through),
    Rule("scale_through_reshape", op("reshape", op("mul", var("x"), _float_scalar("s"))), _scale_through),
]

POWERS = [
    Rule("square", op("pow", var("x"), const(pred=lambda a: a.size == 1 and float(a.reshape(-1)[0]) == 2.0)),
         lambda b, m: ops.mul(_t(m["x"]), _t(m["x"])).value, _same_type),
    Rule("pow_half", op("pow", var("x"), const(pred=lambda a: a.size == 1 and float(a.reshape(-1)[0]) == 0.5)),
         lambda b, m: ops.sqrt(_t(m["x"])).value, _same_type),
    Rule("div_sqrt", op("div", var("x"), op("sqrt", var("y"))), lambda b, m: ops.mul(_t(m["x"]), ops.rsqrt(_t(m["y"]))).value),
]

RULES = IDENTITIES + SHAPES + SCALES + POWERS


def canonicalize(graph: Graph, report: RewriteReport | None = None) -> Graph:
    return apply_rules(graph, RULES, report)

