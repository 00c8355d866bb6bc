"""Rewrite rules and the driver that applies them to a fixed point.

A `Rule` is (name, pattern, check, rewrite):

* `pattern` (graphc.pattern) matches the value a node produces;
* `check(m, ctx)` returns None to go ahead or a *reason string* to decline
  (recorded in the `RewriteReport`: tests assert on reasons and
  `graphc inspect --explain-fusion` prints them);
* `rewrite(b, m)` emits replacement nodes with the builder and returns the new
  value(s) for the matched node's outputs; `m`'s bound values are already the
  new graph's values, `m.nodes` the old matched nodes.

`apply_rules` sweeps the graph, trying rules on each node (the first that
applies wins), and repeats until a sweep changes nothing (capped). Matching runs
on the old graph, so checks see every use of a value (`ctx.users`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

from graphc.ir import Graph, Node, Value
from graphc.pattern import Match, Pattern

from .rewrite import RewriteBuilder, map_nodes

MAX_SWEEPS = 20


@dataclass
class RuleContext:
    graph: Graph
    users: dict[Value, list[Node]]

    def use_count(self, v: Value) -> int:
        return len(self.users.get(v, ())) + sum(1 for o in self.graph.outputs if o is v)

    def only_feeds(self, m: Match, keep: Sequence[Value] = ()) -> str | None:
        """None if every value made inside the match (but the root and `keep`) is used only
        inside it; otherwise a reason naming the escaping value's producer."""
        inside = set(m.nodes)
        allowed = {m.root, *keep}
        for node in m.nodes:
            for v in node.outputs:
                if v in allowed:
                    continue
                outside = [u for u in self.users.get(v, ()) if u not in inside]
                if outside or any(o is v for o in self.graph.outputs):
                    who = outside[0].describe() if outside else "a graph output"
                    return f"the result of {node.describe()} is also used by {who}"
        return None


@dataclass
class Rule:
    name: str
    pattern: Pattern
    rewrite: Callable[[RewriteBuilder, Match], "Value | Sequence[Value]"]
    check: Callable[[Match, RuleContext], str | None] | None = None
    # maximal munch: skip a match when a user of the root matches this rule with the root inside
    # (e.g. a layer norm's normalization without its scale, when the scale is there too)
    maximal: bool = True

    def _bigger_match_above(self, node: Node, ctx: "RuleContext") -> bool:
        for user in ctx.users.get(node.outputs[0], ()):
            if len(user.outputs) == 1:
                outer = self.pattern.match(user.outputs[0])
                if outer is not None and node in outer.nodes:
                    return True
        return False


@dataclass
class RewriteEvent:
    rule: str
    node: str  # description of the matched root node
    loc: str | None
    detail: str = ""  # what was made (applied) or why not (declined)
    sources: tuple[str, ...] = ()  # locations of all matched nodes


@dataclass
class RewriteReport:
    applied: list[RewriteEvent] = field(default_factory=list)
    declined: list[RewriteEvent] = field(default_factory=list)
    sweeps: int = 0

    def count(self, rule: str) -> int:
        return sum(1 for e in self.applied if e.rule == rule)

    def reasons(self, rule: str) -> list[str]:
        return [e.detail for e in self.declined if e.rule == rule]

    def merge(self, other: "RewriteReport") -> None:
        self.applied += other.applied
        self.declined += other.declined


def _map_match(m: Match, b: RewriteBuilder) -> Match:
    return Match(m.root, {k: b.vmap.get(v, v) for k, v in m.values.items()}, m.nodes, m.named_nodes, m.info)


def apply_rules(graph: Graph, rules: Sequence[Rule], report: RewriteReport | None = None, max_sweeps: int = MAX_SWEEPS) -> Graph:
    report = report if report is not None else RewriteReport()
    declined: dict[tuple, RewriteEvent] = {}
    for sweep in range(max_sweeps):
        ctx = RuleContext(graph, graph.users())
        changed = False

        def visit(b: RewriteBuilder, node: Node, ins: list[Value]):
            nonlocal changed
            if node.op == "const" or len(node.outputs) != 1:
                return None
            for rule in rules:
                m = rule.pattern.match(node.outputs[0])
                if m is None or (rule.maximal and rule._bigger_match_above(node, ctx)):
                    continue
                reason = rule.check(m, ctx) if rule.check is not None else None
                if reason:
                    event = RewriteEvent(rule.name, node.describe(), node.loc, reason, _locs(m))
                    declined.setdefault((rule.name, node.loc, node.describe(), reason), event)
                    continue
                result = rule.rewrite(b, _map_match(m, b))
                changed = True
                report.applied.append(RewriteEvent(rule.name, node.describe(), node.loc, "", _locs(m)))
                return result
            return None

        graph = map_nodes(graph, visit)
        report.sweeps = sweep + 1
        if not changed:
            break
    # a decline that a later sweep turned into a rewrite (another rule enabled it) is no near miss
    done = {(e.rule, e.loc) for e in report.applied if e.loc}
    report.declined.extend(e for e in declined.values() if not (e.loc and (e.rule, e.loc) in done))
    return graph


def _locs(m: Match) -> tuple[str, ...]:
    return tuple(n.loc or n.describe() for n in m.nodes)
