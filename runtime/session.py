"""Running compiled models: `Session` wraps a TVM VM plus the model's signature and parameters.

Only the TVM *runtime* is used here (no compiler), so artifacts deploy to
machines that have nothing else. Parameters are uploaded to the device once;
`run` binds inputs (by position or name, checked against the signature) and
returns numpy arrays in output order.
"""
from __future__ import annotations

import os
import tempfile
import threading
import time
from typing import Any, Sequence

import numpy as np

from graphc.errors import ArtifactError, InputError
from graphc.targets import Target, check_loadable

from .artifact import ArtifactData, TensorSpec, read_artifact
from .signature import bind_inputs


def _tvm_runtime():
    import tvm.runtime  # noqa: F401  (runtime only; never tvm.relax here)
    import tvm.runtime.vm

    return tvm


def parse_device(device: str):
    tvm = _tvm_runtime()
    kind, _, index = device.partition(":")
    idx = int(index) if index else 0
    if kind == "cpu":
        return tvm.cpu(idx)
    if kind == "cuda":
        return tvm.cuda(idx)
    raise InputError(f"unknown device {device!r}; use cpu or cuda:N")


class Session:
    """A loaded model. `run(*inputs, **named_inputs) -> list[np.ndarray]`.

    Calls are serialized with a lock: one VM instance holds per-call state, so
    concurrent `run`s from several threads are safe and return correct results
    (they do not run in parallel; make one Session per thread for that).
    """

    def __init__(self, executable, inputs: Sequence[TensorSpec], outputs: Sequence[TensorSpec], params: Sequence[np.ndarray], target: Target, device: str = "cpu", meta: dict | None = None):
        tvm = _tvm_runtime()
        self.target = target
        self.inputs = list(inputs)
        self.outputs = list(outputs)
        self.meta = meta or {}
        self.device = parse_device(device)
        self._vm = tvm.runtime.vm.VirtualMachine(executable, self.device)
        self._main = self._vm["main"]
        self._params = [tvm.runtime.tensor(np.asarray(p, order="C"), self.device) for p in params]
        self._lock = threading.Lock()

    @property
    def input_names(self) -> list[str]:
        return [s.name for s in self.inputs]

    @property
    def output_names(self) -> list[str]:
        return [s.name for s in self.outputs]

    def _bind(self, args, kwargs) -> list:
        tvm = _tvm_runtime()
        arrays = bind_inputs(self.input_names, [s.type for s in self.inputs], args, kwargs)
        return [tvm.runtime.tensor(a, self.device) for a in arrays]

    def run(self, *args: Any, **kwargs: Any) -> list[np.ndarray]:
        tensors = self._bind(args, kwargs)
        with self._lock:
            result = self._main(*tensors, *self._params)
            return [r.numpy() for r in result]

    def run_dict(self, *args: Any, **kwargs: Any) -> dict[str, np.ndarray]:
        return dict(zip(self.output_names, self.run(*args, **kwargs)))

    def benchmark(self, *args: Any, repeat: int = 50, warmup: int = 5, **kwargs: Any) -> dict:
        """Latency of the compiled computation (inputs already on the device), in milliseconds."""
        tensors = self._bind(args, kwargs)
        times = []
        with self._lock:
            for i in range(warmup + repeat):
                t0 = time.perf_counter()
                self._main(*tensors, *self._params)
                self.device.sync()
                if i >= warmup:
                    times.append((time.perf_counter() - t0) * 1e3)
        times.sort()
        return {
            "median_ms": float(np.median(times)),
            "min_ms": times[0],
            "p90_ms": times[int(0.9 * (len(times) - 1))],
            "repeat": repeat,
        }


def session_from_artifact(art: ArtifactData, device: str = "cpu", source: str = "<memory>") -> Session:
    tvm = _tvm_runtime()
    target = Target.from_json(art.target)
    check_loadable(target)
    with tempfile.TemporaryDirectory(prefix="graphc-") as tmp:
        lib_path = os.path.join(tmp, "lib.so")
        with open(lib_path, "wb") as f:
            f.write(art.lib)
        try:
            module = tvm.runtime.load_module(lib_path)
        except Exception as e:
            raise ArtifactError(f"{source}: the compiled library does not load on this machine ({type(e).__name__}: {str(e)[:300]})") from None
    return Session(module, art.inputs, art.outputs, [a for _, a in art.params], target, device, art.meta)


def load(path: str, device: str = "cpu") -> Session:
    """Load an artifact file written by `graphc compile` and return a ready Session."""
    return session_from_artifact(read_artifact(path), device, source=path)
