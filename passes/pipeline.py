"""Named pass pipelines. Each pass is a pure Graph -> Graph function.

`run_pipeline` runs passes in order, verifies the graph after each one (an error
names the failing pass and the passes before it), records each pass's time, and
can print or dump the IR after passes and check numerics before/after each pass
on the reference interpreter.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from graphc.errors import GraphcError, VerifyError
from graphc.ir import Graph
from graphc.printer import print_graph
from graphc.verify import verify

from .backward_convs import backward_convs
from .canonicalize import canonicalize
from .cse import cse
from .dce import dce
from .fold_batch_norm import fold_batch_norm
from .fold_constants import fold_constants
from .fuse_attention import fuse_attention
from .fuse_conv_pool import fuse_conv_pool
from .fuse_gelu import fuse_gelu
from .fuse_layer_norm import fuse_layer_norm
from .fusion import fuse_groups
from .index_max_pool import index_max_pool
from .rules import RewriteReport

# A pass is a pure Graph -> Graph function; rule-based passes also record what they
# did and declined in the pipeline's RewriteReport.
Pass = Callable[[Graph, RewriteReport], Graph]


def _plain(fn: Callable[[Graph], Graph]) -> Pass:
    return lambda graph, report: fn(graph)


PASSES: dict[str, Pass] = {
    "canonicalize": canonicalize,
    "fold_constants": _plain(fold_constants),
    "cse": _plain(cse),
    "dce": _plain(dce),
    "fold_batch_norm": fold_batch_norm,
    "fuse_layer_norm": fuse_layer_norm,
    "fuse_gelu": fuse_gelu,
    "fuse_attention": fuse_attention,
    "backward_convs": backward_convs,
    "index_max_pool": index_max_pool,
    "fuse_conv_pool": fuse_conv_pool,
    "fuse_groups": _plain(fuse_groups),
}

_CLEANUP = ["canonicalize", "fold_constants", "cse", "dce"]
LEVELS: dict[int, list[str]] = {
    0: [],
    1: _CLEANUP,
    # recognize composite ops first (their canonical forms), then fuse kernels
    2: _CLEANUP
    + ["fold_batch_norm", "fuse_layer_norm", "fuse_gelu", "canonicalize", "fuse_attention", "canonicalize"]
    + ["fold_constants", "cse", "backward_convs", "index_max_pool", "fuse_conv_pool", "fuse_groups", "dce"],
}
LEVELS[3] = LEVELS[2]


class PassError(GraphcError):
    pass


@dataclass
class PipelineReport:
    passes: list[str] = field(default_factory=list)  # "name" or "name#k" for the k-th run of a pass
    seconds: dict[str, float] = field(default_factory=dict)
    node_counts: dict[str, int] = field(default_factory=dict)
    rewrites: RewriteReport = field(default_factory=RewriteReport)

    def table(self) -> str:
        rows = [f"{'pass':24} {'ms':>9} {'nodes':>7}"]
        for p in self.passes:
            rows.append(f"{p:24} {self.seconds[p] * 1e3:9.2f} {self.node_counts[p]:7d}")
        return "\n".join(rows)


def passes_for_level(level: int) -> list[str]:
    if level not in LEVELS:
        raise PassError(f"unknown optimization level -O{level}; use 0 to {max(LEVELS)}")
    return list(LEVELS[level])


def run_pipeline(
    graph: Graph,
    passes: list[str],
    *,
    print_after: tuple[str, ...] = (),
    dump_dir: str | None = None,
    verify_numerics: bool = False,
    seed: int = 0,
    log: Callable[[str], None] = print,
) -> tuple[Graph, PipelineReport]:
    report = PipelineReport()
    verify(graph)
    ref_inputs = ref_outputs = None
    if verify_numerics:
        from graphc.runtime.interpreter import run_graph

        ref_inputs = random_inputs(graph, seed)
        ref_outputs = run_graph(graph, *ref_inputs)
    if dump_dir:
        os.makedirs(dump_dir, exist_ok=True)
        _dump(dump_dir, 0, "input", graph)
    done: list[str] = []
    for i, name in enumerate(passes, 1):
        if name not in PASSES:
            raise PassError(f"unknown pass {name!r}; known passes: {', '.join(sorted(PASSES))}")
        t0 = time.perf_counter()
        try:
            new = PASSES[name](graph, report.rewrites)
            verify(new)
        except VerifyError as e:
            raise PassError(f"pass {name!r} produced an invalid graph (after {', '.join(done) or 'no other passes'}): {e}") from e
        runs = sum(1 for p in done if p == name)
        label = name if runs == 0 else f"{name}#{runs + 1}"
        report.seconds[label] = time.perf_counter() - t0
        report.passes.append(label)
        report.node_counts[label] = len(new.compute_nodes())
        done.append(name)
        graph = new
        if name in print_after or "all" in print_after:
            log(f"// ----- IR after {name} -----\n{print_graph(graph)}")
        if dump_dir:
            _dump(dump_dir, i, name, graph)
        if verify_numerics:
            from graphc.runtime.interpreter import run_graph

            got = run_graph(graph, *ref_inputs)
            for j, (a, b) in enumerate(zip(got, ref_outputs)):
                if not np.allclose(a, b, rtol=1e-4, atol=1e-5, equal_nan=True):
                    diff = float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64))))
                    raise PassError(
                        f"pass {name!r} changed output {j} (max abs diff {diff:.3g}); passes before it: {', '.join(done[:-1]) or 'none'}"
                    )
    return graph, report


def _dump(dump_dir: str, i: int, name: str, graph: Graph) -> None:
    with open(os.path.join(dump_dir, f"{i:02d}_{name}.gir"), "w") as f:
        f.write(print_graph(graph) + "\n")


def random_inputs(graph: Graph, seed: int = 0) -> list[np.ndarray]:
    """Inputs for numerics checks: floats in [-1, 1); integer inputs small and non-negative (often indices)."""
    rng = np.random.default_rng(seed)
    out = []
    for v in graph.inputs:
        dt = v.type.np_dtype
        if dt.kind == "f":
            out.append(rng.uniform(-1, 1, size=v.shape).astype(dt))
        elif dt.kind == "b":
            out.append(rng.integers(0, 2, size=v.shape).astype(bool))
        else:
            out.append(rng.integers(0, 2, size=v.shape).astype(dt))
    return out


def optimize(graph: Graph, opt_level: int = 2, **kwargs) -> tuple[Graph, PipelineReport]:
    return run_pipeline(graph, passes_for_level(opt_level), **kwargs)
