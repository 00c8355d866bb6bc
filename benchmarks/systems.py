"""The systems the benchmark suite compares, each prepared the way its users would run it.

    prepared = SYSTEMS["onnxruntime"](case)   # compiles / loads the model (timed, memory measured)
    outputs = prepared.run()                  # one inference: numpy outputs in the model's output order

Every system gets the same inputs and all of the machine's threads. `graphc` and `graphc-tuned`
compile the ONNX export; the PyTorch systems run the module itself; ONNX Runtime and TVM's
default Relax pipeline run the same ONNX file as graphc.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from benchmarks.harness import PeakRss

THREADS_ENV = "GRAPHC_BENCH_THREADS"


@dataclass
class Case:
    """One model of the suite: the torch module, its inputs, its ONNX export and PyTorch's outputs."""

    name: str
    module: object
    inputs: dict[str, np.ndarray]
    onnx_path: str
    reference: list[np.ndarray]


@dataclass
class Prepared:
    run: Callable[[], list[np.ndarray]]
    compile_s: float
    compile_rss_mb: float
    tune_s: float | None = None
    notes: list[str] = field(default_factory=list)


def _timed(prepare: Callable[[], tuple[Callable[[], list[np.ndarray]], list[str]]]) -> Prepared:
    with PeakRss() as mem:
        t0 = time.perf_counter()
        run, notes = prepare()
        seconds = time.perf_counter() - t0
    return Prepared(run, seconds, mem.delta_mb, notes=notes)


def _threads() -> int:
    """All the cores this process may use, unless the suite's --threads says otherwise."""
    from graphc.targets import available_threads

    return int(os.environ.get(THREADS_ENV) or available_threads())


def torch_eager(case: Case) -> Prepared:
    import torch

    from graphc.examples.zoo import torch_args

    torch.set_num_threads(_threads())
    args = torch_args(case.inputs)

    def run():
        with torch.no_grad():
            return _flat_numpy(case.module(*args))

    return _timed(lambda: (run, []))


def torch_compile(case: Case) -> Prepared:
    """torch.compile, default mode, with weight freezing (constant-folds the eval-mode weights);
    its compile time is the first call's."""
    import torch
    import torch._inductor.config

    from graphc.examples.zoo import torch_args

    torch.set_num_threads(_threads())
    torch._inductor.config.freezing = True
    torch._dynamo.reset()
    args = torch_args(case.inputs)
    compiled = torch.compile(case.module)

    def run():
        with torch.no_grad():
            return _flat_numpy(compiled(*args))

    def prepare():
        run()  # compiles
        return run, ["mode=default, freezing=True"]

    return _timed(prepare)


def onnxruntime(case: Case) -> Prepared:
    import onnxruntime as ort

    def prepare():
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.intra_op_num_threads = _threads()
        sess = ort.InferenceSession(case.onnx_path, opts, providers=["CPUExecutionProvider"])
        names = [i.name for i in sess.get_inputs()]
        feed = {n: case.inputs[n] for n in names}
        return (lambda: sess.run(None, feed)), [f"CPU EP, ORT_ENABLE_ALL, {opts.intra_op_num_threads} intra-op threads"]

    return _timed(prepare)


def tvm_default(case: Case) -> Prepared:
    """What a TVM user gets untuned: the Relax ONNX frontend and `tvm.compile`'s default pipeline."""
    import onnx
    import tvm
    from tvm import relax
    from tvm.relax.frontend.onnx import from_onnx

    from graphc.targets import resolve

    def prepare():
        model = onnx.load(case.onnx_path)
        mod = from_onnx(model, shape_dict={k: list(v.shape) for k, v in case.inputs.items()}, keep_params_in_input=False)
        ex = tvm.compile(mod, target=resolve("x86", num_threads=_threads()).tvm_target())
        vm = relax.VirtualMachine(ex, tvm.cpu())
        names = [i.name for i in model.graph.input]
        args = [tvm.runtime.tensor(case.inputs[n]) for n in names if n in case.inputs]

        def run():
            return _flat_tvm(vm["main"](*args))

        return run, ["relax.frontend.onnx + tvm.compile default pipeline, untuned"]

    return _timed(prepare)


def graphc_system(tuning: "str | bool", session: Callable | None = None) -> Callable[[Case], Prepared]:
    """graphc on the ONNX file. `tuning`: False for graphc's default schedules, a database path to
    use tuned records. `session(compiled) -> object with .run(**inputs)` is where a remote session
    (RPC to a board) plugs in; by default the kernels run in this process."""

    def prepare_graphc(case: Case) -> Prepared:
        import graphc

        def prepare():
            from graphc.targets import resolve

            target = resolve("x86", num_threads=_threads())
            compiled = graphc.compile(case.onnx_path, target, tuning=tuning, log=lambda *a, **k: None)
            sess = session(compiled) if session is not None else compiled.session()
            tuned = sum(k.uses for k in compiled.build.kernels if any(n.startswith("tuned (") for n in k.notes))
            notes = [f"{sum(k.uses for k in compiled.build.kernels)} kernel calls, {tuned} tuned"]
            return (lambda: sess.run(**case.inputs)), notes

        return _timed(prepare)

    return prepare_graphc


def _flat_numpy(out) -> list[np.ndarray]:
    import torch.utils._pytree as pytree

    return [t.numpy() for t in pytree.tree_leaves(out)]


def _flat_tvm(out) -> list[np.ndarray]:
    if hasattr(out, "numpy"):
        return [out.numpy()]
    flat: list[np.ndarray] = []
    for item in out:
        flat.extend(_flat_tvm(item))
    return flat


PEERS: dict[str, Callable[[Case], Prepared]] = {
    "pytorch": torch_eager,
    "torch.compile": torch_compile,
    "onnxruntime": onnxruntime,
    "tvm-default": tvm_default,
}
