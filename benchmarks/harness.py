"""Shared benchmark machinery: interleaved timing, machine description, JSON results.

Systems are timed in interleaved rounds (A, B, C, A, B, C, ...) so that machine
noise hits all of them alike; each reports the median over rounds. Results are
ratios first: these machines are shared and absolute times drift.
"""
from __future__ import annotations

import json
import os
import platform
import statistics
import time
from typing import Callable

import numpy as np


def machine() -> dict:
    cpu = platform.processor() or ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    from graphc.targets import available_threads

    return {"cpu": cpu, "threads": available_threads(), "python": platform.python_version(), "machine": platform.machine()}


def interleaved(
    fns: dict[str, Callable[[], object]],
    rounds: int = 30,
    warmup: int = 3,
    inner: int = 1,
    max_rounds: dict[str, int] | None = None,
    self_timed: bool = False,
    gap_s: float = 0.0,
) -> dict[str, dict]:
    """Median / min / p90 milliseconds per call of each function, timed in interleaved rounds.

    `max_rounds` caps the rounds (and warm-up calls) of slow systems: they take part in the first
    rounds only, so they are still interleaved with the others without dominating the run time.
    `self_timed`: each function returns its own time in ms (e.g. measured in a worker process).
    `gap_s`: an untimed pause before each call, so that the previous system's thread pool has
    stopped spinning (OpenMP and ONNX Runtime workers busy-wait after a parallel region)."""
    caps = {k: min(rounds, (max_rounds or {}).get(k, rounds)) for k in fns}
    for name, fn in fns.items():
        for _ in range(min(warmup, caps[name])):
            fn()
    samples: dict[str, list[float]] = {k: [] for k in fns}
    for r in range(rounds):
        for name, fn in fns.items():
            if r >= caps[name]:
                continue
            if gap_s:
                time.sleep(gap_s)
            t0 = time.perf_counter()
            own = sum(fn() for _ in range(inner)) if self_timed else [fn() for _ in range(inner)]
            elapsed = own if self_timed else (time.perf_counter() - t0) * 1e3
            samples[name].append(elapsed / inner)
    return {
        k: {"median_ms": statistics.median(v), "min_ms": min(v), "p90_ms": float(np.percentile(v, 90)), "rounds": len(v)}
        for k, v in samples.items()
    }


def timed_runs(fn: Callable[[], object], inner: int, warm: int = 1) -> Callable[[], float]:
    """() -> mean ms per call of `inner` back-to-back calls, after `warm` untimed calls (True: one):
    the steady rate with the thread pool awake and caches refilled after a pause between systems."""
    def timed() -> float:
        for _ in range(int(warm)):
            fn()
        t0 = time.perf_counter()
        for _ in range(inner):
            fn()
        return (time.perf_counter() - t0) * 1e3 / inner

    return timed


class PeakRss:
    """Peak resident memory growth of this process over a `with` block, in MB (sampled every
    millisecond on a thread: allocations freed before the block ends still count)."""

    def __init__(self, interval_s: float = 0.001):
        self.interval_s = interval_s
        self.delta_mb = 0.0

    def __enter__(self):
        import threading

        import psutil

        self._proc = psutil.Process()
        self._base = self._peak = self._proc.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self):
        while not self._stop.is_set():
            self._peak = max(self._peak, self._proc.memory_info().rss)
            self._stop.wait(self.interval_s)

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self._peak = max(self._peak, self._proc.memory_info().rss)
        self.delta_mb = (self._peak - self._base) / 2**20
        return False


def write_json(name: str, payload: dict, directory: str | None = None) -> str:
    directory = directory or os.path.join(os.path.dirname(__file__), "results")
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, f"{name}.json")
    payload = {"benchmark": name, "machine": machine(), "timestamp": time.strftime("%Y-%m-%d %H:%M:%S"), **payload}
    with open(path, "w") as f:
        json.dump(payload, f, indent=1)
    return path


def kernel_bytes(graph) -> int:
    """Bytes read and written by the kernels of a compiled graph (values crossing kernel
    boundaries: every kernel input and output once; reshapes are views and move nothing)."""
    total = 0
    for node in graph.compute_nodes():
        if node.op == "reshape":
            continue
        for v in list(node.inputs) + list(node.outputs):
            total += v.type.numel * v.type.np_dtype.itemsize
    return total
