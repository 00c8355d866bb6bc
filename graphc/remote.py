"""Running and timing an artifact on a remote device, through a TVM RPC tracker.

    sess = graphc.remote.connect("model.gca", rpc="tracker-host:9190", key="rasp4")
    outputs = sess.run(x)                 # computed on the device, returned as numpy arrays
    stats = sess.benchmark(x, repeat=50)  # timed on the device by TVM's time evaluator

The device runs a TVM RPC server registered with the tracker under KEY: `python -m
graphc.runtime.rpc_server --tracker HOST:PORT --key KEY` (TVM runtime and graphc.runtime only;
it also tells the client whether the artifact's code runs there), or TVM's own
`python -m tvm.exec.rpc_server`. The tracker is `python -m tvm.exec.rpc_tracker` (needs tornado).
This side uploads the artifact's library and parameters once, then calls the model's VM on the
device with the stateful API (set_input / invoke_stateful / get_outputs), which works over RPC.

TVM RPC trusts its peers completely (a server runs whatever it is sent): use it on your own
network only.
"""
from __future__ import annotations

import gc
import json
import os
import socket
import time
from typing import Any

import numpy as np

from .errors import GraphcError, TargetError
from .runtime.artifact import ArtifactData, read_artifact
from .runtime.session import ModelIO, _check_device_kind, default_device, latency_stats
from .targets import Target

CHECK_FUNC = "graphc.rpc.check_loadable"  # (runtime/rpc_server.py registers it)
LIB_NAME = "graphc_model.so"


class RemoteError(GraphcError):
    """The tracker or the remote device cannot be reached, or the device failed (says which)."""


def parse_address(text: str) -> tuple[str, int]:
    host, sep, port = str(text).rpartition(":")
    if not sep or not host or not port.isdigit():
        raise RemoteError(f"--rpc expects the tracker as HOST:PORT (e.g. 127.0.0.1:9190), got {text!r}")
    return host, int(port)


def _tracker_keys(tracker) -> dict[str, dict]:
    """The device keys the tracker knows: {key: {"free": n, "pending": m}}."""
    info = tracker.summary()
    keys = dict(info.get("queue_info", {}))
    for server in info.get("server_info", []):
        keys.setdefault(server["key"].partition(":")[2], {"free": 0, "pending": 0})
    return keys


def _request(address: tuple[str, int], key: str, session_timeout: float, wait: float):
    from tvm import rpc

    where = f"{address[0]}:{address[1]}"
    try:
        socket.create_connection(address, timeout=10).close()  # TVM's own connect retries for a minute
        tracker = rpc.connect_tracker(*address)
        keys = _tracker_keys(tracker)
    except (OSError, RuntimeError) as e:
        raise RemoteError(f"cannot reach the RPC tracker at {where} ({e}); start one with "
                          f"`python -m tvm.exec.rpc_tracker --host {address[0]} --port {address[1]}`") from None
    deadline = time.monotonic() + wait
    while key in keys and keys[key].get("free", 0) == 0 and time.monotonic() < deadline:
        time.sleep(0.5)  # every device with this key is serving someone: wait a while for one
        keys = _tracker_keys(tracker)
    if key not in keys:  # the tracker would queue the request forever
        known = ", ".join(sorted(keys)) or "none: no device has registered"
        raise RemoteError(f"the RPC tracker at {where} has no device with key {key!r} (keys: {known}); on the device run "
                          f"`python -m graphc.runtime.rpc_server --tracker {where} --key {key}`")
    if keys[key].get("free", 0) == 0:
        raise RemoteError(f"every device with key {key!r} at the RPC tracker {where} is busy (waited {wait:.0f}s); "
                          "try again later, or close the sessions that hold them")
    try:
        return tracker.request(key, priority=1, session_timeout=session_timeout, max_retry=2)
    except (OSError, RuntimeError) as e:
        raise RemoteError(f"the RPC tracker at {where} could not connect to device {key!r}: {str(e)[:300]}") from None


def _check_remote_loadable(sess, target: Target, key: str) -> None:
    """Ask a graphc RPC server whether the artifact's code runs there (TVM's own server cannot say)."""
    try:
        check = sess.get_function(CHECK_FUNC)
    except Exception:  # noqa: BLE001 - not a graphc server (tvm.exec.rpc_server): dlopen will tell
        return
    if check is None:
        return
    problem = check(json.dumps(target.to_json()))
    if problem:
        raise TargetError(f"remote device {key!r}: {problem}")


class RemoteSession(ModelIO):
    """An artifact loaded on a remote device. `run(*inputs, **named) -> list[np.ndarray]`."""

    def __init__(self, artifact: "str | os.PathLike | ArtifactData", rpc: str, key: str, device: str | None = None,
                 session_timeout: float = 0, wait: float = 60):
        art = artifact if isinstance(artifact, ArtifactData) else read_artifact(os.fspath(artifact))
        self.target = Target.from_json(art.target)
        self.inputs, self.outputs, self.key = list(art.inputs), list(art.outputs), key
        device = device or default_device(self.target)
        _check_device_kind(self.target, device)
        self.address = parse_address(rpc)
        self._sess = _request(self.address, key, session_timeout, wait)
        try:
            self._load(art, device)
        except BaseException:
            self.close()  # give the device back before the error propagates (its traceback would hold it)
            raise

    def _load(self, art: ArtifactData, device: str) -> None:
        import tvm.runtime.vm

        _check_remote_loadable(self._sess, self.target, self.key)
        try:
            self._sess.upload(bytearray(art.lib), LIB_NAME)
            lib = self._sess.load_module(LIB_NAME)
        except Exception as e:  # noqa: BLE001 - TVM reports a failed remote dlopen as a generic error
            raise RemoteError(f"the library compiled for {self.target.describe()} does not load on remote device {self.key!r}: "
                              f"{type(e).__name__}: {str(e).strip().splitlines()[-1][:300]}") from None
        kind, _, index = device.partition(":")
        self.device = self._sess.device(kind, int(index or 0))
        self._vm = tvm.runtime.vm.VirtualMachine(lib, self.device)
        self._params = [tvm.runtime.tensor(np.ascontiguousarray(p), self.device) for _, p in art.params]

    def close(self) -> None:
        """End the session: the device's server is free for the next client."""
        self._vm = self._params = self._sess = self.device = None  # (a remote Device holds its session)
        gc.collect()  # the VM wrapper's objects hold the session in reference cycles

    def __enter__(self) -> "RemoteSession":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _set_inputs(self, args, kwargs) -> None:
        import tvm.runtime

        arrays = self.bind_arrays(args, kwargs)
        self._vm.set_input("main", *[tvm.runtime.tensor(a, self.device) for a in arrays], *self._params)

    def run(self, *args: Any, **kwargs: Any) -> list[np.ndarray]:
        self._set_inputs(args, kwargs)
        self._vm.invoke_stateful("main")
        result = self._vm.get_outputs("main")
        result = result if isinstance(result, tuple) else (result,)
        return [r.numpy() for r in result]

    def benchmark(self, *args: Any, repeat: int = 50, warmup: int = 5, **kwargs: Any) -> dict:
        """Latency on the device in milliseconds, timed there (no network in the numbers)."""
        self._set_inputs(args, kwargs)
        if warmup:
            self._vm.time_evaluator("invoke_stateful", self.device, number=warmup, repeat=1)("main")
        res = self._vm.time_evaluator("invoke_stateful", self.device, number=1, repeat=repeat)("main")
        stats = latency_stats([float(t) * 1e3 for t in res.results], repeat)
        return {**stats, "device": f"{self.key} via {self.address[0]}:{self.address[1]}"}


def connect(artifact: "str | os.PathLike | ArtifactData", rpc: str, key: str, device: str | None = None,
            session_timeout: float = 0, wait: float = 60) -> RemoteSession:
    """Load `artifact` on the device registered as `key` with the RPC tracker at `rpc` (HOST:PORT);
    `wait`: how long to wait for a free device when all with that key are busy (seconds).
    The session holds the device until it is closed (`with connect(...) as sess:`)."""
    return RemoteSession(artifact, rpc, key, device, session_timeout, wait)
