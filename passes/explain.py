"""`graphc inspect MODEL --explain-fusion`: every fused group and every near miss.

Fused groups are read off the optimized graph (each fused node's body keeps the
source locations of the ops it absorbed); near misses are the rules' recorded
decline reasons.
"""
from __future__ import annotations

from collections import Counter

from graphc.ir import Graph

from .rules import RewriteReport


def _origin(locs: list[str]) -> str:
    locs = list(dict.fromkeys(loc for loc in locs if loc))
    if not locs:
        return ""
    return locs[0] if len(locs) == 1 else f"{locs[0]} .. {locs[-1]}"


def explain_fusion(graph: Graph, report: RewriteReport) -> str:
    fused = [n for n in graph.nodes if n.op == "fused"]
    lines = [f"fused groups: {len(fused)} ({', '.join(f'{k} x{c}' for k, c in Counter(n.kind for n in fused).most_common())})"]
    for n in fused:
        ops = [b.op for b in n.body.nodes if b.op != "const"]
        origin = _origin([b.loc for b in n.body.nodes if b.op != "const"])
        lines.append(f"  {n.kind:22} {' -> '.join(ops)}" + (f"   [{origin}]" if origin else ""))
    standalone = Counter(n.op for n in graph.compute_nodes() if n.op != "fused")
    if standalone:
        lines.append("unfused ops: " + ", ".join(f"{op} x{c}" for op, c in standalone.most_common()))
    seen: set[tuple[str, str]] = set()
    misses = []
    for e in report.declined:
        key = (e.rule, e.detail, e.loc or e.node)
        if (e.rule, e.detail) in seen and key in seen:
            continue
        seen.add(key)
        misses.append(e)
    lines.append(f"near misses: {len(misses)}")
    for e in misses:
        where = e.loc or e.node
        lines.append(f"  {e.rule} at {where}: {e.detail}")
    return "\n".join(lines)
