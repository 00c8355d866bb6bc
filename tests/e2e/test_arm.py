"""Models compiled for ARM (aarch64, NEON) and run on an emulated aarch64 Linux machine.

Each model is compiled with `--target arm`, saved as an artifact and run by `graphc run
--device cpu` inside `qemu-aarch64` with Debian's arm64 Python and the TVM runtime alone
(`graphc.testing.qemu`: no libtvm_compiler.so, no torch, no onnx). Its outputs must match
the same model compiled for x86 (bit-for-bit is not required: NEON's vector width changes
the order of some reductions) and the PyTorch / reference-interpreter outputs. Timings
under emulation mean nothing; numerics do.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

import graphc
from graphc import ops
from graphc.cli import main as graphc_main
from graphc.examples import hf_models, seeds
from graphc.ir import GraphBuilder, TensorType
from graphc.targets import resolve
from graphc.tensor import Tensor

TOL_X86 = 1e-5  # max abs diff to the x86-compiled outputs, relative to the output scale
TOL_REF = 1e-4  # ... to PyTorch / the interpreter (as the x86 end-to-end tests)
QUIET = {"log": lambda *a, **k: None}


@pytest.fixture(scope="module")
def machine():
    from graphc.testing import qemu

    return qemu.arm64_machine()


def _check(name, outputs, expected, tol):
    assert len(outputs) == len(expected), name
    diffs = []
    for i, (a, e) in enumerate(zip(outputs, expected)):
        assert a.shape == e.shape and a.dtype == e.dtype, f"{name} output {i}: {a.dtype}{a.shape} != {e.dtype}{e.shape}"
        scale = max(1.0, float(np.max(np.abs(e))))
        diff = float(np.max(np.abs(a.astype(np.float64) - e)))
        assert diff <= tol * scale, f"{name} output {i}: max abs diff {diff:.3g} > {tol * scale:.3g}"
        diffs.append(diff)
    print(f"{name}: max abs diffs {['%.3g' % d for d in diffs]}")


def _assert_runtime_only(run):
    r = run.report
    assert r["machine"] == "aarch64", r
    assert r["tvm_runtime_loaded"] and not r["tvm_compiler_loaded"], r
    assert r["heavy_modules"] == [] and r["heavy_importable"] == [], r


def test_seed_mlp_on_arm(machine, tmp_path):
    model = seeds.torch_mlp(seed=0)
    x = seeds.random_input(seeds.MLP_INPUT, seed=2)
    g = graphc.trace(seeds.graphc_mlp(seeds.state_dict_numpy(model)), x)
    x86_out = graphc.compile(g, target="x86", **QUIET).session().run(x)
    path = graphc.compile(g, target="arm", **QUIET).save(str(tmp_path / "mlp.gca"))
    run = machine.run_artifact(path, {"x": x})
    _assert_runtime_only(run)
    _check("mlp vs x86", run.outputs, x86_out, TOL_X86)
    _check("mlp vs interpreter", run.outputs, graphc.run_graph(g, x), TOL_REF)
    with torch.no_grad():
        _check("mlp vs torch", run.outputs, [model(torch.from_numpy(x)).numpy()], TOL_REF)


@pytest.mark.slow
def test_seed_cnn_on_arm_through_onnx_and_the_cli(machine, tmp_path, capsys):
    model = seeds.torch_cnn(seed=0)
    x = seeds.random_input(seeds.CNN_INPUT, seed=1)
    onnx_path = seeds.export_onnx(model, x, str(tmp_path / "cnn.onnx"))
    gca = str(tmp_path / "cnn.gca")
    assert graphc_main(["compile", onnx_path, "--target", "arm", "--cpu", "cortex-a72", "-o", gca]) == 0
    assert "arm (cortex-a72, 128-bit vectors" in capsys.readouterr().out
    art = graphc.runtime.read_artifact(gca)
    assert (art.target["kind"], art.target["mcpu"], art.target["mtriple"]) == ("arm", "cortex-a72", "aarch64-linux-gnu")
    run = machine.run_artifact(gca, {"x": x})
    _assert_runtime_only(run)
    assert "logits: f32[64,10]" in run.stdout
    x86_out = graphc.compile(graphc.from_onnx(onnx_path), target="x86", **QUIET).session().run(x)
    _check("cnn vs x86", run.outputs, x86_out, TOL_X86)
    with torch.no_grad():
        _check("cnn vs torch", run.outputs, [model(torch.from_numpy(x)).numpy()], TOL_REF)


@pytest.mark.slow
def test_bert_on_arm(machine, tmp_path):
    module, inputs = hf_models.build("bert", small=True)
    compiled = graphc.compile(module, target="arm", example_inputs=inputs, **QUIET)
    assert "attention: flash (online softmax)" in [n for k in compiled.build.kernels for n in k.notes]
    path = compiled.save(str(tmp_path / "bert.gca"))
    run = machine.run_artifact(path, inputs)
    _assert_runtime_only(run)
    x86_out = graphc.compile(module, target="x86", example_inputs=inputs, **QUIET).session().run(**inputs)
    _check("bert vs x86", run.outputs, x86_out, TOL_X86)
    _check("bert vs torch", run.outputs, hf_models.reference(module, inputs), TOL_REF)


# ---------------------------------------------------------------------------------------
# artifacts that must not run there
# ---------------------------------------------------------------------------------------
def _tiny_graph():
    b = GraphBuilder("tiny")
    x = Tensor(b.input("x", TensorType("f32", (4, 16))))
    with b:
        y = ops.tanh(x * np.linspace(0, 1, 16, dtype=np.float32)) + 1.0
    return b.build([y.value])


def test_x86_artifact_is_refused_on_arm(machine, tmp_path):
    path = graphc.compile(_tiny_graph(), target="x86", **QUIET).save(str(tmp_path / "x86.gca"))
    run = machine.run_graphc(["run", path, "--random"], work=tmp_path)
    assert run.returncode == 1, run.stdout + run.stderr
    assert run.stderr.startswith("graphc: error:") and "compiled for x86-64" in run.stderr and "aarch64" in run.stderr
    assert "Traceback" not in run.stderr


def test_newer_core_artifact_needs_its_cpu_features(machine, tmp_path):
    """Code for a Neoverse-N1 (ARMv8.2: dot product, LSE atomics...) is refused by an ARMv8.0
    Cortex-A72 with the features it lacks named, and runs on a Neoverse-N1."""
    g = _tiny_graph()
    x = np.random.default_rng(0).standard_normal((4, 16)).astype(np.float32)
    path = graphc.compile(g, target=resolve("arm", cpu="neoverse-n1"), **QUIET).save(str(tmp_path / "n1.gca"))
    refused = machine.run_graphc(["run", path, "--random"], work=tmp_path, cpu="cortex-a72")
    assert refused.returncode == 1 and "needs CPU features" in refused.stderr and "asimddp" in refused.stderr, refused.stderr
    run = machine.run_artifact(path, {"x": x}, cpu="neoverse-n1")
    _check("neoverse-n1 vs interpreter", run.outputs, graphc.run_graph(g, x), TOL_REF)


# ---------------------------------------------------------------------------------------
# a remote aarch64 device through TVM RPC: tracker on this machine, the server under qemu
# ---------------------------------------------------------------------------------------
def test_rpc_to_an_emulated_arm_device(machine, tmp_path):
    """`graphc.runtime.rpc_server` on the runtime-only aarch64 machine (emulating a Cortex-A72)
    serves an ARM artifact through a loopback tracker; the client refuses code the device cannot
    run (x86, or a Neoverse-N1's extra instructions) with graphc's error, asked of the device."""
    import functools

    from graphc.errors import TargetError
    from graphc.remote import connect
    from graphc.testing.rpc import local_tracker, rpc_server

    g = _tiny_graph()
    x = np.random.default_rng(3).standard_normal((4, 16)).astype(np.float32)
    compiled = graphc.compile(g, target="arm", **QUIET)
    path = compiled.save(str(tmp_path / "arm.gca"))
    x86_path = graphc.compile(g, target="x86", **QUIET).save(str(tmp_path / "x86.gca"))
    n1_path = graphc.compile(g, target=resolve("arm", cpu="neoverse-n1"), **QUIET).save(str(tmp_path / "n1.gca"))
    x86_out = graphc.runtime.load(x86_path).run(x)
    start = functools.partial(machine.popen, work=tmp_path, cpu="cortex-a72")
    with local_tracker() as port, rpc_server(port, "arm64", start):
        tracker = f"127.0.0.1:{port}"
        with connect(path, tracker, "arm64") as sess:
            out = sess.run(x)
            stats = sess.benchmark(x, repeat=3, warmup=1)
        _check("rpc arm vs x86", out, x86_out, TOL_X86)
        _check("rpc arm vs interpreter", out, graphc.run_graph(g, x), TOL_REF)
        assert stats["median_ms"] > 0  # (emulated: the number means nothing, that it comes back does)
        with pytest.raises(TargetError, match=r"remote device 'arm64': artifact was compiled for x86-64.*aarch64"):
            connect(x86_path, tracker, "arm64", wait=30)
        with pytest.raises(TargetError, match=r"remote device 'arm64'.*needs CPU features.*asimddp"):
            connect(n1_path, tracker, "arm64", wait=30)
