"""Shared fixtures: the host target, compile-and-run helpers, and the IR round-trip check."""
from __future__ import annotations

import os
import tempfile

import numpy as np
import pytest

import graphc
from graphc.printer import parse_graph, print_graph
from graphc.verify import verify

# compiles in tests use graphc's default schedules, not whatever `graphc tune` left in the user's cache
os.environ.setdefault("GRAPHC_TUNING_DIR", tempfile.mkdtemp(prefix="graphc-test-tuning-"))


@pytest.fixture(scope="session")
def x86():
    from graphc.targets import resolve

    return resolve("x86")


_IN_ROUNDTRIP = False


@pytest.fixture(autouse=True)
def every_built_graph_roundtrips(monkeypatch):
    """Every graph a test builds (trace, importers, passes, rewrites) verifies and round-trips
    print -> parse -> print exactly."""
    from graphc.ir import GraphBuilder

    original = GraphBuilder.build

    def build_and_check(self, *args, **kwargs):
        global _IN_ROUNDTRIP
        graph = original(self, *args, **kwargs)
        if not _IN_ROUNDTRIP:
            _IN_ROUNDTRIP = True
            try:
                assert_roundtrip(graph)
            finally:
                _IN_ROUNDTRIP = False
        return graph

    monkeypatch.setattr(GraphBuilder, "build", build_and_check)
    yield


def assert_roundtrip(graph):
    """print -> parse -> print is exact, the parsed graph verifies and is structurally equal."""
    text = print_graph(graph)
    parsed = parse_graph(text, graph.constants())
    assert print_graph(parsed) == text
    verify(parsed)
    assert parsed.structurally_equal(graph)
    return parsed


def assert_close(actual, expected, rtol=1e-5, atol=1e-5, what="output"):
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    assert actual.dtype == expected.dtype, f"{what}: dtype {actual.dtype} != {expected.dtype}"
    if actual.dtype.kind in "biu":
        np.testing.assert_array_equal(actual, expected, err_msg=what)
    else:
        np.testing.assert_allclose(actual.astype(np.float64), expected.astype(np.float64), rtol=rtol, atol=atol, err_msg=what)


def compile_and_run(graph, inputs, target="x86", **options):
    """Compile a graph for the host and run it on a list of arrays."""
    compiled = graphc.compile(graph, target=target, **options)
    return compiled.session().run(*inputs)


# the ONNX backend conformance summary (tests/frontends/onnx_conformance.py): the tests attach
# their results to their reports, which xdist workers send here, to the controller
def pytest_runtest_logreport(report):
    from tests.frontends.onnx_conformance import record_report

    record_report(report)


def pytest_terminal_summary(terminalreporter):
    from tests.frontends.onnx_conformance import terminal_summary

    terminal_summary(terminalreporter)
