"""`graphc compile --train` and `graphc train`: a train artifact from an ONNX file, trained from a
.npz dataset with a progress line, checkpointed and resumed; mistakes are one-line errors."""
from __future__ import annotations

import contextlib
import io

import numpy as np
import pytest
import torch

from graphc.cli import main
from graphc.examples import seeds
from graphc.runtime.train import load_train, read_checkpoint


@pytest.fixture(scope="module")
def train_artifact(tmp_path_factory):
    d = tmp_path_factory.mktemp("train_cli")
    x = seeds.random_input(seeds.MLP_INPUT, seed=3)
    onnx_path = seeds.export_onnx(seeds.torch_mlp(seed=0), x, str(d / "mlp.onnx"))
    art = str(d / "train.gca")
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert main(["compile", onnx_path, "--train", "--loss", "cross_entropy:label_smoothing=0.05", "--optimizer", "adamw:lr=1e-3",
                     "-o", art]) == 0
    rng = np.random.default_rng(0)
    np.savez(d / "data.npz", x=rng.standard_normal((256, 784)).astype(np.float32), target=rng.integers(0, 10, 256))
    return d, art, printed.getvalue()


def test_compile_train_then_train_with_checkpoint_and_resume(train_artifact, capsys):
    d, art, out = train_artifact
    assert "train step" in out and "4 parameters" in out and "adamw" in out and "cross_entropy" in out
    ckpt = str(d / "ckpt.gtc")
    assert main(["train", art, "--data", str(d / "data.npz"), "--steps", "6", "--no-progress", "--checkpoint", ckpt]) == 0
    out = capsys.readouterr().out
    assert "step 6/6 loss" in out and "trained 6 steps (now at step 6" in out and "checkpoint written" in out
    manifest, arrays = read_checkpoint(ckpt)
    assert manifest["step"] == 6 and manifest["optimizer"] == "adamw" and "state:0.weight:exp_avg_sq" in arrays
    assert main(["train", art, "--data", str(d / "data.npz"), "--steps", "2", "--no-progress", "--resume", ckpt]) == 0
    assert "now at step 8" in capsys.readouterr().out


def test_cli_training_equals_the_python_session(train_artifact, capsys):
    """`graphc train --no-shuffle` takes the batches in file order: the same as stepping a session by hand."""
    d, art, _ = train_artifact
    ckpt = str(d / "cli.gtc")
    assert main(["train", art, "--data", str(d / "data.npz"), "--steps", "3", "--no-shuffle", "--no-progress", "--checkpoint", ckpt]) == 0
    capsys.readouterr()
    data = np.load(d / "data.npz")
    sess = load_train(art)
    ref = seeds.torch_mlp(seed=0).train()
    opt = torch.optim.AdamW(ref.parameters(), lr=1e-3)
    for k in range(3):
        x, y = data["x"][64 * k : 64 * (k + 1)], data["target"][64 * k : 64 * (k + 1)]
        ours = sess.step(x, y)
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(ref(torch.from_numpy(x)), torch.from_numpy(y), label_smoothing=0.05)
        loss.backward()
        opt.step()
        np.testing.assert_allclose(ours, loss.item(), rtol=1e-5)
    _, arrays = read_checkpoint(ckpt)
    for name, value in sess.params.items():
        np.testing.assert_array_equal(arrays[f"param:{name}"], value)


def test_train_mistakes_are_one_line_errors(train_artifact, capsys, tmp_path):
    d, art, _ = train_artifact
    np.savez(tmp_path / "wrong.npz", x=np.zeros((128, 784), np.float32))
    assert main(["train", art, "--data", str(tmp_path / "wrong.npz"), "--steps", "1"]) == 1
    err = capsys.readouterr().err
    assert "wrong.npz: no array named target" in err and "Traceback" not in err
    np.savez(tmp_path / "shape.npz", x=np.zeros((128, 100), np.float32), target=np.zeros(128, np.int64))
    assert main(["train", art, "--data", str(tmp_path / "shape.npz"), "--steps", "1"]) == 1
    assert "array 'x' is [128, 100]" in capsys.readouterr().err
    assert main(["train", str(d / "mlp.onnx"), "--data", str(d / "data.npz")]) == 1
    assert "graphc: error:" in capsys.readouterr().err
    assert main(["compile", str(d / "mlp.onnx"), "--train", "--optimizer", "sgd:momentum=fast", "-o", str(tmp_path / "x.gca")]) == 1
    assert "momentum" in capsys.readouterr().err
