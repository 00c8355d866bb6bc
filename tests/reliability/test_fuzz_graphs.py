"""Differential fuzzing: random well-typed graphs compiled at every optimization level
must match the reference interpreter. A failure shrinks to a minimal graph, printed
as IR text in the falsifying example."""
from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, note, settings

import graphc
from graphc.passes.pipeline import LEVELS

from .conftest import FUZZ_EXAMPLES, tried
from .graph_gen import graphs


@settings(max_examples=FUZZ_EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(graphs())
def test_random_graphs_match_the_interpreter_at_every_level(case):
    graph, inputs = case
    tried("random graphs")
    note(f"graph:\n{graph}")
    expected = graphc.run_graph(graph, *inputs)
    scale = max(1.0, max(float(np.max(np.abs(e))) for e in expected))
    compiled_by_pipeline = {}
    for level in sorted(LEVELS):
        key = tuple(LEVELS[level])  # levels with the same pipeline compile the same module
        if key not in compiled_by_pipeline:
            compiled_by_pipeline[key] = graphc.compile(graph, target="x86", opt_level=level).session().run(*inputs)
        for i, (a, e) in enumerate(zip(compiled_by_pipeline[key], expected)):
            np.testing.assert_allclose(a, e, rtol=1e-4, atol=1e-4 * scale, err_msg=f"-O{level}, output {i}")
