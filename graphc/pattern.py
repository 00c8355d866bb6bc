"""Patterns over graphc IR, used by the rewrite rules in graphc.passes.

    from graphc.pattern import op, var, const

    # softmax(q @ k^T * c) with c a scalar constant
    p = op("softmax", op("mul", op("matmul", var("q"), var("kt")), const("c", scalar=True)), axis=-1)
    m = p.match(value)          # a Match, or None
    m["q"], m.node(...)         # bound values; m.nodes is every matched node

A pattern matches a *value* (a node output). `op` matches the node that produces
it (op name, attribute constraints, input patterns; commutative ops try both
orders), `var` binds anything, `const` binds a constant (optionally a scalar),
`alt` tries alternatives in order. A name bound twice must bind the same value.
Matching is read-only: rewrites happen in the rule driver (graphc.passes.rules).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from .ir import Node, Value

COMMUTATIVE = frozenset({"add", "mul", "maximum", "minimum", "logical_and", "logical_or", "equal", "not_equal"})


@dataclass
class Match:
    root: Value
    values: dict[str, Value] = field(default_factory=dict)
    nodes: list[Node] = field(default_factory=list)  # every op node the pattern matched (root's last)
    named_nodes: dict[str, Node] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)  # what a custom pattern found (not values)

    def __getitem__(self, name: str) -> Value:
        return self.values[name]

    def get(self, name: str, default=None):
        return self.values.get(name, default)

    def node(self, name: str) -> Node:
        return self.named_nodes[name]

    def const(self, name: str) -> np.ndarray:
        """The array of a value bound by `const(...)`."""
        return self.values[name].node.data

    def scalar(self, name: str) -> float:
        """A scalar constant as the shortest Python float that round-trips its dtype
        (an f32 1e-5 reads 1e-05, not 9.999999747378752e-06)."""
        v = np.asarray(self.const(name)).reshape(-1)[0]
        return float(np.format_float_scientific(v, unique=True)) if v.dtype.kind == "f" else float(v)

    def _copy(self) -> "Match":
        return Match(self.root, dict(self.values), list(self.nodes), dict(self.named_nodes), dict(self.info))


class Pattern:
    def match(self, value: Value) -> Match | None:
        for m in self._match(value, Match(value)):
            return m
        return None

    def _match(self, value: Value, m: Match):  # yields Matches (backtracking over alternatives)
        raise NotImplementedError


def _bind(m: Match, name: str | None, value: Value) -> Match | None:
    if name is None:
        return m
    if name in m.values:
        return m if m.values[name] is value else None
    m = m._copy()
    m.values[name] = value
    return m


@dataclass
class _Var(Pattern):
    name: str | None
    pred: Callable[[Value], bool] | None = None

    def _match(self, value, m):
        if self.pred is None or self.pred(value):
            bound = _bind(m, self.name, value)
            if bound is not None:
                yield bound


@dataclass
class _Const(Pattern):
    name: str | None
    scalar: bool = False
    pred: Callable[[np.ndarray], bool] | None = None

    def _match(self, value, m):
        if not value.is_const:
            return
        data = value.node.data
        if self.scalar and data.size != 1:
            return
        if self.pred is not None and not self.pred(data):
            return
        bound = _bind(m, self.name, value)
        if bound is not None:
            yield bound


@dataclass
class _Op(Pattern):
    op_name: str | tuple[str, ...]
    inputs: tuple[Pattern, ...]
    attrs: dict[str, Any]
    name: str | None = None  # bind the node under this name (and its output value)
    where: Callable[[Node], bool] | None = None
    commutative: bool | None = None

    def _names(self) -> tuple[str, ...]:
        return (self.op_name,) if isinstance(self.op_name, str) else self.op_name

    def _match(self, value, m):
        node = value.node
        if node is None or node.op not in self._names() or len(node.inputs) != len(self.inputs):
            return
        for k, want in self.attrs.items():
            have = node.attrs.get(k)
            if callable(want):
                if not want(have):
                    return
            elif have != want:
                return
        if self.where is not None and not self.where(node):
            return
        if self.name is not None:
            m = _bind(m, self.name, value)
            if m is None:
                return
            m.named_nodes[self.name] = node
        orders = [tuple(range(len(self.inputs)))]
        comm = self.commutative if self.commutative is not None else node.op in COMMUTATIVE
        if comm and len(self.inputs) == 2:
            orders.append((1, 0))
        for order in orders:
            yield from self._match_inputs(node, [node.inputs[i] for i in order], 0, m)

    def _match_inputs(self, node, ins, i, m):
        if i == len(self.inputs):
            out = m._copy()
            out.nodes.append(node)
            yield out
            return
        for sub in self.inputs[i]._match(ins[i], m):
            yield from self._match_inputs(node, ins, i + 1, sub)


@dataclass
class _Alt(Pattern):
    options: tuple[Pattern, ...]

    def _match(self, value, m):
        for p in self.options:
            yield from p._match(value, m)


def op(op_name: str | tuple[str, ...], *inputs: Pattern, name: str | None = None, where=None, commutative=None, **attrs) -> Pattern:
    """Match a node of `op_name` (or one of several) whose inputs match `inputs`.

    Keyword arguments constrain attributes: a value must be equal, a callable must
    return True for it.
    """
    return _Op(op_name, tuple(inputs), attrs, name, where, commutative)


def var(name: str | None = None, pred: Callable[[Value], bool] | None = None) -> Pattern:
    return _Var(name, pred)


def const(name: str | None = None, *, scalar: bool = False, pred: Callable[[np.ndarray], bool] | None = None) -> Pattern:
    return _Const(name, scalar, pred)


def alt(*options: Pattern) -> Pattern:
    return _Alt(tuple(options))


def is_scalar_const(v: Value, value: float | None = None) -> bool:
    """v is a constant holding one element (equal to `value` if given)."""
    if not v.is_const or v.node.data.size != 1:
        return False
    return value is None or float(np.asarray(v.node.data).reshape(-1)[0]) == value
