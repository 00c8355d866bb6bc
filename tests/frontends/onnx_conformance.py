"""The ONNX package's own backend test suite, run through `graphc.onnx_backend`.

Cases: every ``onnx.backend.test.loader.load_model_tests(kind=...)`` TestCase for the
kinds in `KINDS` ("node" cases are generated in memory, ``*_expanded`` function bodies
included; "real" ones are the light models shipped under onnx/backend/test/data/light,
fed the official dummy inputs). Each case is compared with the official logic and
tolerances (``Runner.assert_similar_outputs`` with the case's rtol/atol).

`onnx_expected_failures.json` (next to this file) maps each case graphc is known to
fail to the reason; tests/frontends/test_onnx_backend.py fails for an unlisted case
that fails and for a listed case that passes. Regenerate the list from the actual
failures with::

    python -m tests.frontends.onnx_conformance --update-expected [-j 2]

Without ``--update-expected`` the command prints the summary and how the results
differ from the list. The pytest session prints the summary too (see `terminal_summary`).
"""
from __future__ import annotations

import argparse
import functools
import glob
import json
import os
import re
import sys
import time
import warnings
from collections import Counter
from pathlib import Path
from typing import Any

KINDS = ("node", "simple", "pytorch-converted", "pytorch-operator", "real")
EXPECTED_FAILURES_PATH = Path(__file__).with_name("onnx_expected_failures.json")
UPDATE_COMMAND = "python -m tests.frontends.onnx_conformance --update-expected"
# the user property a conformance test attaches to its report: (kind, passed); xdist ships it to the controller
REPORT_PROPERTY = "onnx_conformance"


# ---------------------------------------------------------------------------------------
# the cases
# ---------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=None)
def load_cases() -> dict[str, Any]:
    """Case name -> onnx TestCase, heavy kinds first (so xdist does not leave them to the end)."""
    from onnx.backend.test.loader import load_model_tests

    cases: dict[str, Any] = {}
    for kind in reversed(KINDS):
        with warnings.catch_warnings():  # generating the node cases' data warns about overflows on purpose
            warnings.simplefilter("ignore")
            loaded = load_model_tests(kind=kind)
        for case in sorted(loaded, key=lambda c: c.name):
            if case.name in cases:
                raise ValueError(f"ONNX backend test case {case.name!r} appears in two kinds")
            cases[case.name] = case
    return cases


def load_expected() -> dict[str, str]:
    with open(EXPECTED_FAILURES_PATH) as f:
        return json.load(f)


def save_expected(expected: dict[str, str]) -> None:
    with open(EXPECTED_FAILURES_PATH, "w") as f:
        json.dump(dict(sorted(expected.items())), f, indent=1)
        f.write("\n")


def _onnx_root() -> str:
    import onnx

    return os.path.dirname(os.path.dirname(os.path.abspath(onnx.__file__)))


def _load_proto(path: str, type_proto) -> Any:
    """A test data file as the runner reads it (tensor, sequence or optional, by the model's declared type)."""
    import onnx
    from onnx import numpy_helper

    with open(path, "rb") as f:
        data = f.read()
    if type_proto.HasField("sequence_type"):
        proto = onnx.SequenceProto()
        proto.ParseFromString(data)
        return numpy_helper.to_list(proto)
    if type_proto.HasField("optional_type"):
        proto = onnx.OptionalProto()
        proto.ParseFromString(data)
        return numpy_helper.to_optional(proto)
    proto = onnx.TensorProto()
    proto.ParseFromString(data)
    return numpy_helper.to_array(proto)


def model_and_data(case) -> tuple[Any, list[tuple[list, list]]]:
    """(ModelProto, [(inputs, expected outputs)]) exactly as onnx.backend.test.runner builds them."""
    import onnx
    from onnx.backend.test.runner import Runner

    if case.model is not None:  # node cases: generated in memory
        return case.model, [(list(i), list(o)) for i, o in case.data_sets]
    if case.url is not None and case.url.startswith("onnx/backend/test/data/light/"):
        # the light models: dummy inputs (arange / n) and the shipped expected outputs
        path = os.path.join(_onnx_root(), case.url)
        model = onnx.load(path)
        initializers = {t.name for t in model.graph.initializer}
        inputs = [
            Runner.generate_dummy_data(x, seed=0, name=case.model_name, random=False)
            for x in model.graph.input if x.name not in initializers
        ]
        prefix = os.path.splitext(path)[0]
        outputs = [_load_proto(f"{prefix}_output_{i}.pb", o.type) for i, o in enumerate(model.graph.output)]
        return model, [(inputs, outputs)]
    if case.model_dir is None:
        raise ValueError(f"{case.name}: a downloadable model ({case.url}); graphc's conformance run has no network")
    path = os.path.join(case.model_dir, "model.onnx")
    model = onnx.load(path)
    data_sets = []
    for data_dir in sorted(glob.glob(os.path.join(case.model_dir, "test_data_set*"))):
        n_in = len(glob.glob(os.path.join(data_dir, "input_*.pb")))
        n_out = len(glob.glob(os.path.join(data_dir, "output_*.pb")))
        inputs = [_load_proto(os.path.join(data_dir, f"input_{i}.pb"), model.graph.input[i].type) for i in range(n_in)]
        outputs = [_load_proto(os.path.join(data_dir, f"output_{i}.pb"), model.graph.output[i].type) for i in range(n_out)]
        data_sets.append((inputs, outputs))
    return model, data_sets


class ComparisonError(Exception):
    """The official comparison raised something other than an assertion: it cannot judge the outputs."""


def _normalize(item) -> Any:
    """As the runner does: TensorProtos in test data become arrays."""
    import onnx

    return onnx.numpy_helper.to_array(item) if isinstance(item, onnx.TensorProto) else item


def run_case(name: str) -> None:
    """Run one case through GraphcBackend; raises (like the official runner) when graphc fails it."""
    from onnx.backend.test.runner import Runner

    from graphc.onnx_backend import GraphcBackend

    case = load_cases()[name]
    model, data_sets = model_and_data(case)
    rep = GraphcBackend.prepare(model, "CPU")
    for inputs, expected in data_sets:
        outputs = rep.run([_normalize(a) for a in inputs])
        expected = [_normalize(a) for a in expected]
        try:
            Runner.assert_similar_outputs(expected, outputs, rtol=case.rtol, atol=case.atol, model_dir=case.model_dir)
        except AssertionError:
            raise
        except Exception as e:  # the official logic itself cannot compare (e.g. a sequence holding 0-d tensors)
            raise ComparisonError(f"onnx's Runner.assert_similar_outputs cannot compare these outputs ({type(e).__name__}: {e})") from e


def outcome(name: str) -> tuple[str | None, BaseException | None]:
    """(None, None) if the case passes, else (why it fails: one line, stable across runs; the exception)."""
    try:
        run_case(name)
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as e:  # noqa: BLE001 - any failure of the backend is a result to report
        return failure_reason(e), e
    return None, None


# ---------------------------------------------------------------------------------------
# failure reasons
# ---------------------------------------------------------------------------------------
_WHERE_PREFIX = re.compile(r"^ONNX model '[^']*': ")
_DTYPE = re.compile(r"ONNX element type (\w+) is not supported")


def failure_reason(e: BaseException) -> str:
    """A one-line, deterministic reason: what kind of failure and its gist."""
    from graphc.errors import GraphcError, UnsupportedOpError

    if isinstance(e, UnsupportedOpError) and e.op_types:
        return f"unsupported op{'s' if len(e.op_types) > 1 else ''}: {', '.join(_with_reason(op) for op in sorted(e.op_types))}"
    message = str(e)
    m = _DTYPE.search(message)
    if m:
        return f"dtype {m.group(1)} not supported"
    if isinstance(e, AssertionError):
        return "wrong result: " + _assertion_gist(message)
    if isinstance(e, ComparisonError):
        return _one_line(message)
    label = "import/compile error" if isinstance(e, GraphcError) else f"crash ({type(e).__name__})"
    return f"{label}: {_one_line(_WHERE_PREFIX.sub('', message))}"


def _with_reason(op_type: str) -> str:
    """"Op" or "domain.Op", with why graphc does not convert it when the importer knows (UNSUPPORTED_REASONS)."""
    from graphc.frontends.onnx import UNSUPPORTED_REASONS

    domain, _, op = op_type.rpartition(".")
    reason = UNSUPPORTED_REASONS.get((domain, op))
    return f"{op_type} ({reason})" if reason else op_type


def _assertion_gist(message: str) -> str:
    """What differs, without the values (which may be uninitialized memory, different on every run)."""
    lines = [ln.strip() for ln in message.strip().splitlines() if ln.strip()]
    shape = [ln for ln in lines if ln.startswith(("Output", "(shapes"))]
    if shape:  # Output i has incorrect shape (shapes (a,), (b,) mismatch)
        return _one_line(" ".join(shape))
    if any(ln.startswith("Mismatched elements") for ln in lines):
        return "values differ beyond rtol/atol"
    if any("nan location mismatch" in ln or "inf location mismatch" in ln for ln in lines):
        return "NaN/inf positions differ"
    if "Items are not equal:" in lines:  # the output count or a dtype
        return _one_line(" ".join(ln for ln in lines if ln.startswith(("ACTUAL", "DESIRED"))))
    return _one_line(lines[0] if lines else "outputs differ")


def _one_line(text: str, limit: int = 240) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


# ---------------------------------------------------------------------------------------
# the pytest session summary (hooks delegated from tests/conftest.py)
# ---------------------------------------------------------------------------------------
_RESULTS: dict[str, tuple[str, bool]] = {}  # case name -> (kind, passed), in the process that writes the summary


def record_report(report) -> None:
    """pytest_runtest_logreport: remember the conformance result a test attached to its report."""
    if report.when != "call":
        return
    for key, value in report.user_properties:
        if key == REPORT_PROPERTY:
            name, kind, passed = value
            _RESULTS[name] = (kind, bool(passed))


def summary_line(results: dict[str, tuple[str, bool]]) -> str:
    totals, passes = Counter(), Counter()
    for kind, passed in results.values():
        totals[kind] += 1
        passes[kind] += passed
    parts = ", ".join(f"{k} {passes[k]}/{totals[k]}" for k in KINDS if totals[k])
    return f"ONNX backend conformance: {sum(passes.values())}/{sum(totals.values())} ({parts})"


def terminal_summary(terminalreporter) -> None:
    """pytest_terminal_summary: the pass counts by kind, when conformance tests ran in this session."""
    if _RESULTS:
        terminalreporter.write_sep("-", "ONNX backend conformance")
        terminalreporter.write_line(summary_line(_RESULTS))


# ---------------------------------------------------------------------------------------
# the command line: summary, differences with the list, regeneration
# ---------------------------------------------------------------------------------------
def _run_chunk(names: list[str]) -> list[tuple[str, str | None]]:
    return [(n, outcome(n)[0]) for n in names]


def run_all(names: list[str], jobs: int) -> dict[str, str | None]:
    """name -> failure reason (None: passes), running `jobs` processes."""
    if jobs <= 1:
        return dict(_run_chunk(names))
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    chunks = [names[i : i + 16] for i in range(0, len(names), 16)]
    results: dict[str, str | None] = {}
    with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        for done in pool.map(_run_chunk, chunks):
            results.update(done)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.frontends.onnx_conformance", description=__doc__.split("\n\n")[0])
    parser.add_argument("--update-expected", action="store_true", help=f"rewrite {EXPECTED_FAILURES_PATH.name} from the actual failures")
    parser.add_argument("-j", "--jobs", type=int, default=2, help="processes (default 2)")
    parser.add_argument("-k", dest="filter", default="", help="only cases whose name contains this (the list keeps the others)")
    args = parser.parse_args(argv)

    cases = load_cases()
    names = [n for n in cases if args.filter in n]
    t0 = time.perf_counter()
    results = run_all(names, args.jobs)
    print(summary_line({n: (cases[n].kind, results[n] is None) for n in names}))
    print(f"({len(names)} cases in {time.perf_counter() - t0:.0f} s)")

    expected = load_expected() if EXPECTED_FAILURES_PATH.exists() else {}
    fixed = sorted(n for n in names if n in expected and results[n] is None)
    broken = sorted(n for n in names if n not in expected and results[n] is not None)
    for n in fixed:
        print(f"now passes: {n}")
    for n in broken:
        print(f"now fails:  {n}: {results[n]}")
    if args.update_expected:
        updated = {n: r for n, r in expected.items() if n not in results and n in cases}
        updated.update({n: r for n, r in results.items() if r is not None})
        save_expected(updated)
        print(f"wrote {EXPECTED_FAILURES_PATH} ({len(updated)} expected failures)")
        return 0
    return 1 if fixed or broken else 0


if __name__ == "__main__":
    sys.exit(main())
