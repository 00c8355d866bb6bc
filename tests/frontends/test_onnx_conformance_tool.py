"""The conformance harness itself (tests/frontends/onnx_conformance.py): failure reasons, the
session summary, and the expected-failures regeneration command."""
from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest

pytest.importorskip("onnx")

from onnx.backend.test.runner import Runner  # noqa: E402

from graphc.errors import FrontendError, UnsupportedOpError  # noqa: E402
from tests.frontends import onnx_conformance as conformance  # noqa: E402


def _assertion(ref, out) -> AssertionError:
    with pytest.raises(AssertionError) as err:
        Runner.assert_similar_outputs(ref, out, rtol=1e-3, atol=1e-7)
    return err.value


@pytest.mark.parametrize(
    "error, reason",
    [
        (UnsupportedOpError("m: 2 unsupported ONNX op types: ...", ["TopK", "ai.onnx.ml.Imputer"]), "unsupported ops: TopK, ai.onnx.ml.Imputer"),
        (FrontendError("ONNX model 'm': input 'x': ONNX element type UINT4 is not supported by graphc (...)"), "dtype UINT4 not supported"),
        (FrontendError("ONNX model 'm': node 'n' (Pad, opset 25): pad mode 'wrap' is not supported"),
         "import/compile error: node 'n' (Pad, opset 25): pad mode 'wrap' is not supported"),
        (ValueError("boom\nsecond line"), "crash (ValueError): boom second line"),
        (_assertion([np.zeros(3, np.float32)], [np.ones(3, np.float32)]), "wrong result: values differ beyond rtol/atol"),
        (_assertion([np.zeros(3, np.float32)], [np.zeros((3, 1), np.float32)]),
         "wrong result: Output 0 has incorrect shape (shapes (2,), (1,) mismatch)"),
        (_assertion([np.zeros(3, np.float32)], [np.zeros(3, np.float64)]), "wrong result: ACTUAL: dtype('float64') DESIRED: dtype('float32')"),
        (_assertion([np.array([np.nan], np.float32)], [np.array([1.0], np.float32)]), "wrong result: NaN/inf positions differ"),
        (conformance.ComparisonError("onnx's Runner.assert_similar_outputs cannot compare these outputs (TypeError: x)"),
         "onnx's Runner.assert_similar_outputs cannot compare these outputs (TypeError: x)"),
    ],
)
def test_failure_reasons(error, reason):
    assert conformance.failure_reason(error) == reason


def test_summary_counts_reports_from_any_process():
    """The controller sees the workers' reports: results travel in the reports' user_properties."""
    conformance._RESULTS.clear()
    try:
        for name, kind, passed in [("a", "node", True), ("b", "node", False), ("c", "real", True), ("d", "simple", False)]:
            report = SimpleNamespace(when="call", user_properties=[("other", 1), (conformance.REPORT_PROPERTY, [name, kind, passed])])
            conformance.record_report(report)
        conformance.record_report(SimpleNamespace(when="setup", user_properties=[(conformance.REPORT_PROPERTY, ["e", "node", True])]))
        lines = []
        conformance.terminal_summary(SimpleNamespace(write_sep=lambda *a: None, write_line=lines.append))
        assert lines == ["ONNX backend conformance: 2/4 (node 1/2, simple 0/1, real 1/1)"]
    finally:
        conformance._RESULTS.clear()
    lines = []
    conformance.terminal_summary(SimpleNamespace(write_sep=lambda *a: None, write_line=lines.append))
    assert lines == []  # no conformance test ran: no summary


def test_every_kind_is_loaded_once():
    cases = conformance.load_cases()
    kinds = {c.kind for c in cases.values()}
    assert kinds == set(conformance.KINDS)
    assert len(cases) >= 2000


def test_update_expected_rewrites_only_the_selected_cases(tmp_path, monkeypatch, capsys):
    path = tmp_path / "expected.json"
    path.write_text(json.dumps({"test_abs": "stale: it passes", "test_unrelated_case_kept": "kept as is"}))
    monkeypatch.setattr(conformance, "EXPECTED_FAILURES_PATH", path)
    monkeypatch.setitem(conformance.load_cases(), "test_unrelated_case_kept", conformance.load_cases()["test_add"])

    assert conformance.main(["-k", "test_abs", "-j", "1"]) == 1  # the list is out of date
    out = capsys.readouterr().out
    assert "ONNX backend conformance: 1/1 (node 1/1)" in out
    assert "now passes: test_abs" in out

    assert conformance.main(["-k", "test_abs", "-j", "1", "--update-expected"]) == 0
    assert json.loads(path.read_text()) == {"test_unrelated_case_kept": "kept as is"}
