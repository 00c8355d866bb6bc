"""The ONNX backend test suite through graphc (see tests/frontends/onnx_conformance.py).

One test per case. An unlisted case must pass; a case listed in
onnx_expected_failures.json must still fail (when it passes, the test fails and asks
to remove it from the list), so regressions and fixes both show up.
"""
from __future__ import annotations

import traceback

import pytest

pytest.importorskip("onnx")

from tests.frontends import onnx_conformance as conformance  # noqa: E402

EXPECTED = conformance.load_expected()
CASES = conformance.load_cases()


@pytest.fixture(autouse=True)
def every_built_graph_roundtrips():
    """Overrides tests/conftest.py's round-trip check here: the light models' graphs (and every pass's
    rebuild of them) print hundreds of MB of weights; 2033 cases must stay quick, and the importer's
    graphs are round-tripped by tests/frontends/test_onnx_import.py."""
    yield


def test_expected_failures_name_real_cases():
    unknown = sorted(set(EXPECTED) - set(CASES))
    assert not unknown, f"onnx_expected_failures.json lists cases the ONNX test suite does not have: {unknown}; run {conformance.UPDATE_COMMAND}"


@pytest.mark.parametrize("name", list(CASES))
def test_onnx_backend(name, request):
    reason, error = conformance.outcome(name)
    request.node.user_properties.append((conformance.REPORT_PROPERTY, (name, CASES[name].kind, reason is None)))
    if name in EXPECTED:
        if reason is None:
            pytest.fail(
                f"{name} now passes: remove it from tests/frontends/onnx_expected_failures.json "
                f"(or regenerate the list: {conformance.UPDATE_COMMAND})",
                pytrace=False,
            )
        return  # fails as recorded
    if reason is not None:
        details = "".join(traceback.format_exception(type(error), error, error.__traceback__))
        pytest.fail(
            f"{name} fails: {reason}\n(if that is expected now, record it: {conformance.UPDATE_COMMAND})\n\n{details}",
            pytrace=False,
        )
