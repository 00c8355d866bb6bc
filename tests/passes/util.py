"""BEFORE/EXPECTED checking for passes: structure, numerics on the interpreter, round trip."""
from __future__ import annotations

import numpy as np

import graphc
from graphc.passes.pipeline import PASSES, random_inputs
from graphc.passes.rules import RewriteReport
from graphc.printer import parse_graph
from tests.conftest import assert_roundtrip


def check_pass(pass_name: str, before: str, expected: str | None, *, constants=None, rtol=1e-5, atol=1e-6, seed=0):
    """Run a pass on BEFORE: the result equals EXPECTED structurally (None: unchanged),
    computes the same as BEFORE on random inputs, and round-trips. Returns (result, report)."""
    g = parse_graph(before, constants)
    report = RewriteReport()
    out = PASSES[pass_name](g, report)
    exp = g if expected is None else parse_graph(expected, constants)
    assert out.structurally_equal(exp), f"got:\n{out}\nexpected:\n{exp}"
    ins = random_inputs(g, seed)
    for a, b in zip(graphc.run_graph(g, *ins), graphc.run_graph(out, *ins)):
        np.testing.assert_allclose(b, a, rtol=rtol, atol=atol)
    assert_roundtrip(out)
    return out, report
