"""A loopback TVM RPC setup for tests: a tracker and device servers on 127.0.0.1.

    with local_tracker() as port:
        with rpc_server(port, "x86", [sys.executable, "-m", "graphc.runtime.rpc_server"]):
            graphc.remote.connect("m.gca", rpc=f"127.0.0.1:{port}", key="x86").run(x)

A server is `python -m graphc.runtime.rpc_server` in its own process group (its sessions are
forked children), started by the given command prefix: this interpreter, or the emulated
aarch64 one (`graphc.testing.qemu.Arm64Machine.popen`). The tracker needs tornado.
"""
from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from contextlib import contextmanager
from typing import Callable

from ..errors import GraphcError

SERVER_MODULE = "graphc.runtime.rpc_server"


@contextmanager
def local_tracker(port: int = 9190, port_end: int = 9990):
    """A TVM RPC tracker on 127.0.0.1 (the first free port in [port, port_end)); yields its port."""
    from tvm.rpc.tracker import Tracker

    tracker = Tracker("127.0.0.1", port=port, port_end=port_end, silent=True)
    try:
        yield tracker.port
    finally:
        tracker.terminate()


def server_args(tracker_port: int, key: str, port: int = 10000, module: str = SERVER_MODULE) -> list[str]:
    return ["-m", module, "--tracker", f"127.0.0.1:{tracker_port}", "--key", key,
            "--host", "127.0.0.1", "--port", str(port), "--port-end", str(port + 2000)]


def wait_registered(tracker_port: int, key: str, proc: subprocess.Popen, output: list[str], timeout: float) -> None:
    """Wait until the server process `proc` has registered `key` with the tracker."""
    from tvm import rpc

    tracker = rpc.connect_tracker("127.0.0.1", tracker_port)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise GraphcError(f"RPC server for key {key!r} exited {proc.returncode}: {''.join(output)[-2000:]}")
        if any(s["key"] == f"server:{key}" for s in tracker.summary()["server_info"]):
            return
        time.sleep(0.2)
    raise GraphcError(f"RPC server for key {key!r} did not register with the tracker in {timeout:.0f}s: {''.join(output)[-2000:]}")


@contextmanager
def rpc_server(tracker_port: int, key: str, start: Callable[..., subprocess.Popen], timeout: float = 300,
               module: str = SERVER_MODULE):
    """A graphc RPC server (or TVM's: module="tvm.exec.rpc_server") registered as `key`, started by
    `start(args, **popen_args)` (a Popen factory); stopped (its whole process group) on exit.
    Yields the process."""
    proc = start(server_args(tracker_port, key, module=module), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                 start_new_session=True, preexec_fn=die_with_parent)
    output: list[str] = []
    reader = threading.Thread(target=lambda: output.extend(proc.stdout), daemon=True)  # never let the pipe fill
    reader.start()
    try:
        wait_registered(tracker_port, key, proc, output, timeout)
        yield proc
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # the server and the sessions it forked
        except ProcessLookupError:
            pass
        proc.wait()
        reader.join(timeout=5)


def die_with_parent() -> None:
    """preexec_fn: the server gets SIGKILL when the test process dies, however it dies."""
    import ctypes

    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def host_popen(args: list[str], **popen_args) -> subprocess.Popen:
    """This interpreter on ARGS (the `start` of a server on this machine)."""
    import sys

    return subprocess.Popen([sys.executable, *args], **popen_args)
