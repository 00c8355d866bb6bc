"""Running and timing artifacts on a remote device through a TVM RPC tracker (`graphc.remote`).

A tracker and a `python -m graphc.runtime.rpc_server` on 127.0.0.1 stand in for the device
machine; the aarch64 server under qemu is in tests/e2e/test_arm.py.
"""
from __future__ import annotations

import socket

import numpy as np
import pytest

import graphc
from graphc import ops
from graphc.cli import main as graphc_main
from graphc.errors import InputError
from graphc.ir import GraphBuilder, TensorType
from graphc.remote import RemoteError, connect, parse_address
from graphc.tensor import Tensor
from graphc.testing.rpc import host_popen, local_tracker, rpc_server

KEY = "x86-loopback"


def _graph():
    b = GraphBuilder("remote")
    x = Tensor(b.input("x", TensorType("f32", (8, 32))))
    w = graphc.param("w", np.random.default_rng(0).standard_normal((16, 32)).astype(np.float32))
    with b:
        h = ops.relu(ops.linear(x, w))
        y, z = ops.softmax(h, axis=-1), ops.tanh(h)
    return b.build([y.value, z.value])


@pytest.fixture(scope="module")
def artifact(tmp_path_factory):
    g = _graph()
    path = graphc.compile(g, target="x86", log=lambda *a: None).save(str(tmp_path_factory.mktemp("remote") / "m.gca"))
    return g, path


@pytest.fixture(scope="module")
def tracker():
    with local_tracker() as port:
        with rpc_server(port, KEY, host_popen):
            yield f"127.0.0.1:{port}"


def test_remote_run_matches_local_and_the_interpreter(artifact, tracker):
    g, path = artifact
    x = np.random.default_rng(1).standard_normal((8, 32)).astype(np.float32)
    local = graphc.runtime.load(path).run(x)
    with connect(path, tracker, KEY) as sess:
        assert sess.input_names == ["x"] and len(sess.output_names) == 2
        remote = sess.run(x=x)
        stats = sess.benchmark(x, repeat=5, warmup=1)
    for r, loc, ref in zip(remote, local, graphc.run_graph(g, x)):
        np.testing.assert_array_equal(r, loc)  # the same code on the same kind of CPU
        np.testing.assert_allclose(r, ref, rtol=1e-5, atol=1e-6)
    assert stats["repeat"] == 5 and 0 < stats["min_ms"] <= stats["median_ms"] <= stats["p90_ms"]
    assert KEY in stats["device"]


def test_closing_a_session_frees_the_device_for_the_next_client(artifact, tracker):
    """One server serves one session at a time: without the close the second connect waits, then fails."""
    x = np.ones((8, 32), np.float32)
    first = connect(artifact[1], tracker, KEY)
    with pytest.raises(RemoteError, match="busy"):
        connect(artifact[1], tracker, KEY, wait=1)
    expected = first.run(x)
    first.close()
    with connect(artifact[1], tracker, KEY, wait=30) as second:
        np.testing.assert_array_equal(second.run(x)[0], expected[0])


def test_wrong_inputs_are_checked_before_the_device_sees_them(artifact, tracker):
    with connect(artifact[1], tracker, KEY) as sess:
        with pytest.raises(InputError, match="x"):
            sess.run(np.ones((8, 31), np.float32))


def test_unknown_key_names_the_registered_ones(artifact, tracker):
    with pytest.raises(RemoteError, match=rf"no device with key 'rasp4' \(keys: {KEY}\).*graphc.runtime.rpc_server"):
        connect(artifact[1], tracker, "rasp4")


def test_unreachable_tracker_says_how_to_start_one(artifact):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(RemoteError, match=rf"cannot reach the RPC tracker at 127.0.0.1:{port}.*tvm.exec.rpc_tracker"):
        connect(artifact[1], f"127.0.0.1:{port}", KEY)


@pytest.mark.parametrize("text", ["localhost", "host:", ":9190", "host:port"])
def test_bad_tracker_address(text):
    with pytest.raises(RemoteError, match="HOST:PORT"):
        parse_address(text)


def test_cli_run_on_the_remote_device(artifact, tracker, tmp_path, capsys):
    g, path = artifact
    x = np.random.default_rng(2).standard_normal((8, 32)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    out = tmp_path / "out.npz"
    assert graphc_main(["run", path, "--rpc", tracker, "--key", KEY, "--input", f"x={tmp_path / 'x.npy'}",
                        "--save", str(out), "--bench", "3"]) == 0
    assert "latency: median" in capsys.readouterr().out
    with np.load(out) as z:
        for got, ref in zip([z[k] for k in z.files], graphc.run_graph(g, x)):
            np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-6)


def test_cli_rpc_needs_a_key(artifact, capsys):
    assert graphc_main(["run", artifact[1], "--random", "--rpc", "127.0.0.1:9190"]) == 1
    assert "--rpc HOST:PORT and --key KEY go together" in capsys.readouterr().err


def test_tvms_own_server_works_and_a_foreign_library_is_a_clear_error(artifact, tmp_path):
    """TVM's `tvm.exec.rpc_server` cannot check an artifact's target: the failed load on the device
    still comes back as graphc's error naming the target and the device."""
    g, path = artifact
    x = np.ones((8, 32), np.float32)
    arm_path = graphc.compile(g, target="arm", log=lambda *a: None).save(str(tmp_path / "arm.gca"))
    with local_tracker() as port, rpc_server(port, "tvm-server", host_popen, module="tvm.exec.rpc_server"):
        with connect(path, f"127.0.0.1:{port}", "tvm-server") as sess:
            np.testing.assert_allclose(sess.run(x)[0], graphc.run_graph(g, x)[0], rtol=1e-5, atol=1e-6)
        with pytest.raises(RemoteError, match=r"compiled for arm \(cortex-a72.*does not load on remote device 'tvm-server'"):
            connect(arm_path, f"127.0.0.1:{port}", "tvm-server", wait=30)


def test_cli_bench_on_the_remote_device(tracker, tmp_path, capsys):
    """`graphc bench mlp --rpc --key`: compiled here, checked against PyTorch and timed on the device."""
    import json

    out = tmp_path / "bench.json"
    assert graphc_main(["bench", "mlp", "--rpc", tracker, "--key", KEY, "--rounds", "3", "--json", str(out)]) == 0
    assert f"mlp on {KEY} via {tracker}" in capsys.readouterr().out
    row = json.loads(out.read_text())
    assert row["correct"] and row["max_rel_diff"] <= row["tolerance"] and row["reference"] == "PyTorch eager"
    assert row["repeat"] == 3 and row["median_ms"] > 0 and row["target"]["kind"] == "x86"


@pytest.mark.slow
def test_tuning_measures_on_the_remote_device(tracker, tmp_path):
    """MetaSchedule candidates exported as shared libraries here, measured on the device with
    arguments uploaded from here (the device has no TVM compiler), and graphc's default vs the
    tuned schedule timed there too; the database then holds the device's verdict."""
    from graphc.remote_tune import rpc_tuning
    from graphc.targets import resolve
    from graphc.tuning.tune import tune_model

    b = GraphBuilder("tune")
    x = Tensor(b.input("x", TensorType("f32", (32, 64))))
    w = graphc.param("w", np.random.default_rng(0).standard_normal((48, 64)).astype(np.float32))
    with b:
        y = ops.relu(ops.linear(x, w))
    target = resolve("x86")
    options = rpc_tuning(tracker, KEY, target)
    try:
        result = tune_model(b.build([y.value]), target, trials=2, db_path=str(tmp_path / "db"), trials_per_iter=2, **options)
    finally:
        options["kernel_timer"].close()
    assert result.trials_run == 2, result
    (task,) = result.tasks
    assert task.default_ms > 0 and task.tuned_ms is not None and task.tuned_ms > 0
    with connect(*_one_kernel_artifact(tmp_path), tracker, KEY, wait=30) as sess:  # the device is free again
        assert sess.run(np.ones((2, 2), np.float32))[0].shape == (2, 2)


def _one_kernel_artifact(tmp_path):
    b = GraphBuilder("one")
    x = Tensor(b.input("x", TensorType("f32", (2, 2))))
    with b:
        y = ops.tanh(x)
    return (graphc.compile(b.build([y.value]), target="x86", log=lambda *a: None).save(str(tmp_path / "one.gca")),)


def test_cli_tune_rpc_needs_a_key(capsys):
    assert graphc_main(["tune", "mlp", "--rpc", "127.0.0.1:9190", "--trials", "0"]) == 1
    assert "--rpc HOST:PORT and --key KEY go together" in capsys.readouterr().err
