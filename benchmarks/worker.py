"""One benchmarked system in its own process.

Each system (graphc, PyTorch, ONNX Runtime, ...) is prepared and run in a separate spawned
process, so that its compile time and memory are its own (no other runtime's allocations or
caches in the same address space) and no runtime's thread pool (OpenMP's, ONNX Runtime's,
TVM's) shares a process with another's. The parent still interleaves the timing rounds: it
asks each worker in turn for one timed run, which the worker times itself.

    worker = SystemWorker("onnxruntime", "bert", tuning_db=None)   # prepares (compiles) the system
    worker.info          # compile_s, compile_rss_mb, run_rss_mb, first_run_ms, second_run_ms, notes, outputs | error
    ms = worker.time_runs(inner=5, warm=True)   # mean ms of 5 back-to-back runs after an untimed one
    worker.close()
"""
from __future__ import annotations

import multiprocessing
import time
import traceback

PREPARE_TIMEOUT_S = 3600.0  # torch.compile of GPT-2 on a busy 2-core machine takes minutes


def _case(model: str):
    from benchmarks.suite import builtin_case, onnx_case

    return onnx_case(model) if model.endswith(".onnx") else builtin_case(model)


def _serve(conn, system: str, model: str, tuning_db: str | None, threads: int) -> None:
    import gc
    import os

    # before any runtime starts its thread pool: every system gets the same number of threads
    # (TVM would otherwise size its pool at half the logical CPUs)
    for var in ("GRAPHC_BENCH_THREADS", "TVM_NUM_THREADS", "OMP_NUM_THREADS"):
        os.environ[var] = str(threads)

    from benchmarks.harness import PeakRss, timed_runs
    from benchmarks.suite import systems_for

    try:
        case = _case(model)
        if system not in ("pytorch", "torch.compile"):  # the others run the ONNX file: free the torch module
            case.module = None
            gc.collect()
        prepared = systems_for(tuning_db)[system](case)
        with PeakRss() as mem:
            t0 = time.perf_counter()
            outputs = prepared.run()  # the first run: correctness, and the warm-up
            first_ms = (time.perf_counter() - t0) * 1e3
        t0 = time.perf_counter()
        prepared.run()  # the second run: what one run costs once warm (sizes the timed samples)
        second_ms = (time.perf_counter() - t0) * 1e3
    except Exception as e:  # noqa: BLE001 - a system that cannot run this model is a result
        conn.send({"error": f"{type(e).__name__}: {str(e).splitlines()[0][:300] if str(e) else ''}", "traceback": traceback.format_exc()})
        return
    conn.send(
        {
            "compile_s": prepared.compile_s,
            "compile_rss_mb": prepared.compile_rss_mb,
            "run_rss_mb": mem.delta_mb,
            "first_run_ms": first_ms,
            "second_run_ms": second_ms,
            "notes": prepared.notes,
            "outputs": [o.copy() for o in outputs],
        }
    )
    while (msg := conn.recv())[0] == "run":
        _, inner, warm = msg
        conn.send(timed_runs(prepared.run, inner, warm)())


class SystemWorker:
    def __init__(self, system: str, model: str, tuning_db: str | None = None, threads: int | None = None):
        from graphc.targets import available_threads

        ctx = multiprocessing.get_context("spawn")  # a fresh interpreter: no inherited threads or allocations
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(target=_serve, args=(child, system, model, tuning_db, threads or available_threads()), daemon=True)
        self._proc.start()
        child.close()
        if not self._conn.poll(PREPARE_TIMEOUT_S):
            self.close()
            self.info = {"error": f"no answer in {PREPARE_TIMEOUT_S:.0f}s"}
        else:
            try:
                self.info = self._conn.recv()
            except EOFError:
                self.info = {"error": f"the worker process died (exit code {self._proc.exitcode})"}

    @property
    def ok(self) -> bool:
        return "error" not in self.info

    def time_runs(self, inner: int = 1, warm: bool = False) -> float:
        """Mean milliseconds of `inner` back-to-back runs, measured in the worker; `warm`: after
        one untimed run (wakes the system's thread pool and refills caches after a pause)."""
        self._conn.send(("run", inner, warm))
        return self._conn.recv()

    def close(self) -> None:
        try:
            self._conn.send(("quit",))
        except (OSError, ValueError):
            pass
        self._proc.join(timeout=30)
        if self._proc.is_alive():
            self._proc.kill()
            self._proc.join()
