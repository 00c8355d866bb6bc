"""Every op on every sample: compiled for x86 through the full codegen path, checked against numpy."""
from __future__ import annotations

import pytest

import graphc
from tests.conftest import assert_close
from tests.ops.test_registry import cases, one_node_graph, samples_of


@pytest.mark.parametrize("name,idx", list(cases()))
def test_op_matches_reference_on_x86(name, idx, x86):
    sample = samples_of(name)[idx]
    g = one_node_graph(name, sample)
    expected = graphc.run_graph(g, *sample.inputs)
    compiled = graphc.compile(g, target=x86, opt_level=0)
    notes = [n for k in compiled.build.kernels for n in k.notes]
    assert not [n for n in notes if "unscheduled" in n], notes
    actual = compiled.session().run(*sample.inputs)
    for i, (a, e) in enumerate(zip(actual, expected)):
        assert_close(a, e, rtol=sample.rtol, atol=sample.atol, what=f"{name} output {i}")
