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


def interleaved(fns: dict[str, Callable[[], object]], rounds: int = 30, warmup: int = 3, inner: int = 1) -> dict[str, dict]:
    """Median / min / p90 milliseconds per call of each function, timed in interleaved rounds."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    samples: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            for _ in range(inner):
                fn()
            samples[name].append((time.perf_counter() - t0) * 1e3 / inner)
    return {
        k: {"median_ms": statistics.median(v), "min_ms": min(v), "p90_ms": float(np.percentile(v, 90)), "rounds": rounds}
        for k, v in samples.items()
    }


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
