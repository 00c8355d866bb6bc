"""Every CLI mistake gives one readable line and a non-zero exit code; --verbose shows details."""
from __future__ import annotations

import numpy as np
import pytest

from graphc.cli import main


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli_errors")
    (d / "garbage.onnx").write_bytes(b"\x08\x01\x12\x03abc\xff\xff")
    (d / "empty.onnx").write_bytes(b"")
    (d / "notes.txt").write_text("not a model")
    (d / "bad.gir").write_text("graph @g(%x: f32[2]) {\n  %0: f32[2] = frobnicate(%x)\n  return %0\n}\n")
    (d / "ok.gir").write_text("graph @g(%x: f32[2]) {\n  %0: f32[2] = relu(%x)\n  return %0\n}\n")
    assert main(["compile", str(d / "ok.gir"), "-o", str(d / "ok.gca")]) == 0
    data = (d / "ok.gca").read_bytes()
    (d / "truncated.gca").write_bytes(data[: len(data) // 3])
    np.save(d / "wrong_shape.npy", np.zeros((3,), np.float32))
    np.save(d / "wrong_dtype.npy", np.zeros((2,), np.int64))
    return d


CASES = [
    (["compile", "{d}/garbage.onnx"], "garbage.onnx"),
    (["compile", "{d}/empty.onnx"], "empty.onnx"),
    (["compile", "{d}/notes.txt"], "unknown model format"),
    (["compile", "{d}/bad.gir"], "unknown op 'frobnicate'"),
    (["inspect", "{d}/garbage.onnx"], "not a valid ONNX file"),
    (["run", "{d}/truncated.gca", "--random"], "truncated"),
    (["run", "{d}/ok.gca", "--input", "x={d}/wrong_shape.npy"], "input 'x': expected shape [2], got [3]"),
    (["run", "{d}/ok.gca", "--input", "x={d}/wrong_dtype.npy"], "input 'x': expected dtype f32, got i64"),
    (["run", "{d}/ok.gca", "--input", "x={d}/missing.npy"], "cannot read"),
    (["inspect", "{d}/missing.gca"], "no such artifact"),
]


@pytest.mark.parametrize("argv,message", CASES, ids=[" ".join(c[0][:2]) + f"-{i}" for i, c in enumerate(CASES)])
def test_mistakes_give_one_line_and_nonzero_exit(argv, message, files, capsys):
    code = main([a.format(d=files) for a in argv])
    err = capsys.readouterr().err
    assert code != 0
    assert err.startswith("graphc: error:") and err.count("\n") == 1, err
    assert message in err, err


def test_verbose_adds_the_details(files, capsys):
    assert main(["--verbose", "compile", str(files / "garbage.onnx")]) == 1
    err = capsys.readouterr().err
    assert "Traceback" in err and "graphc: error:" in err
