"""Template tuning: knobs of graphc's own CPU schedule rules (graphc.codegen.knobs), searched by
graphc.tuning.templates, stored in the tuning database's verdicts and picked up by compile."""
from __future__ import annotations

import io
import json
import os

import numpy as np
import pytest

import graphc
from graphc import ops
from graphc.codegen.knobs import InvalidKnob, configured, knob, recording
from graphc.ir import GraphBuilder, TensorType
from graphc.tensor import Tensor
from graphc.tuning.database import TuningDatabase, workload_key
from graphc.tuning.templates import knob_space, search_kernel
from graphc.tuning.tune import extract_tasks, tune_model

QUIET = {"log": lambda *a, **k: None}
RNG = np.random.default_rng(0)


def _rand(*shape):
    return RNG.standard_normal(shape).astype(np.float32)


def linear_model(m: int = 6, k: int = 24, n: int = 32):
    b = GraphBuilder("lin")
    x = Tensor(b.input("x", TensorType("f32", (m, k))))
    with b:
        y = ops.relu(ops.linear(x, graphc.param("w", _rand(n, k))) + graphc.param("b", _rand(n)))
    return b.build([y.value]), [_rand(m, k)]


def conv_model(channels=8):
    """8 input channels: the channel-panel micro-kernel; 3 (a 27-step reduction): pixels as lanes."""
    b = GraphBuilder("conv")
    x = Tensor(b.input("x", TensorType("f32", (1, channels, 10, 10))))
    with b:
        y = ops.relu(ops.conv2d(x, graphc.param("w", _rand(16, channels, 3, 3)), pad=(1, 1, 1, 1)))
    return b.build([y.value]), [_rand(1, channels, 10, 10)]


def pixel_conv_model():
    return conv_model(channels=3)


def _anchor_task(graph, x86, rule: str):
    compiled = graphc.compile(graph, x86, tuning=False, **QUIET)
    tasks = [t for t in extract_tasks(compiled.graph, x86) if f"{rule}: blocked" in knob_space(t.func, x86)[1]]
    assert tasks, rule
    return tasks[0]


def test_knob_returns_default_configured_value_or_rejects_unknown():
    assert knob("t.rows", 8, (4, 8)) == 8
    with configured({"t.rows": 4}):
        assert knob("t.rows", 8, (4, 8)) == 4
        with pytest.raises(InvalidKnob):
            knob("t.rows", 8, (8,))  # 4 is not a candidate here
    with recording() as space:
        knob("t.rows", 8, (4, 8))
        knob("t.fixed", 1, ())  # a single option is no knob
    assert list(space) == ["t.rows"] and space["t.rows"].candidates == (8, 4)


@pytest.mark.parametrize("model,rule,expected", [
    (linear_model, "linear_packed", {"gemm.rows", "gemm.unroll_k", "gemm.order"}),
    (conv_model, "conv2d_packed", {"conv.columns", "conv.order"}),
    (pixel_conv_model, "conv2d_packed", {"conv.pixel_channels"}),
])
def test_knob_space_of_gemm_and_conv_kernels(model, rule, expected, x86):
    graph, _ = model()
    task = _anchor_task(graph, x86, rule)
    _, _, space = knob_space(task.func, x86)
    assert expected <= set(space), space
    for k in space.values():
        assert k.default in k.candidates and len(k.candidates) > 1


@pytest.mark.parametrize("model,rule", [(linear_model, "linear_packed"), (conv_model, "conv2d_packed"), (pixel_conv_model, "conv2d_packed")])
def test_every_knob_value_computes_the_reference(model, rule, x86):
    """Each knob's every candidate (the others at their defaults), compiled end to end, matches
    numpy; and the knobs do change the schedule (not a test that cannot fail)."""
    graph, inputs = model()
    want = graphc.run_graph(graph, *inputs)[0]
    task = _anchor_task(graph, x86, rule)
    default_func, _, space = knob_space(task.func, x86)
    distinct = 0
    for name, k in space.items():
        for value in k.alternatives():
            with configured({name: value}):
                compiled = graphc.compile(graph, x86, tuning=False, **QUIET)
                func, _, _ = knob_space(task.func, x86)
            notes = [n for kk in compiled.build.kernels for n in kk.notes]
            assert f"{rule}: blocked" in notes, (name, value, notes)
            np.testing.assert_allclose(compiled.session().run(*inputs)[0], want, rtol=1e-4, atol=1e-4, err_msg=f"{name}={value}")
            distinct += not func.script() == default_func.script()
    assert distinct >= len(space)


def test_search_keeps_a_verified_configuration_or_the_default(x86):
    graph, _ = linear_model()
    task = _anchor_task(graph, x86, "linear_packed")
    times = []
    found = search_kernel(task.func, x86, on_measure=times.append)
    assert found.measured == len(times) > 0 and found.default_ms > 0
    if found.knobs:  # kept only with a confirmed margin
        assert found.tuned_ms < 0.97 * found.default_ms
    else:
        assert found.tuned_ms == found.default_ms


def _record(db_path: str, x86, func, knobs: dict, default_ms=2.0, tuned_ms=1.0) -> TuningDatabase:
    db = TuningDatabase(db_path, x86)
    db.record_verdict(func, default_ms, tuned_ms, "templates", knobs)
    return db


def test_database_round_trip_and_compile_uses_the_knobs(tmp_path, x86):
    graph, inputs = linear_model()
    task = _anchor_task(graph, x86, "linear_packed")
    _, _, space = knob_space(task.func, x86)
    knobs = {"gemm.rows": space["gemm.rows"].alternatives()[0], "gemm.unroll_k": space["gemm.unroll_k"].alternatives()[0]}
    _record(str(tmp_path), x86, task.func, knobs)
    reopened = TuningDatabase(str(tmp_path), x86)
    verdict = reopened.verdicts[workload_key(task.func)]
    assert verdict["method"] == "templates" and verdict["knobs"] == knobs and verdict["use_tuned"]
    compiled = graphc.compile(graph, x86, tuning=str(tmp_path), **QUIET)
    notes = [n for k in compiled.build.kernels for n in k.notes]
    expected = f"tuned (templates: gemm.rows={knobs['gemm.rows']}, gemm.unroll_k={knobs['gemm.unroll_k']}; 2.00x vs default schedule)"
    assert expected in notes and "linear_packed: blocked" in notes, notes
    np.testing.assert_allclose(compiled.session().run(*inputs)[0], graphc.run_graph(graph, *inputs)[0], rtol=1e-4, atol=1e-4)


def test_a_knob_config_the_rules_reject_falls_back_to_the_default_schedule(tmp_path, x86):
    graph, inputs = linear_model()
    task = _anchor_task(graph, x86, "linear_packed")
    _record(str(tmp_path), x86, task.func, {"gemm.rows": 999})
    compiled = graphc.compile(graph, x86, tuning=str(tmp_path), **QUIET)
    notes = [n for k in compiled.build.kernels for n in k.notes]
    assert any(n.startswith("default schedule (tuned knobs not applied: linear_packed: generic (InvalidKnob") for n in notes), notes
    assert "linear_packed: blocked" in notes and not any(n.startswith("tuned (") for n in notes)
    np.testing.assert_allclose(compiled.session().run(*inputs)[0], graphc.run_graph(graph, *inputs)[0], rtol=1e-4, atol=1e-4)


def test_the_best_method_wins_the_verdict(tmp_path, x86):
    graph, _ = linear_model()
    task = _anchor_task(graph, x86, "linear_packed")
    db = _record(str(tmp_path), x86, task.func, {"gemm.order": "rows_outside"}, 2.0, 1.6)
    db.record_verdict(task.func, 2.0, 1.9)  # MetaSchedule: slower than the templates
    verdict = db.verdicts[workload_key(task.func)]
    assert verdict["method"] == "templates" and verdict["tuned_ms"] == 1.6
    db.record_verdict(task.func, 2.0, 1.2)
    assert db.verdicts[workload_key(task.func)]["method"] == "metaschedule"
    assert db.has_result(task.func, "templates") and db.has_result(task.func, "metaschedule")


@pytest.mark.slow
def test_tune_templates_only_resumes_and_logs_sessions(tmp_path):
    graph, _ = linear_model(4, 8, 16)
    db = str(tmp_path / "db")
    out = io.StringIO()
    first = tune_model(graph, "x86", trials=0, db_path=db, out=out, label="tiny")
    n = len(first.tasks)
    assert f"template search: {n} kernels to search, 0 already in the database" in out.getvalue()
    assert all(t.default_ms > 0 and t.tuned_ms > 0 for t in first.tasks)
    out = io.StringIO()
    again = tune_model(graph, "x86", trials=0, db_path=db, out=out, label="tiny")
    assert f"template search: 0 kernels to search, {n} already in the database" in out.getvalue()
    assert again.candidates == 0 and [t.tuned_ms for t in again.tasks] == [t.tuned_ms for t in first.tasks]
    out = io.StringIO()
    tune_model(graph, "x86", trials=0, db_path=db, out=out, label="tiny", retune=True)
    assert f"template search: {n} kernels to search" in out.getvalue()
    with open(os.path.join(db, "sessions.json")) as f:
        sessions = [s for s in json.load(f) if s["model"] == "tiny"]
    assert len(sessions) == 3 and sessions[0]["candidates"] == first.candidates and sessions[1]["candidates"] == 0


@pytest.mark.parametrize("speedup,kept", [(0.8, False), (1.3, True)])
def test_tuned_kernels_are_withdrawn_when_the_whole_model_is_not_faster(tmp_path, x86, monkeypatch, speedup, kept):
    """The model check's verdict (its timing replaced here: timings are the benchmark's business)
    decides whether compile keeps using the kernels' tuned knobs."""
    import graphc.tuning.model_check as model_check

    graph, inputs = linear_model()
    task = _anchor_task(graph, x86, "linear_packed")
    _record(str(tmp_path), x86, task.func, {"gemm.unroll_k": knob_space(task.func, x86)[2]["gemm.unroll_k"].alternatives()[0]})
    for other in extract_tasks(graphc.compile(graph, x86, tuning=False, **QUIET).graph, x86):
        if other.func is not task.func and workload_key(other.func) != workload_key(task.func):
            _record(str(tmp_path), x86, other.func, {}, 1.0, 1.0)  # searched already, nothing kept
    monkeypatch.setattr(model_check, "model_speedup", lambda default, tuned: (1.0, 1.0 / speedup, speedup))
    out = io.StringIO()
    result = tune_model(graph, "x86", trials=0, db_path=str(tmp_path), out=out, label="lin")
    assert result.model_check == (1.0, 1.0 / speedup, speedup)
    verdict = TuningDatabase(str(tmp_path), x86).verdicts[workload_key(task.func)]
    assert verdict["use_tuned"] is kept and ("withdrawn" in verdict) is not kept
    assert ("1 tuned kernels withdrawn" in out.getvalue()) is not kept, out.getvalue()
    with open(os.path.join(str(tmp_path), "sessions.json")) as f:
        assert json.load(f)[-1]["model_speedup"] == speedup
    compiled = graphc.compile(graph, x86, tuning=str(tmp_path), **QUIET)
    notes = [n for k in compiled.build.kernels for n in k.notes]
    assert any(n.startswith("tuned (templates") for n in notes) is kept, notes
    np.testing.assert_allclose(compiled.session().run(*inputs)[0], graphc.run_graph(graph, *inputs)[0], rtol=1e-4, atol=1e-4)


def test_model_speedup_times_two_sessions_of_one_model(x86):
    from graphc.tuning.model_check import model_speedup

    graph, _ = linear_model()
    a = graphc.compile(graph, x86, tuning=False, **QUIET).session()
    b = graphc.compile(graph, x86, tuning=False, **QUIET).session()
    default_ms, tuned_ms, ratio = model_speedup(a, b, rounds=2)
    assert default_ms > 0 and tuned_ms > 0 and ratio > 0


@pytest.mark.parametrize("n,k,order", [(128, 784, "rows_outside"), (768, 768, "panels_outside")])
def test_gemm_order_default_follows_the_packed_weight_size(n, k, order, x86):
    """A weight that stays in every core's L2 (the seed MLP's fc1, 392 KB) puts row tiles outside,
    so each core reads only its rows of the freshly written activation; BERT's 2.3 MB weights
    stream one panel per core under all rows. Checked numerically as well."""
    graph, inputs = linear_model(64, k, n)
    task = _anchor_task(graph, x86, "linear_packed")
    _, _, space = knob_space(task.func, x86)
    assert space["gemm.order"].default == order
    compiled = graphc.compile(graph, x86, tuning=False, **QUIET)
    np.testing.assert_allclose(compiled.session().run(*inputs)[0], graphc.run_graph(graph, *inputs)[0], rtol=1e-4, atol=1e-4)
