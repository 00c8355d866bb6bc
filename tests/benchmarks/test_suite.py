"""The benchmark suite's fast mode (what CI runs): every system runs, its outputs match PyTorch,
and the JSON / markdown / PNG results are complete. Ratios are reported, never asserted."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("matplotlib")

from benchmarks import report, suite  # noqa: E402
from benchmarks.harness import interleaved  # noqa: E402

SYSTEMS = ("graphc", "pytorch", "torch.compile", "onnxruntime", "tvm-default")
TIMING_FIELDS = ("median_ms", "min_ms", "p90_ms", "rounds")
SYSTEM_FIELDS = ("compile_s", "compile_rss_mb", "run_rss_mb", "first_run_ms", "second_run_ms", "runs_per_sample", "warmed", "correct", "max_rel_diff", "notes", *TIMING_FIELDS)


@pytest.fixture(scope="module")
def fast_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("suite")
    assert suite.main(["--models", "mlp,cnn", "--rounds", "3", "--out", str(out), "--no-readme", "--no-tuned"]) == 0
    with open(out / "suite.json") as f:
        return out, json.load(f)


@pytest.mark.slow
def test_fast_mode_every_system_runs_and_matches_pytorch(fast_run):
    _, results = fast_run
    assert set(results["models"]) == {"mlp", "cnn"}
    for model, row in results["models"].items():
        assert set(row["systems"]) == set(SYSTEMS), model
        for system, entry in row["systems"].items():
            assert "error" not in entry, f"{model}/{system}: {entry.get('error')}"
            missing = [k for k in SYSTEM_FIELDS if k not in entry]
            assert not missing, f"{model}/{system} lacks {missing}"
            assert entry["correct"], f"{model}/{system}: max diff {entry['max_rel_diff']} vs PyTorch"
            assert 1 <= entry["rounds"] <= 3 and entry["min_ms"] <= entry["median_ms"] <= entry["p90_ms"]
            assert entry["compile_s"] >= 0
        assert set(row["ratios"]["graphc"]) == set(SYSTEMS) - {"graphc"}
        for peer, ratio in row["ratios"]["graphc"].items():
            assert ratio == pytest.approx(row["systems"][peer]["median_ms"] / row["systems"]["graphc"]["median_ms"])
    assert {"cpu", "threads"} <= set(results["machine"])


@pytest.mark.slow
def test_fast_mode_writes_the_table_and_chart(fast_run):
    out, results = fast_run
    table = (out / "suite.md").read_text()
    for model in ("mlp", "cnn"):
        assert f"| {model} |" in table
    assert "PyTorch eager ms (x)" in table and "(WRONG)" not in table  # the flag a wrong output gets
    with open(out / "suite.png", "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"


def test_samples_are_warm_back_to_back_runs_except_for_slow_systems():
    assert suite.sample_plan(0.1) == (suite.MAX_INNER, True)  # tiny models: 100 runs per sample
    assert suite.sample_plan(4.0) == (5, True)  # about SAMPLE_MS of runs after a warm-up
    assert suite.sample_plan(300.0) == (1, True)
    assert suite.sample_plan(suite.WARM_LIMIT_MS) == (1, False)  # TVM's untuned BERT: one cold run


def test_readme_table_is_replaced_between_the_markers_only(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(f"# title\n\nbefore\n{report.BEGIN}\nold table\n{report.END}\nafter\n")
    assert report.update_readme("| new | table |\n", str(readme))
    assert readme.read_text() == f"# title\n\nbefore\n{report.BEGIN}\n| new | table |\n{report.END}\nafter\n"
    plain = tmp_path / "PLAIN.md"
    plain.write_text("no markers\n")
    assert not report.update_readme("| x |\n", str(plain))
    assert plain.read_text() == "no markers\n"


def test_the_repository_readme_has_the_markers():
    with open(report.README) as f:
        text = f.read()
    assert text.index(report.BEGIN) < text.index(report.END)


def test_correctness_check_flags_wrong_outputs():
    ref = [np.ones((2, 3), np.float32) * 4]
    assert suite.check([ref[0] + 1e-4], ref)["correct"]
    assert not suite.check([ref[0] + 1e-1], ref)["correct"]
    assert not suite.check([ref[0][:1]], ref)["correct"]
    assert not suite.check([], ref)["correct"]


def test_interleaved_caps_slow_systems_rounds():
    calls = {"fast": 0, "slow": 0}

    def bump(k):
        calls[k] += 1

    times = interleaved({"fast": lambda: bump("fast"), "slow": lambda: bump("slow")}, rounds=5, warmup=1, max_rounds={"slow": 2})
    assert times["fast"]["rounds"] == 5 and times["slow"]["rounds"] == 2
    assert calls == {"fast": 6, "slow": 3}


def test_suite_rejects_unknown_models(capsys):
    with pytest.raises(SystemExit):
        suite.main(["--models", "mlp,nope", "--no-readme", "--out", os.devnull])
    assert "unknown model(s) nope" in capsys.readouterr().err


@pytest.mark.slow
def test_graphc_bench_on_an_onnx_file(tmp_path, capsys):
    from graphc.cli import main
    from graphc.examples import seeds

    path = seeds.export_onnx(seeds.torch_mlp(seed=0), seeds.random_input(seeds.MLP_INPUT, seed=3), str(tmp_path / "mlp.onnx"))
    out_json = tmp_path / "bench.json"
    assert main(["bench", path, "--systems", "graphc,onnxruntime,pytorch", "--rounds", "2", "--no-tuned", "--json", str(out_json)]) == 0
    out = capsys.readouterr().out
    assert "reference ONNX Runtime; systems graphc, onnxruntime" in out  # no torch module behind a plain ONNX file
    assert "| mlp.onnx |" in out and "checked against ONNX Runtime" in out
    with open(out_json) as f:
        row = json.load(f)["models"]["mlp.onnx"]
    assert set(row["systems"]) == {"graphc", "onnxruntime"} and all(e["correct"] for e in row["systems"].values())


def test_graphc_bench_rejects_unknown_models(capsys):
    from graphc.cli import main

    assert main(["bench", "nope"]) == 1
    assert "graphc: error: nope: not a built-in model" in capsys.readouterr().err
