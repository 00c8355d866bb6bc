"""The GPU carry (scripts/gpu/package.py) and its runner (scripts/gpu/run_on_gpu.py), short of a GPU.

* packaged for x86, the runner's whole path runs here: weights rebuilt from recipes and
  hash-checked, the artifact loaded with graphc.runtime, outputs against PyTorch's,
  interleaved timings against PyTorch eager;
* packaged for CUDA with the runtime-only TVM, the runner starts in an interpreter that
  has numpy and TVM's FFI and nothing else (TVM and graphc come from the carry and the
  checkout, as on the GPU machine) and reports, per model, that there is no GPU.
"""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from graphc.errors import ArtifactError

REPO = Path(__file__).resolve().parents[2]
SCRIPTS = REPO / "scripts" / "gpu"


def _script(name: str):
    spec = importlib.util.spec_from_file_location(f"gpu_{name}", SCRIPTS / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def x86_carry(tmp_path_factory):
    out = tmp_path_factory.mktemp("carry_x86")
    assert _script("package").main(["--models", "mlp,cnn", "--target", "x86", "--out", str(out), "--no-runtime"]) == 0
    return out


def test_runner_checks_and_times_x86_artifacts(x86_carry, tmp_path):
    runner = _script("run_on_gpu")
    rc = runner.main(["--carry", str(x86_carry), "--out", str(tmp_path), "--device", "cpu", "--rounds", "1", "--iters", "1",
                      "--no-compile"])
    report = json.loads((tmp_path / "gpu_results.json").read_text())
    assert rc == 0, report
    assert [r["model"] for r in report["results"]] == ["cnn", "mlp"]
    for r in report["results"]:
        assert r["numerics"]["ok"] and r["numerics"]["outputs"][0]["max_abs_err"] < 1e-4, r["numerics"]
        assert r["torch_numerics"]["ok"]  # PyTorch on the same rebuilt weights agrees as well
        assert set(r["timings"]) == {"graphc", "torch_eager"}
        assert all(t["median_ms"] > 0 for t in r["timings"].values())


def test_rebuilt_weights_are_checked_against_the_packaged_hashes(x86_carry, tmp_path):
    runner = _script("run_on_gpu")
    folder = tmp_path / "mlp"
    folder.mkdir()
    for f in (x86_carry / "models" / "mlp").iterdir():
        (folder / f.name).write_bytes(f.read_bytes())
    manifest = json.loads((folder / "model.json").read_text())
    assert any("state_key" in p for p in manifest["params"]), "no parameter travels as a recipe"
    for recipe in manifest["recipes"].values():
        if "seed" in recipe:
            recipe["seed"] += 1
    (folder / "model.json").write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match="rebuilt with content hash .* not the packaged"):
        runner.Packaged(folder).params()


def test_compare_flags_shape_nan_and_tolerance():
    compare = _script("run_on_gpu").compare
    e = np.array([1.0, -2.0, 100.0], np.float32)
    assert compare([e + 1e-3], [e], rtol=1e-3, atol=1e-4)["ok"]  # within atol * 100 + rtol * |e|
    assert not compare([e + 1.0], [e], rtol=1e-3, atol=1e-4)["ok"]
    assert not compare([np.array([1.0, np.nan, 100.0], np.float32)], [e], rtol=1e-3, atol=1e-4)["ok"]
    assert not compare([e[:2]], [e], rtol=1e-3, atol=1e-4)["ok"]
    assert not compare([], [e], rtol=1e-3, atol=1e-4)["ok"]


@pytest.mark.slow
def test_cuda_carry_runs_runtime_only_and_says_there_is_no_gpu(tmp_path):
    carry = tmp_path / "carry"
    assert _script("package").main(["--models", "mlp", "--arch", "sm_90", "--out", str(carry)]) == 0
    assert (carry / "site" / "tvm" / "lib" / "libtvm_runtime_cuda.so").exists()
    assert not list(carry.rglob("libtvm_compiler.so"))
    assert list((carry / "wheels").glob("apache_tvm_ffi-0.1.14.post0-cp312-*.whl"))
    assert sum(f.stat().st_size for f in carry.rglob("*") if f.is_file()) < 64 * 2**20
    # an interpreter with numpy and TVM's FFI only: TVM from the carry, graphc from the checkout
    import tvm_ffi

    deps = tmp_path / "deps"
    deps.mkdir()
    numpy_dir = Path(np.__file__).parent.parent
    for name in os.listdir(numpy_dir):
        if name.startswith(("numpy", "typing_extensions", "ml_dtypes")):
            os.symlink(numpy_dir / name, deps / name)
    os.symlink(Path(tvm_ffi.__file__).parent, deps / "tvm_ffi")  # (the carried wheel is for Python 3.12)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "TVM"))}
    env.update(PYTHONPATH=str(deps), PYTHONNOUSERSITE="1")
    res = subprocess.run([sys.executable, "-S", str(SCRIPTS / "run_on_gpu.py"), "--carry", str(carry), "--out", str(tmp_path)],
                         env=env, capture_output=True, text=True, timeout=300, cwd=REPO)
    assert res.returncode == 1, res.stdout + res.stderr
    report = json.loads((tmp_path / "gpu_results.json").read_text())
    assert any("runtime only" in n for n in report["environment"]) and any("graphc" in n for n in report["environment"])
    (r,) = report["results"]
    assert r["model"] == "mlp" and "NVIDIA" in r["error"], r
