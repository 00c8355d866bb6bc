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
from .threads import use_physical_cores


def _tvm_runtime():
    use_physical_cores()  # before the first kernel launch sizes TVM's thread pool
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
        from .devices import ensure_cuda_runtime

        ensure_cuda_runtime()
        dev = tvm.cuda(idx)
        if not dev.exist:
            raise InputError(f"device {device!r}: this machine has no such CUDA device (check nvidia-smi and CUDA_VISIBLE_DEVICES)")
        return dev
    raise InputError(f"unknown device {device!r}; use cpu or cuda:N")


def default_device(target: Target) -> str:
    """Where an artifact runs unless told otherwise: the first GPU for CUDA code, else the CPU."""
    return "cuda:0" if target.kind == "cuda" else "cpu"


def _check_device_kind(target: Target, device: str) -> None:
    wants = "cuda" if target.kind == "cuda" else "cpu"
    if device.partition(":")[0] != wants:
        raise InputError(f"the model was compiled for {target.describe()}, which runs on {wants} devices, not {device!r}")


def latency_stats(times_ms: list[float], repeat: int) -> dict:
    """Median / min / p90 of timed runs (milliseconds), as every `benchmark` reports them."""
    times = sorted(times_ms)
    return {"median_ms": float(np.median(times)), "min_ms": times[0], "p90_ms": times[int(0.9 * (len(times) - 1))], "repeat": repeat}


class ModelIO:
    """Named, typed inputs and outputs of a loaded model (local `Session` and remote sessions):
    `inputs`/`outputs` are TensorSpecs; `bind_arrays` checks call arguments against them."""

    inputs: list
    outputs: list

    @property
    def input_names(self) -> list[str]:
        return [s.name for s in self.inputs]

    @property
    def output_names(self) -> list[str]:
        return [s.name for s in self.outputs]

    def bind_arrays(self, args, kwargs) -> list[np.ndarray]:
        """Positional and named inputs as arrays in input order (clear errors for wrong names, shapes, dtypes)."""
        return bind_inputs(self.input_names, [s.type for s in self.inputs], args, kwargs)


class Session(ModelIO):
    """A loaded model. `run(*inputs, **named_inputs) -> list[np.ndarray]`.

    Calls are serialized with a lock: one VM instance holds per-call state, so
    concurrent `run`s from several threads are safe and return correct results
    (they do not run in parallel; make one Session per thread for that).
    """

    def __init__(self, executable, inputs: Sequence[TensorSpec], outputs: Sequence[TensorSpec], params: Sequence[np.ndarray], target: Target, device: str | None = None, meta: dict | None = None):
        tvm = _tvm_runtime()
        check_loadable(target)  # e.g. an in-memory ARM build on x86: a clear error, not TVM's
        device = device or default_device(target)
        _check_device_kind(target, device)
        self.target = target
        self.inputs = list(inputs)
        self.outputs = list(outputs)
        self.meta = meta or {}
        self.device = parse_device(device)
        self._vm = tvm.runtime.vm.VirtualMachine(executable, self.device)
        self._main = self._vm["main"]
        self._params = [tvm.runtime.tensor(np.asarray(p, order="C"), self.device) for p in params]
        self._lock = threading.Lock()

    def _bind(self, args, kwargs) -> list:
        tvm = _tvm_runtime()
        return [tvm.runtime.tensor(a, self.device) for a in self.bind_arrays(args, kwargs)]

    def run(self, *args: Any, **kwargs: Any) -> list[np.ndarray]:
        tensors = self._bind(args, kwargs)
        with self._lock:
            result = self._main(*tensors, *self._params)
            return [r.numpy() for r in result]

    def run_dict(self, *args: Any, **kwargs: Any) -> dict[str, np.ndarray]:
        return dict(zip(self.output_names, self.run(*args, **kwargs)))

    def prepared(self, *args: Any, **kwargs: Any):
        """A no-argument callable that runs the model on these inputs, copied to the device once
        (for timing loops interleaved with other runners; call `self.device.sync()` after it)."""
        tensors = self._bind(args, kwargs)

        def call():
            with self._lock:
                return self._main(*tensors, *self._params)

        return call

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
        return latency_stats(times, repeat)


def load_library(art: ArtifactData, source: str = "<memory>"):
    """The artifact's compiled library as a TVM runtime module (TVM loads shared objects from files only)."""
    tvm = _tvm_runtime()
    with tempfile.TemporaryDirectory(prefix="graphc-") as tmp:
        lib_path = os.path.join(tmp, "lib.so")
        with open(lib_path, "wb") as f:
            f.write(art.lib)
        try:
            return tvm.runtime.load_module(lib_path)
        except Exception as e:
            raise ArtifactError(f"{source}: the compiled library does not load on this machine ({type(e).__name__}: {str(e)[:300]})") from None


def session_from_artifact(art: ArtifactData, device: str | None = None, source: str = "<memory>") -> Session:
    if art.meta.get("kind") == "train":  # (graphc.runtime.train)
        raise ArtifactError(f"{source}: a train step artifact: load it with graphc.runtime.load_train (or run `graphc train`)")
    target = Target.from_json(art.target)
    check_loadable(target)
    module = load_library(art, source)
    return Session(module, art.inputs, art.outputs, [a for _, a in art.params], target, device, art.meta)


def load(path: str, device: str | None = None) -> Session:
    """Load an artifact file written by `graphc compile` and return a ready Session (on `device`:
    "cpu", "cuda:N"; by default cuda:0 for a CUDA artifact, else the CPU)."""
    return session_from_artifact(read_artifact(path), device, source=path)
