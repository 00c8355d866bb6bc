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

from graphc import dtypes
from graphc.errors import ArtifactError, InputError
from graphc.targets import Target, check_loadable

from .artifact import ArtifactData, TensorSpec, read_artifact
from .signature import bind_inputs
from .threads import move_off_worker_cores, use_physical_cores


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
        self._expected = [(dtypes.to_numpy(s.dtype), tuple(s.shape)) for s in self.inputs]
        self._staged = _StagedCall.create(self._vm, self.inputs, self.outputs, self._params, self.device)

    def _bind(self, args, kwargs) -> list:
        tvm = _tvm_runtime()
        return [tvm.runtime.tensor(a, self.device) for a in self.bind_arrays(args, kwargs)]

    def run(self, *args: Any, **kwargs: Any) -> list[np.ndarray]:
        if self._staged is not None:
            arrays = self._well_formed(args, kwargs)
            if arrays is None:
                arrays = self.bind_arrays(args, kwargs)  # the full checks (and their errors)
            with self._lock:
                move_off_worker_cores()
                return self._staged.run(arrays)
        tensors = self._bind(args, kwargs)
        with self._lock:
            move_off_worker_cores()
            result = self._main(*tensors, *self._params)
            return [r.numpy() for r in result]

    def _well_formed(self, args, kwargs) -> list[np.ndarray] | None:
        """The inputs in order when every one is a numpy array of exactly the expected dtype and
        shape, given all by position or all by name; None sends the call through `bind_arrays`.
        (Cheap checks only: `bind_arrays` took 0.13 ms of the seed MLP's 0.87 ms cold run.)"""
        if kwargs:
            if args or len(kwargs) != len(self._expected):
                return None
            try:
                args = [kwargs[s.name] for s in self.inputs]
            except KeyError:
                return None
        elif len(args) != len(self._expected):
            return None
        for a, (dtype, shape) in zip(args, self._expected):
            if type(a) is not np.ndarray or a.dtype != dtype or a.shape != shape:
                return None
        return list(args)

    def run_dict(self, *args: Any, **kwargs: Any) -> dict[str, np.ndarray]:
        return dict(zip(self.output_names, self.run(*args, **kwargs)))

    def prepared(self, *args: Any, **kwargs: Any):
        """A no-argument callable that runs the model on these inputs, copied to the device once
        (for timing loops interleaved with other runners; call `self.device.sync()` after it)."""
        tensors = self._bind(args, kwargs)

        def call():
            with self._lock:
                move_off_worker_cores()
                return self._main(*tensors, *self._params)

        return call

    def benchmark(self, *args: Any, repeat: int = 50, warmup: int = 5, **kwargs: Any) -> dict:
        """Latency of the compiled computation (inputs already on the device), in milliseconds."""
        tensors = self._bind(args, kwargs)
        times = []
        with self._lock:
            for i in range(warmup + repeat):
                move_off_worker_cores()
                t0 = time.perf_counter()
                self._main(*tensors, *self._params)
                self.device.sync()
                if i >= warmup:
                    times.append((time.perf_counter() - t0) * 1e3)
        return latency_stats(times, repeat)


class _StagedCall:
    """`Session.run` on the CPU without per-call allocations or needless copies.

    An input that the kernels can read in place (C-contiguous, writeable, its data 64-byte
    aligned: TVM declares every buffer argument so, LLVM `align 64`, and emits aligned vector
    moves that fault otherwise) is passed to `main` without a copy (DLPack). Any other input is
    copied (`np.copyto`: any strides) into a staging tensor allocated once; when every input is
    staged, `main` runs as bound once to the staging tensors and the parameters
    (`VirtualMachine.save_function`: a call passes no arguments through the FFI). Outputs go to
    numpy without a copy (`np.from_dlpack`): each call's outputs are fresh VM allocations that the
    returned arrays keep alive. An output whose memory is an input's (staged or the caller's), a
    parameter's (a graph output that is an input or a constant, or a reshape of one: reshapes are
    views at the same address) or an earlier output's of the same call is copied, so no returned
    array aliases the caller's or the session's buffers or another output.
    Measured on the seed MLP (batch 64, steady state): passing the caller's array instead of
    copying it 90 -> 69 us per call, ~5 us the copy and the rest the second core pulling the
    freshly copied rows out of the first core's cache. numpy aligns large arrays to 16 bytes
    only, so this applies to a quarter of them by chance, or to arrays allocated aligned on
    purpose. Cold (one call 0.25 s after the last), the staged binding took 0.92 -> 0.51 ms;
    `Tensor.numpy()` alone cost ~0.2 ms of cold Python.
    The caller holds the session's lock (the staging tensors are shared).
    """

    ALIGNMENT = 64  # bytes: what TVM assumes of every buffer argument
    SAVED_NAME = "graphc_main_staged"

    def __init__(self, vm, staging: list, params: list):
        self._staging = staging
        self._params = params
        self._views = [np.from_dlpack(t) for t in staging]
        self._main = vm["main"]
        import tvm_ffi  # (after _tvm_runtime(): TVM's thread settings come first)

        self._from_dlpack = tvm_ffi.from_dlpack  # (tvm.runtime.from_dlpack raises on misalignment)
        vm.save_function("main", self.SAVED_NAME, *staging, *params)
        self._call = vm[self.SAVED_NAME]
        self._pinned = frozenset(t.data_ptr() for t in (*staging, *params))

    @classmethod
    def create(cls, vm, inputs: Sequence[TensorSpec], outputs: Sequence[TensorSpec], params: list, device) -> "_StagedCall | None":
        """The fast path, or None where it does not apply: not a CPU device, or a dtype numpy
        cannot share over DLPack (bf16 has no numpy dtype of its own)."""
        tvm = _tvm_runtime()
        if device.dlpack_device_type() != tvm.cpu().dlpack_device_type() or any(s.dtype == "bf16" for s in (*inputs, *outputs)):
            return None
        staging = [tvm.runtime.empty(tuple(s.shape), dtypes.to_tvm(s.dtype), device) for s in inputs]
        return cls(vm, staging, params)

    def run(self, arrays: list[np.ndarray]) -> list[np.ndarray]:
        direct = [self._in_place(a) for a in arrays]
        if all(t is None for t in direct):
            for view, a in zip(self._views, arrays):
                np.copyto(view, a)
            return self._to_numpy(self._call(), frozenset())
        args = []
        for t, staged, view, a in zip(direct, self._staging, self._views, arrays):
            if t is None:
                np.copyto(view, a)
                t = staged
            args.append(t)
        borrowed = frozenset(t.data_ptr() for t in direct if t is not None)
        return self._to_numpy(self._main(*args, *self._params), borrowed)

    def _in_place(self, a: np.ndarray):
        """`a` as a TVM tensor sharing its memory, or None when the kernels cannot read it in place."""
        if a.size == 0 or not (a.flags.c_contiguous and a.flags.writeable):
            return None  # (DLPack cannot mark a tensor read-only, so numpy refuses to export those)
        t = self._from_dlpack(a)
        return None if t.data_ptr() % self.ALIGNMENT else t

    def _to_numpy(self, result, borrowed: frozenset) -> list[np.ndarray]:
        out, seen = [], set()
        for r in result:
            ptr = r.data_ptr()
            if ptr in self._pinned or ptr in borrowed or ptr in seen:
                out.append(r.numpy())
            else:
                seen.add(ptr)
                out.append(np.from_dlpack(r))
        return out


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
