"""Train steps for other targets: ARM (run by `graphc train` on an emulated aarch64 machine with the
TVM runtime alone) and CUDA (compile-only here: nvcc-built device code in the artifact)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from graphc.examples.train_models import CASES, OPTIMIZERS, batches, torch_step
from graphc.runtime.artifact import read_artifact
from graphc.runtime.train import read_checkpoint
from graphc.training import compile_train_step

QUIET = {"log": lambda *a: None}
FATBIN_MAGIC = b"\x50\xed\x55\xba"  # the header of an nvcc fatbin


def _rel(a, b) -> float:
    return float(np.abs(a - b).max() / np.abs(b).max())


def test_mlp_trains_on_emulated_arm_like_x86_and_torch(tmp_path):
    from graphc.testing import qemu

    case, (spec, torch_opt) = CASES["mlp"], OPTIMIZERS["sgd_momentum"]
    data = batches(case, 3)
    example = (torch.from_numpy(data[0][0]),)
    arm = compile_train_step(case.make(), loss=case.loss, optimizer=spec, target="arm", example_inputs=example, **QUIET)
    art = arm.save(str(tmp_path / "train.gca"))
    names = [s.name for s in arm.layout.data + arm.layout.targets]
    np.savez(tmp_path / "data.npz", **{n: np.concatenate([b[i] for b in data]) for i, n in enumerate(names)})
    ckpt = tmp_path / "ckpt.gtc"
    run = qemu.arm64_machine().run_graphc(["train", art, "--data", str(tmp_path / "data.npz"), "--steps", "3", "--no-shuffle",
                                           "--no-progress", "--checkpoint", str(ckpt)], work=Path(tmp_path))
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.report["machine"] == "aarch64" and not run.report["tvm_compiler_loaded"], run.report
    arm_losses = [float(line.split(" loss ")[1].split()[0]) for line in run.stdout.splitlines() if line.startswith("step ")]

    x86 = compile_train_step(case.make(), loss=case.loss, optimizer=spec, target="x86", example_inputs=example, **QUIET).session()
    x86_losses = [x86.step(x, y) for x, y in data]
    ref = case.make()
    opt = torch_opt(ref.parameters())
    torch_losses = [torch_step(ref, opt, case, x, y) for x, y in data]
    np.testing.assert_allclose(arm_losses, x86_losses, rtol=1e-5)  # printed with 6 decimals
    np.testing.assert_allclose(arm_losses, torch_losses, rtol=1e-4)
    manifest, arrays = read_checkpoint(str(ckpt))
    assert manifest["step"] == 3
    for name, p in ref.named_parameters():
        assert _rel(arrays[f"param:{name}"], x86.params[name]) <= 1e-5, name
        assert _rel(arrays[f"param:{name}"], p.detach().numpy()) <= 1e-4, name


@pytest.mark.parametrize("model", ["mlp", pytest.param("bert", marks=pytest.mark.slow)])
def test_train_step_compiles_for_cuda(model, tmp_path):
    case = CASES[model]
    step = compile_train_step(case.make(), loss=case.loss, optimizer="adamw", target="cuda",
                              example_inputs=(torch.from_numpy(batches(case, 1)[0][0]),), **QUIET)
    art = read_artifact(step.save(str(tmp_path / "train.gca")))
    assert art.target["kind"] == "cuda" and art.meta["kind"] == "train"
    assert FATBIN_MAGIC in art.lib, "no nvcc-built device code in the artifact"
    kernels = {k.name.split("_", 1)[1] for k in step.build.kernels}
    assert "adam_update" in kernels and kernels & {"cross_entropy", "mse_loss"}, sorted(kernels)
    if model == "bert":
        assert "attention" in kernels, sorted(kernels)  # the forward attention stays one fused kernel in the train step
