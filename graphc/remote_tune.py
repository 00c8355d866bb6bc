"""Tuning on a remote device: MetaSchedule's builder and runner, and the kernel timer of
`graphc.tuning.tune.tune_model`, measuring through a TVM RPC tracker.

    tune_model("model.onnx", "arm", trials=256, **rpc_tuning("tracker:9190", "rasp4", resolve("arm")))

* the builder exports every candidate as a shared library linked here (the cross compiler for
  ARM): the device has only the TVM runtime, so it cannot link MetaSchedule's default .tar;
* the runner measures on the device, with argument data made here and uploaded: TVM's default
  fills it on the device with a function of the TVM compiler's (`tvm.contrib.random`);
* the kernel timer times graphc's default and the tuned schedule of each kernel there too, in
  one RPC session for all of them (a device server serves one session at a time).
"""
from __future__ import annotations

import functools
import os
import tempfile

import numpy as np

from .remote import _request, parse_address
from .targets import Target


def export_shared_library(target_json: dict, mod) -> str:
    """MetaSchedule builder export: `mod` as a shared library for `target_json`'s machine."""
    path = os.path.join(tempfile.mkdtemp(prefix="graphc-ms-"), "candidate.so")
    mod.export_library(path, **Target.from_json(target_json).export_options())
    return path


def _random_fill(arg) -> None:
    shape, dtype = tuple(int(d) for d in arg.shape), str(arg.dtype)
    rng = np.random.default_rng(0)
    data = rng.standard_normal(shape).astype(dtype) if dtype.startswith(("float", "bfloat")) else np.zeros(shape, dtype)
    arg.copyfrom(data)  # (uploaded to the device)


def create_session(rpc_config):
    """MetaSchedule runner session: first collect the previous measurement's garbage, whose
    reference cycles hold its session, so the device is free (else it waits for the timeout)."""
    import gc

    gc.collect()
    return rpc_config.connect_server()


def alloc_uploaded_arguments(session, device, args_info, alloc_repeat):
    """MetaSchedule runner argument allocation: random data made here, copied to the device."""
    from tvm.s_tir.meta_schedule.runner.utils import alloc_argument_common

    return alloc_argument_common(_random_fill, device, args_info, alloc_repeat)


class RemoteKernelTimer:
    """`kernel_timer(func, target) -> (() -> ms)` for tune_model: builds `func` here, times it on
    the device. All kernels share one session, opened on first use; `close()` gives it back."""

    def __init__(self, rpc: str, key: str, session_timeout: float = 0):
        self.address, self.key, self.session_timeout = parse_address(rpc), key, session_timeout
        self._sess = None
        self._count = 0

    def __call__(self, func, target: Target):
        import tvm

        from .codegen.schedule.common import param_buffers

        if self._sess is None:
            self._sess = _request(self.address, self.key, self.session_timeout, wait=60)
        self._count += 1
        name = f"kernel{self._count}.so"
        lib = tvm.tirx.build(tvm.IRModule({"main": func.with_attr("global_symbol", "main")}), target.tvm_target())
        with tempfile.TemporaryDirectory(prefix="graphc-timer-") as tmp:
            lib.export_library(os.path.join(tmp, name), **target.export_options())
            self._sess.upload(os.path.join(tmp, name), name)
        remote = self._sess.load_module(name)
        dev = self._sess.cpu(0)
        args = []
        for buf in param_buffers(func):
            a = tvm.runtime.empty([int(d) for d in buf.shape], str(buf.dtype), dev)
            _random_fill(a)
            args.append(a)
        evaluator = remote.time_evaluator("main", dev, number=1, repeat=5, min_repeat_ms=20)
        return lambda: min(evaluator(*args).results) * 1e3

    def close(self) -> None:
        import gc

        self._sess = None
        gc.collect()  # the timers' closures hold remote tensors, and they the session


def rpc_tuning(rpc: str, key: str, target: Target, session_timeout: float = 120) -> dict:
    """tune_model's `builder`, `runner` and `kernel_timer` for the device `key` at tracker `rpc`
    (close `kernel_timer` after tuning)."""
    from tvm.s_tir import meta_schedule as ms

    host, port = parse_address(rpc)
    builder = ms.builder.LocalBuilder(f_export=functools.partial(export_shared_library, target.to_json()), timeout_sec=180)
    runner = ms.runner.RPCRunner(
        ms.runner.RPCConfig(tracker_host=host, tracker_port=port, tracker_key=key, session_timeout_sec=int(session_timeout)),
        ms.runner.EvaluatorConfig(number=3, repeat=1, min_repeat_ms=20, enable_cpu_cache_flush=False),
        f_create_session=create_session,
        f_alloc_argument=alloc_uploaded_arguments,
        max_workers=1,  # one device server serves one session at a time
    )
    return {"builder": builder, "runner": runner, "kernel_timer": RemoteKernelTimer(rpc, key)}
