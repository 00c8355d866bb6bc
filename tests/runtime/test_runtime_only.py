"""An artifact loads and runs with the TVM runtime alone: no libtvm_compiler.so, no torch, no onnx.

The test builds a site directory where `tvm` is the installed package minus its
compiler library (every other file symlinked) and runs a fresh interpreter with
TVM_USE_RUNTIME_LIB=1 that imports graphc.runtime from the checkout.
"""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np

import graphc
from graphc import ops
from graphc.ir import GraphBuilder, TensorType
from graphc.tensor import Tensor

REPO = Path(__file__).resolve().parents[2]


def _runtime_only_site(tmp: Path) -> Path:
    import tvm
    import tvm_ffi

    site = tmp / "site"
    site.mkdir()
    tvm_src = Path(tvm.__file__).parent
    for root, dirs, files in os.walk(tvm_src):
        rel = Path(root).relative_to(tvm_src)
        (site / "tvm" / rel).mkdir(parents=True, exist_ok=True)
        for f in files:
            if f == "libtvm_compiler.so" or f.endswith(".pyc"):
                continue
            os.symlink(Path(root) / f, site / "tvm" / rel / f)
    os.symlink(Path(tvm_ffi.__file__).parent, site / "tvm_ffi")
    # graphc from the checkout, with the package-dir mapping the install would do
    pkg = site / "graphc"
    pkg.mkdir()
    for item in (REPO / "graphc").iterdir():
        os.symlink(item, pkg / item.name)
    os.symlink(REPO / "runtime", pkg / "runtime")
    os.symlink(REPO / "passes", pkg / "passes")
    return site


def test_artifact_runs_without_the_compiler(tmp_path):
    b = GraphBuilder("rt")
    x = Tensor(b.input("x", TensorType("f32", (4, 16))))
    with b:
        y = ops.tanh(x * np.linspace(0, 1, 16, dtype=np.float32)) + 1.0
    g = b.build([y.value])
    path = graphc.compile(g, target="x86").save(str(tmp_path / "rt.gca"))
    xin = np.random.default_rng(1).standard_normal((4, 16)).astype(np.float32)
    np.save(tmp_path / "x.npy", xin)
    np.save(tmp_path / "ref.npy", graphc.run_graph(g, xin)[0])
    site = _runtime_only_site(tmp_path)
    script = textwrap.dedent(
        f"""
        import sys
        sys.path = [p for p in sys.path if "site-packages" not in p or "numpy" in p]
        import numpy as np, importlib.util
        import graphc.runtime as rt
        sess = rt.load({str(path)!r})
        out = sess.run(np.load({str(tmp_path / "x.npy")!r}))[0]
        np.testing.assert_allclose(out, np.load({str(tmp_path / "ref.npy")!r}), rtol=1e-6, atol=1e-6)
        loaded = [m for m in sys.modules if m.split(".")[0] in ("torch", "onnx", "onnxruntime")]
        assert not loaded, loaded
        maps = open("/proc/self/maps").read()
        assert "libtvm_compiler" not in maps and "libtvm_runtime" in maps
        assert importlib.util.find_spec("torch") is None, "torch should not be importable here"
        print("RUNTIME-ONLY OK")
        """
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    numpy_dir = Path(np.__file__).parent.parent
    env.update(TVM_USE_RUNTIME_LIB="1", PYTHONPATH=f"{site}:{tmp_path / 'np'}", PYTHONNOUSERSITE="1")
    (tmp_path / "np").mkdir()
    for name in os.listdir(numpy_dir):  # numpy and the tiny pure-python deps tvm_ffi needs, nothing else
        if name.startswith(("numpy", "typing_extensions", "ml_dtypes")):
            os.symlink(numpy_dir / name, tmp_path / "np" / name)
    res = subprocess.run([sys.executable, "-S", "-c", script], env=env, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert "RUNTIME-ONLY OK" in res.stdout, res.stdout + res.stderr
