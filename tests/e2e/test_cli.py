"""The graphc command line: compile / run / inspect / targets, and one-line errors with exit codes."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from graphc.cli import main
from graphc.examples import seeds


@pytest.fixture(scope="module")
def mlp_onnx(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    model = seeds.torch_mlp(seed=0)
    x = seeds.random_input(seeds.MLP_INPUT, seed=3)
    path = seeds.export_onnx(model, x, str(d / "mlp.onnx"))
    np.save(d / "x.npy", x)
    return d, path


def test_help_lists_every_command(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    for cmd in ("compile", "run", "inspect", "targets"):
        assert cmd in out


def test_compile_run_inspect(mlp_onnx, capsys):
    d, path = mlp_onnx
    art = str(d / "mlp.gca")
    assert main(["compile", path, "--target", "x86", "-o", art, "--time-passes"]) == 0
    out = capsys.readouterr().out
    assert "compiled" in out and "mlp.gca" in out and "fold_constants" in out
    assert main(["run", art, "--input", f"x={d / 'x.npy'}", "--bench", "5", "--save", str(d / "out.npz")]) == 0
    out = capsys.readouterr().out
    assert "logits: f32[64,10]" in out and "latency: median" in out
    assert np.load(d / "out.npz")["logits"].shape == (64, 10)
    assert main(["inspect", path]) == 0
    assert "graph @" in capsys.readouterr().out
    assert main(["inspect", path, "--dot"]) == 0
    assert capsys.readouterr().out.startswith("digraph")
    assert main(["inspect", art]) == 0
    assert "kernel" in capsys.readouterr().out
    assert main(["targets"]) == 0
    assert "x86" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv,message",
    [
        (["compile", "missing.onnx"], "missing.onnx"),
        (["compile", "{model}", "--target", "quantum"], "unknown target 'quantum'"),
        (["run", "missing.gca"], "no such artifact"),
        (["run", "{art}"], "missing input 'x'"),
        (["run", "{art}", "--input", "y={x}"], "no input named 'y'"),
        (["run", "{art}", "--input", "x={bad}"], "cannot read"),
    ],
)
def test_errors_are_one_line_with_nonzero_exit(argv, message, mlp_onnx, tmp_path, capsys):
    d, path = mlp_onnx
    art = d / "mlp_err.gca"
    if not art.exists():
        main(["compile", path, "-o", str(art)])
        capsys.readouterr()
    (tmp_path / "bad.npy").write_text("not numpy")
    argv = [a.format(model=path, art=art, x=d / "x.npy", bad=tmp_path / "bad.npy") for a in argv]
    code = main(argv)
    err = capsys.readouterr().err
    assert code != 0
    assert message in err
    assert err.count("\n") == 1 and err.startswith("graphc: error:"), err


def test_usage_errors_exit_2():
    res = subprocess.run([sys.executable, "-m", "graphc.cli", "compile"], capture_output=True, text=True)
    assert res.returncode == 2 and "graphc: error:" in res.stderr
    res = subprocess.run([sys.executable, "-m", "graphc.cli", "frobnicate"], capture_output=True, text=True)
    assert res.returncode == 2 and "invalid choice" in res.stderr


def test_verbose_shows_traceback(capsys):
    assert main(["--verbose", "run", "missing.gca"]) == 1
    assert "Traceback" in capsys.readouterr().err


def test_pass_debugging_options(mlp_onnx, tmp_path, capsys):
    d, path = mlp_onnx
    dump = tmp_path / "ir"
    art = str(tmp_path / "m.gca")
    assert main(["compile", path, "-o", art, "-O2", "--print-after", "fuse_groups", "--dump-ir", str(dump), "--verify-numerics"]) == 0
    out = capsys.readouterr().out
    assert "IR after fuse_groups" in out and "fused[dense_epilogue]" in out
    files = sorted(p.name for p in dump.iterdir())
    assert files[0] == "00_input.gir" and any(f.endswith("_fuse_groups.gir") for f in files)
    assert main(["compile", path, "-o", art, "-O0"]) == 0
    assert main(["inspect", path, "-O0"]) == 0
    assert "fused" not in capsys.readouterr().out


def test_explain_fusion(mlp_onnx, capsys, tmp_path):
    from graphc.examples import seeds

    cnn = seeds.torch_cnn(0)
    path = seeds.export_onnx(cnn, seeds.random_input((2, 1, 28, 28)), str(tmp_path / "cnn.onnx"))
    assert main(["inspect", path, "--explain-fusion"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == "fused groups: 3 (conv_bias_relu_pool x2, dense_epilogue x1)"
    assert out.count("conv2d -> max_pool2d -> add -> relu") == 2  # the max pool commutes with bias and ReLU
    assert "near misses: 0" in out
