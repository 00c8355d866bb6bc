"""Shared fixtures: the host target, compile-and-run helpers, and the IR round-trip check."""
from __future__ import annotations

import numpy as np
import pytest

import graphc
from graphc.printer import parse_graph, print_graph
from graphc.verify import verify


@pytest.fixture(scope="session")
def x86():
    from graphc.targets import resolve

    return resolve("x86")


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
