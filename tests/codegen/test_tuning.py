"""`graphc tune`: MetaSchedule tuning of graphc's kernels into a persistent database, picked up by compile.

One tiny model (a dense + bias + relu kernel and a softmax) is tuned once per module with a
handful of trials into a temporary database (one measured batch: MetaSchedule starts its build
workers per batch, the slow part on a busy machine).
"""
from __future__ import annotations

import io
import json
import os

import numpy as np
import pytest

import graphc
from graphc import nn as gnn
from graphc.cli import main
from graphc.tuning.database import TuningDatabase, open_database, workload_key
from graphc.tuning.tune import extract_tasks, tune_model

TRIALS = 4
QUIET = {"log": lambda *a, **k: None}


def tiny_model():
    rng = np.random.default_rng(0)
    w = graphc.param("fc.weight", rng.standard_normal((64, 128)).astype(np.float32))
    b = graphc.param("fc.bias", rng.standard_normal(64).astype(np.float32))
    x = rng.standard_normal((32, 128)).astype(np.float32)
    return graphc.trace(lambda x: gnn.softmax(gnn.relu(gnn.linear(x, w, b)), dim=-1), x), x


@pytest.fixture(scope="module")
def tuned(tmp_path_factory):
    db = str(tmp_path_factory.mktemp("tuning") / "db")
    graph, x = tiny_model()
    out = io.StringIO()
    # MetaSchedule alone: the template search has its own tests (test_template_tuning.py)
    result = tune_model(graph, "x86", trials=TRIALS, db_path=db, trials_per_iter=TRIALS, out=out, label="tiny", templates=False)
    return graph, x, db, result, out.getvalue()


def test_tasks_are_the_deduplicated_kernels_with_call_counts(x86):
    rng = np.random.default_rng(1)
    w = graphc.param("w", rng.standard_normal((64, 64)).astype(np.float32))
    x = rng.standard_normal((8, 64)).astype(np.float32)
    graph = graphc.trace(lambda x: gnn.relu(gnn.linear(gnn.relu(gnn.linear(x, w)), w)), x)  # the same layer twice
    compiled = graphc.compile(graph, x86, tuning=False, **QUIET)
    tasks = extract_tasks(compiled.graph, x86)
    assert sum(t.weight for t in tasks) == sum(k.uses for k in compiled.build.kernels)
    assert max(t.weight for t in tasks) == 2
    assert len({workload_key(t.func) for t in tasks}) == len(tasks)


@pytest.mark.slow
def test_tune_records_trials_and_prints_progress(tuned):
    _, _, db, result, output = tuned
    assert f"0 trials already, {TRIALS} to run" in output and "template search skipped" in output
    assert f"{TRIALS}/{TRIALS} trials" in output and "best so far:" in output
    assert result.trials_run == TRIALS and sum(t.trials for t in result.tasks) == TRIALS
    for name in ("database_workload.json", "database_tuning_record.json", "verdicts.json", "sessions.json"):
        assert os.path.exists(os.path.join(db, name)), name
    # every tuned kernel was timed against graphc's default schedule of it, and the verdict stored
    measured = [t for t in result.tasks if t.tuned_ms is not None]
    assert measured and all(t.default_ms > 0 and t.tuned_ms > 0 for t in measured)
    with open(os.path.join(db, "verdicts.json")) as f:
        verdicts = json.load(f)
    for t in measured:
        verdict = verdicts[workload_key(t.func)]
        if "withdrawn" in verdict:  # the whole model ran no faster with it (noise can say so on a tiny model)
            assert verdict["use_tuned"] is False and result.model_check is not None and result.model_check[2] < 1.0
        else:
            assert verdict["use_tuned"] == (t.tuned_ms < t.default_ms)
    assert result.estimated_ms(True) <= result.estimated_ms(False)


@pytest.mark.slow
def test_rerun_resumes_from_the_database(tuned):
    graph, _, db, first, _ = tuned
    out = io.StringIO()
    again = tune_model(graph, "x86", trials=TRIALS, db_path=db, out=out, label="tiny", templates=False)
    assert f"{TRIALS} trials already, 0 to run" in out.getvalue()
    assert again.trials_run == 0
    assert sum(t.trials for t in again.tasks) == TRIALS
    with open(os.path.join(db, "sessions.json")) as f:
        sessions = json.load(f)
    assert [s["trials_run"] for s in sessions if s["model"] == "tiny"][:2] == [TRIALS, 0]


def _force_verdicts(db: str, x86, use_tuned: bool, tasks) -> None:
    database = TuningDatabase(db, x86)
    for t in tasks:
        if database.best_tuned(t.func) is not None:
            database.record_verdict(t.func, 2.0, 1.0 if use_tuned else 3.0)
            database.record_verdict(t.func, 2.0, 3.0, "templates", {})  # the template search lost too


@pytest.mark.slow
def test_compile_uses_tuned_records_only_where_faster_and_numerics_match(tuned, x86):
    graph, x, db, result, _ = tuned
    reference = graphc.run_graph(graph, x)[0]
    _force_verdicts(db, x86, True, result.tasks)
    compiled = graphc.compile(graph, x86, tuning=db, **QUIET)
    notes = [n for k in compiled.build.kernels for n in k.notes]
    assert any(n.startswith("tuned (MetaSchedule") for n in notes), notes
    np.testing.assert_allclose(compiled.session().run(x)[0], reference, rtol=1e-5, atol=1e-6)
    # a record slower than the default schedule is not used
    _force_verdicts(db, x86, False, result.tasks)
    compiled = graphc.compile(graph, x86, tuning=db, **QUIET)
    assert not any(n.startswith("tuned") for k in compiled.build.kernels for n in k.notes)
    np.testing.assert_allclose(compiled.session().run(x)[0], reference, rtol=1e-5, atol=1e-6)


def test_no_database_and_disabled_tuning_use_the_default_rules(tmp_path, x86, monkeypatch):
    monkeypatch.setenv("GRAPHC_CACHE_DIR", str(tmp_path))
    assert open_database(None, x86) is None  # no `graphc tune` run yet: nothing to consult
    assert open_database(False, x86) is None
    assert open_database(str(tmp_path / "db"), x86) is not None


def test_tune_cli_errors_are_one_line(capsys):
    assert main(["tune", "no-such-model"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("graphc: error: no-such-model: not a built-in model") and err.count("\n") == 1
    assert main(["tune", "missing.onnx"]) == 1
    assert "missing.onnx: no such file" in capsys.readouterr().err
