"""Fuzzing budget and bookkeeping.

Fuzz tests run FUZZ_EXAMPLES hypothesis examples each by default (CI-sized); set
GRAPHC_FUZZ_EXAMPLES=N for a long run. Every example calls `tried(name)`; the counts
travel to the controller in the test reports (xdist-safe) and the session summary
prints how many cases each fuzzer tried (also appended as JSON to
$GRAPHC_FUZZ_REPORT when set).
"""
from __future__ import annotations

import json
import os
from collections import Counter

import pytest

FUZZ_EXAMPLES = int(os.environ.get("GRAPHC_FUZZ_EXAMPLES", "20"))
PROPERTY = "graphc_fuzz_cases"

_TRIED: Counter = Counter()  # in this process
_TOTALS: Counter = Counter()  # on the controller


def tried(name: str) -> None:
    _TRIED[name] += 1


@pytest.fixture(autouse=True)
def _attach_fuzz_counts(request):
    before = Counter(_TRIED)
    yield
    for name, n in (_TRIED - before).items():
        request.node.user_properties.append((PROPERTY, (name, n)))


def pytest_runtest_logreport(report):
    if report.when == "teardown":
        for key, value in report.user_properties:
            if key == PROPERTY:
                _TOTALS[value[0]] += value[1]


def pytest_terminal_summary(terminalreporter):
    if not _TOTALS:
        return
    terminalreporter.section("graphc fuzzing")
    for name, n in sorted(_TOTALS.items()):
        terminalreporter.write_line(f"{name}: {n} cases")
    path = os.environ.get("GRAPHC_FUZZ_REPORT")
    if path:
        with open(path, "a") as f:
            f.write(json.dumps({"examples_setting": FUZZ_EXAMPLES, "cases": dict(_TOTALS)}) + "\n")
