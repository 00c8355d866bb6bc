"""ARM (aarch64 Linux, NEON) code generation.

* every op sample's kernel gets a real schedule for 128-bit NEON, compiles for aarch64, links
  with the cross compiler and - run under qemu, with the TVM runtime alone - computes what
  the numpy reference does (the samples are split into chunks, each one library and one
  emulator start, so the two test workers share the work);
* the models' fused kernels are parallel and vectorized for ARM as for x86;
* the generated assembly uses NEON vector registers (fmla on .4s vectors in the GEMM/conv
  micro-kernels and flash attention);
* `--target arm` options and a missing cross compiler are clear errors.
"""
from __future__ import annotations

import re

import numpy as np
import pytest
import tvm
from tvm import tirx

import graphc
from graphc import ops
from graphc.codegen.lower import lower_kernel
from graphc.codegen.module import build_relax_module
from graphc.codegen.schedule import schedule_kernel
from graphc.errors import TargetError
from graphc.examples import hf_models, seeds
from graphc.ir import GraphBuilder, TensorType
from graphc.passes.pipeline import optimize
from graphc.targets import ARM_CC_ENV, resolve
from graphc.tensor import Tensor
from tests.conftest import assert_close
from tests.ops.test_registry import cases, one_node_graph, samples_of

CHUNKS = 4
EM_AARCH64 = 183  # ELF e_machine of an aarch64 object


@pytest.fixture(scope="module")
def arm():
    return resolve("arm")


@pytest.fixture(scope="module")
def machine():
    from graphc.testing import qemu

    return qemu.arm64_machine()


def _build_library(funcs: dict[str, tirx.PrimFunc], target, path):
    """One aarch64 shared library holding every PrimFunc (one LLVM run, one link)."""
    mod = tvm.IRModule({tvm.ir.GlobalVar(n): f.with_attr("global_symbol", n) for n, f in funcs.items()})
    lib = tvm.tirx.build(mod, target.tvm_target())
    lib.export_library(str(path), **target.export_options())
    return lib


def _elf_machine(path) -> int:
    with open(path, "rb") as f:
        head = f.read(20)
    assert head[:4] == b"\x7fELF", f"{path} is not an ELF file"
    return int.from_bytes(head[18:20], "little")


@pytest.mark.slow
@pytest.mark.parametrize("chunk", range(CHUNKS))
def test_every_op_sample_compiles_and_runs_on_aarch64(chunk, arm, machine, tmp_path):
    funcs, kernel_args, checks = {}, {}, []
    for i, case in enumerate(cases()):
        if i % CHUNKS != chunk:
            continue
        name, idx = case.values
        sample = samples_of(name)[idx]
        g = one_node_graph(name, sample)
        kname = f"k{i}"
        kernel = lower_kernel(g.nodes[-1], kname)
        func, notes = schedule_kernel(kernel, arm)
        assert not [n for n in notes if "unscheduled" in n], (name, idx, notes)
        funcs[kname] = func
        for j, v in enumerate(kernel.args):
            kernel_args[f"{kname}/in{j}"] = np.asarray(sample.inputs[next(k for k, gi in enumerate(g.inputs) if gi is v)])
        expected = graphc.run_graph(g, *sample.inputs)
        for j, e in enumerate(expected):
            kernel_args[f"{kname}/out{j}"] = np.zeros_like(e)
        checks.append((kname, f"{name}-{idx}", sample, expected))
    lib_path = tmp_path / "ops.so"
    _build_library(funcs, arm, lib_path)
    assert _elf_machine(lib_path) == EM_AARCH64
    results = machine.run_kernels(lib_path, kernel_args, work=tmp_path)
    failures = []
    for kname, case_id, sample, expected in checks:
        if f"{kname}/error" in results:
            failures.append(f"{case_id}: {results[f'{kname}/error']}")
            continue
        for j, e in enumerate(expected):
            try:
                assert_close(results[f"{kname}/out{j}"], e, rtol=sample.rtol, atol=sample.atol, what=f"{case_id} output {j}")
            except AssertionError as err:
                failures.append(str(err).strip().splitlines()[0] + " " + " ".join(str(err).split())[:300])
    assert not failures, f"{len(failures)} of {len(checks)} op samples differ on aarch64:\n" + "\n".join(failures)


def _model_kernels(graph, target):
    graph, _ = optimize(graph, 2, log=lambda *a: None)
    build = build_relax_module(graph, target)
    return build, {gv.name_hint: f for gv, f in build.mod.functions.items() if isinstance(f, tirx.PrimFunc)}


def _assert_parallel_and_vectorized(funcs):
    for name, f in funcs.items():
        text = f.script()
        out_elems = int(np.prod([int(d) for d in f.params[-1].shape])) if f.params[-1].shape else 1
        if out_elems >= 4096:
            assert "T.parallel(" in text, f"{name} ({out_elems} outputs) is not parallel"
        assert "T.vectorized(" in text or out_elems < 2, f"{name} is not vectorized"


def test_seed_cnn_kernels_are_neon_scheduled(arm):
    model = seeds.torch_cnn(0)
    g = graphc.trace(seeds.graphc_cnn(seeds.state_dict_numpy(model)), seeds.random_input(seeds.CNN_INPUT))
    build, funcs = _model_kernels(g, arm)
    notes = [n for k in build.kernels for n in k.notes]
    assert notes.count("conv2d: blocked") == 2 and notes.count("dense: blocked") == 1, notes
    _assert_parallel_and_vectorized(funcs)


def test_bert_kernels_are_neon_scheduled(arm):
    module, inputs = hf_models.build("bert", small=True)
    build, funcs = _model_kernels(graphc.from_torch(module, inputs), arm)
    notes = [n for k in build.kernels for n in k.notes]
    assert "attention: flash (online softmax)" in notes, notes
    assert not [n for n in notes if "unscheduled" in n or "generic" in n], notes
    _assert_parallel_and_vectorized(funcs)


def _asm(funcs: dict, target, tmp_path) -> str:
    lib = _build_library(funcs, target, tmp_path / "asm.so")
    assert _elf_machine(tmp_path / "asm.so") == EM_AARCH64
    return "\n".join(m.inspect_source("asm") for m in [lib, *lib.imports] if m.kind == "llvm")


def _single_kernel(graph, target):
    build, funcs = _model_kernels(graph, target)
    assert len(funcs) == 1, list(funcs)
    return funcs


def _graph(shapes, fn):
    b = GraphBuilder("neon")
    xs = [Tensor(b.input(f"x{i}", TensorType("f32", s))) for i, s in enumerate(shapes)]
    with b:
        y = fn(*xs)
    return b.build([y.value])


FMLA_4S = re.compile(r"\bfmla\s+v\d+\.4s")
NEON_4S = re.compile(r"\b[a-z]+\s+v\d+\.4s")


@pytest.mark.parametrize(
    "what,shapes,fn,pattern",
    [
        ("dense+bias+relu", [(64, 256)], lambda x: ops.relu(ops.linear(x, graphc.param("w", np.ones((128, 256), np.float32)))
                                                           + np.ones(128, np.float32)), FMLA_4S),
        ("conv2d", [(1, 8, 16, 16)], lambda x: ops.conv2d(x, graphc.param("w", np.ones((16, 8, 3, 3), np.float32)), pad=[1, 1, 1, 1]),
         FMLA_4S),
        ("batched matmul", [(4, 32, 64), (4, 64, 32)], lambda a, b: ops.matmul(a, b), FMLA_4S),
        ("elementwise exp*x", [(64, 256)], lambda x: ops.exp(x) * x, NEON_4S),
        ("softmax", [(64, 256)], lambda x: ops.softmax(x, axis=-1), NEON_4S),
    ],
    ids=["dense", "conv2d", "matmul", "elementwise", "softmax"],
)
def test_generated_code_uses_neon(what, shapes, fn, pattern, arm, tmp_path):
    funcs = _single_kernel(_graph(shapes, fn), arm)
    asm = _asm(funcs, arm, tmp_path)
    hits = pattern.findall(asm)
    assert len(hits) >= 4, f"{what}: expected NEON .4s vector instructions ({pattern.pattern}), found {hits[:5]}"
    assert not re.search(r"%[xy]mm\d", asm), f"{what}: x86 registers in ARM assembly"


def test_flash_attention_template_uses_neon(arm, tmp_path):
    from graphc.codegen.kernels.attention_cpu import AttentionShapes, flash_attention_cpu

    shapes = AttentionShapes((2, 4, 64, 32), (2, 4, 32, 64), (2, 4, 64, 32), None, None, (2, 4, 64, 32))
    func = flash_attention_cpu(shapes, 0.125, False, lanes=arm.vector_bits // 32)
    asm = _asm({"attn": func}, arm, tmp_path)
    assert len(FMLA_4S.findall(asm)) >= 8, "flash attention's score and P@V loops should be NEON fmla"


# ---------------------------------------------------------------------------------------
# the target's options and toolchain errors
# ---------------------------------------------------------------------------------------
def test_default_core_and_features():
    t = resolve("arm")
    assert (t.kind, t.mtriple, t.mcpu, t.vector_bits) == ("arm", "aarch64-linux-gnu", "cortex-a72", 128)
    assert set(t.features) == {"fp", "asimd"}  # ARMv8.0-A + NEON: runs on any 64-bit ARM Linux machine
    n1 = resolve("arm", cpu="neoverse-n1")
    assert {"asimd", "asimddp", "atomics"} <= set(n1.features)
    assert n1.tvm_target().attrs["mcpu"] == "neoverse-n1"


def test_unknown_core_is_a_clear_error():
    with pytest.raises(TargetError, match=r"--cpu 'pentium4' is not an AArch64 core.*cortex-a72"):
        resolve("arm", cpu="pentium4")


def test_cpu_option_on_x86_is_a_clear_error():
    with pytest.raises(TargetError, match="--cpu"):
        resolve("x86", cpu="cortex-a72")


def test_missing_cross_compiler_says_what_to_install(monkeypatch, tmp_path):
    missing = str(tmp_path / "no-such-dir" / "aarch64-linux-gnu-gcc")
    monkeypatch.setenv(ARM_CC_ENV, missing)
    with pytest.raises(TargetError, match=r"not installed.*apt-get install gcc-aarch64-linux-gnu"):
        resolve("arm")


def test_cross_compiler_removed_before_export_is_a_clear_error(monkeypatch, tmp_path):
    g = _graph([(8, 16)], lambda x: ops.tanh(x))
    compiled = graphc.compile(g, target="arm", log=lambda *a: None)
    monkeypatch.setenv(ARM_CC_ENV, str(tmp_path / "gone-gcc"))
    with pytest.raises(TargetError, match="gcc-aarch64-linux-gnu"):
        compiled.save(str(tmp_path / "m.gca"))


def test_cli_missing_cross_compiler(monkeypatch, tmp_path, capsys):
    from graphc.cli import main

    g = _graph([(8, 16)], lambda x: ops.tanh(x))
    (tmp_path / "m.gir").write_text(str(g))
    monkeypatch.setenv(ARM_CC_ENV, "aarch64-nonexistent-gcc")
    assert main(["compile", str(tmp_path / "m.gir"), "--target", "arm", "-o", str(tmp_path / "m.gca")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("graphc: error:") and "apt-get install gcc-aarch64-linux-gnu" in err and "Traceback" not in err


def test_targets_command_lists_arm_and_its_toolchain(capsys):
    from graphc.cli import main

    assert main(["targets"]) == 0
    out = capsys.readouterr().out
    arm_line = next(line for line in out.splitlines() if line.startswith("arm"))
    assert "NEON" in arm_line and "gcc-aarch64-linux-gnu" in arm_line and "--cpu" in arm_line
