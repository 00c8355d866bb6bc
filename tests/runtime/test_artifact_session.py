"""Artifacts: one file, checksummed, versioned, target-checked; sessions validate their inputs."""
from __future__ import annotations

import json
import threading
import zipfile

import numpy as np
import pytest

import graphc
from graphc import ops
from graphc.errors import ArtifactError, InputError, TargetError
from graphc.ir import GraphBuilder, TensorType
from graphc.runtime import load, read_artifact
from graphc.tensor import Tensor


@pytest.fixture(scope="module")
def compiled():
    b = GraphBuilder("m")
    x = Tensor(b.input("x", TensorType("f32", (8, 32))))
    y = Tensor(b.input("y", TensorType("f32", (32,))))
    w = graphc.param("w", np.linspace(-1, 1, 32, dtype=np.float32))
    with b:
        out = ops.relu(x * w + y)
        out2 = ops.exp(-out)
    g = b.build([out.value, out2.value], ["act", "decay"])
    return graphc.compile(g, target="x86")


@pytest.fixture(scope="module")
def artifact(compiled, tmp_path_factory):
    return compiled.save(str(tmp_path_factory.mktemp("art") / "m.gca"))


def _inputs(seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((8, 32)).astype(np.float32), rng.standard_normal(32).astype(np.float32)


def test_artifact_roundtrip_matches_interpreter(compiled, artifact):
    x, y = _inputs()
    sess = load(artifact)
    assert sess.input_names == ["x", "y"] and sess.output_names == ["act", "decay"]
    ref = graphc.run_graph(compiled.graph, x, y)
    for a, r in zip(sess.run(x, y), ref):
        np.testing.assert_allclose(a, r, rtol=1e-6, atol=1e-6)
    by_name = sess.run(y=y, x=x)
    np.testing.assert_array_equal(by_name[0], sess.run(x, y)[0])
    assert set(sess.run_dict(x, y)) == {"act", "decay"}


def test_artifact_is_one_file_with_manifest(artifact):
    with zipfile.ZipFile(artifact) as z:
        assert set(z.namelist()) == {"manifest.json", "lib.so", "params.bin"}
        manifest = json.loads(z.read("manifest.json"))
    assert manifest["graphc_version"] == graphc.__version__
    assert manifest["target"]["kind"] == "x86"
    assert [i["name"] for i in manifest["inputs"]] == ["x", "y"]
    assert [p["name"] for p in manifest["params"]] == ["w"]
    assert len(manifest["sha256"]["lib.so"]) == 64
    art = read_artifact(artifact)
    np.testing.assert_array_equal(art.params[0][1], np.linspace(-1, 1, 32, dtype=np.float32))


def test_wrong_inputs_name_input_expected_and_actual(artifact):
    sess = load(artifact)
    x, y = _inputs()
    with pytest.raises(InputError, match=r"input 'x': expected shape \[8, 32\], got \[4, 32\]"):
        sess.run(x[:4], y)
    with pytest.raises(InputError, match=r"input 'y': expected dtype f32, got f64"):
        sess.run(x, y.astype(np.float64))
    with pytest.raises(InputError, match="no input named 'z'"):
        sess.run(x, z=y)
    with pytest.raises(InputError, match="missing input"):
        sess.run(x)
    with pytest.raises(InputError, match="takes 2 input"):
        sess.run(x, y, y)
    with pytest.raises(InputError, match="both by position and by name"):
        sess.run(x, y, x=x)


def test_non_contiguous_and_special_values(artifact, compiled):
    sess = load(artifact)
    x, y = _inputs()
    xt = np.asfortranarray(x)
    assert not xt.flags.c_contiguous
    np.testing.assert_array_equal(sess.run(xt, y)[0], sess.run(x, y)[0])
    x2 = x.copy()
    x2[0, 0], x2[0, 1], x2[0, 2] = np.nan, np.inf, -np.inf
    got = sess.run(x2, y)
    ref = graphc.run_graph(compiled.graph, x2, y)
    np.testing.assert_array_equal(np.isnan(got[0]), np.isnan(ref[0]))
    np.testing.assert_allclose(got[1], ref[1], rtol=1e-6)


def _rewrite(src, dst, mutate_manifest=None, mutate_lib=None):
    with zipfile.ZipFile(src) as z:
        parts = {n: z.read(n) for n in z.namelist()}
    if mutate_manifest:
        m = json.loads(parts["manifest.json"])
        mutate_manifest(m)
        parts["manifest.json"] = json.dumps(m).encode()
    if mutate_lib:
        parts["lib.so"] = mutate_lib(parts["lib.so"])
    with zipfile.ZipFile(dst, "w") as z:
        for n, d in parts.items():
            z.writestr(n, d)
    return str(dst)


def test_corrupted_truncated_foreign_artifacts(artifact, tmp_path):
    data = open(artifact, "rb").read()
    trunc = tmp_path / "trunc.gca"
    trunc.write_bytes(data[: len(data) // 2])
    with pytest.raises(ArtifactError, match="truncated|corrupted|not a graphc"):
        load(str(trunc))
    empty = tmp_path / "empty.gca"
    empty.write_bytes(b"")
    with pytest.raises(ArtifactError, match="trunc.gca|empty.gca"):
        load(str(empty))
    flipped = _rewrite(artifact, tmp_path / "flip.gca", mutate_lib=lambda b: b[:100] + bytes([b[100] ^ 0xFF]) + b[101:])
    with pytest.raises(ArtifactError, match="checksum mismatch"):
        load(flipped)
    old = _rewrite(artifact, tmp_path / "old.gca", mutate_manifest=lambda m: m.update(graphc_version="0.0.1"))
    with pytest.raises(ArtifactError, match="compiled by graphc 0.0.1"):
        load(old)
    fmt = _rewrite(artifact, tmp_path / "fmt.gca", mutate_manifest=lambda m: m.update(format_version=99))
    with pytest.raises(ArtifactError, match="format version 99"):
        load(fmt)
    with pytest.raises(ArtifactError, match="no such artifact"):
        load(str(tmp_path / "missing.gca"))


def test_artifact_for_another_machine_is_refused(artifact, tmp_path):
    arm = _rewrite(artifact, tmp_path / "arm.gca", mutate_manifest=lambda m: m["target"].update(features=["avx512f", "sve2-sm4-imaginary"]))
    with pytest.raises(TargetError, match="needs CPU features .*sve2-sm4-imaginary"):
        load(arm)
    other = _rewrite(artifact, tmp_path / "other.gca", mutate_manifest=lambda m: m["target"].update(kind="quantum"))
    with pytest.raises(TargetError, match="kind 'quantum'"):
        load(other)


def test_session_is_thread_safe(artifact, compiled):
    sess = load(artifact)
    errors = []

    def worker(seed):
        x, y = _inputs(seed)
        ref = graphc.run_graph(compiled.graph, x, y)
        for _ in range(20):
            got = sess.run(x, y)
            if not all(np.allclose(a, r, rtol=1e-6, atol=1e-6) for a, r in zip(got, ref)):
                errors.append(seed)

    threads = [threading.Thread(target=worker, args=(s,)) for s in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors


def test_benchmark_reports_latency(artifact):
    stats = load(artifact).benchmark(*_inputs(), repeat=5, warmup=1)
    assert stats["median_ms"] > 0 and stats["repeat"] == 5


def test_nan_and_inf_propagate_like_numpy():
    b = GraphBuilder("nan")
    x = Tensor(b.input("x", TensorType("f32", (6,))))
    y = Tensor(b.input("y", TensorType("f32", (6,))))
    with b:
        outs = [ops.maximum(x, y), ops.minimum(x, y), ops.relu(x), ops.max(x, axes=(0,)), ops.softmax(y)]
    g = b.build([o.value for o in outs])
    xv = np.array([np.nan, 1, -np.inf, np.inf, 0, -1], np.float32)
    yv = np.array([1, np.nan, 2, 3, -np.inf, -2], np.float32)
    got = graphc.compile(g, opt_level=0).session().run(xv, yv)
    for a, r in zip(got, graphc.run_graph(g, xv, yv)):
        np.testing.assert_array_equal(a, r)
