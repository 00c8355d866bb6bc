"""An artifact loads and runs with the TVM runtime alone: no libtvm_compiler.so, no torch, no onnx.

The runtime-only site (`graphc.testing.runtime_only.host_site`: the installed tvm minus its
compiler library, tvm_ffi, numpy and graphc) runs in a fresh interpreter with -S (no
site-packages) and TVM_USE_RUNTIME_LIB=1: the same mechanism the aarch64 runs under qemu use
(tests/e2e/test_arm.py), here on this machine, through the Python API and `graphc run`.
"""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import graphc
from graphc import ops
from graphc.ir import GraphBuilder, TensorType
from graphc.tensor import Tensor
from graphc.testing.runtime_only import host_site, runtime_only_env


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("runtime_only")
    b = GraphBuilder("rt")
    x = Tensor(b.input("x", TensorType("f32", (4, 16))))
    with b:
        y = ops.tanh(x * np.linspace(0, 1, 16, dtype=np.float32)) + 1.0
    g = b.build([y.value])
    path = graphc.compile(g, target="x86").save(str(tmp / "rt.gca"))
    xin = np.random.default_rng(1).standard_normal((4, 16)).astype(np.float32)
    np.save(tmp / "x.npy", xin)
    np.save(tmp / "ref.npy", graphc.run_graph(g, xin)[0])
    return tmp, path, host_site(tmp / "site")


def _python(site, args, cwd):
    # -P: the working directory (a checkout's graphc/) must not shadow the site's layout
    return subprocess.run([sys.executable, "-S", "-P", *args], env=runtime_only_env([site]), capture_output=True, text=True,
                          timeout=120, cwd=cwd)


def test_artifact_runs_without_the_compiler(setup):
    tmp, path, site = setup
    script = textwrap.dedent(
        f"""
        import numpy as np, importlib.util, sys
        import graphc.runtime as rt
        sess = rt.load({str(path)!r})
        out = sess.run(np.load({str(tmp / "x.npy")!r}))[0]
        np.testing.assert_allclose(out, np.load({str(tmp / "ref.npy")!r}), rtol=1e-6, atol=1e-6)
        loaded = [m for m in sys.modules if m.split(".")[0] in ("torch", "onnx", "onnxruntime")]
        assert not loaded, loaded
        maps = open("/proc/self/maps").read()
        assert "libtvm_compiler" not in maps and "libtvm_runtime" in maps
        assert importlib.util.find_spec("torch") is None, "torch should not be importable here"
        print("RUNTIME-ONLY OK")
        """
    )
    res = _python(site, ["-c", script], tmp)
    assert "RUNTIME-ONLY OK" in res.stdout, res.stdout + res.stderr


def test_graphc_run_without_the_compiler(setup):
    tmp, path, site = setup
    report = tmp / "loaded.json"
    res = _python(site, ["-m", "graphc.testing.runtime_probe", str(report), "run", path, "--input", f"x={tmp / 'x.npy'}",
                         "--save", str(tmp / "out.npz")], tmp)
    assert res.returncode == 0, res.stdout + res.stderr
    loaded = json.loads(report.read_text())
    assert loaded["tvm_runtime_loaded"] and not loaded["tvm_compiler_loaded"], loaded
    assert loaded["heavy_modules"] == [] and loaded["heavy_importable"] == [], loaded
    with np.load(tmp / "out.npz") as z:
        np.testing.assert_allclose(z[z.files[0]], np.load(tmp / "ref.npy"), rtol=1e-6, atol=1e-6)
