"""The tuned schedules checked where they matter: the whole model, tuned vs default.

Kernels timed one by one can mislead: alone, a kernel runs with warm caches and an idle thread
pool, and load from other jobs during the search makes serial schedules look faster than
parallel ones. On a 2-core machine the template search kept `gemm.parallel=False` for the
attention block's projections (1.05x alone), and the model then ran 1.6x slower. So after a
search the tuned model is timed against the default one (the same process, interleaved rounds,
alternating which goes first); if it is not faster, the model's tuned verdicts are withdrawn:
the records stay in the database, marked, and `graphc compile` uses the default schedules.
"""
from __future__ import annotations

import time

import numpy as np

ROUNDS = 10
ROUND_S = 0.05  # each side of a round runs the model for at least this long


def model_speedup(default, tuned, rounds: int = ROUNDS) -> tuple[float, float, float]:
    """(default ms, tuned ms, median over rounds of default / tuned) for two Sessions of one model."""
    rng = np.random.default_rng(0)
    inputs = [spec.random(rng) for spec in default.inputs]
    default.run(*inputs)
    tuned.run(*inputs)
    start = time.perf_counter()
    default.run(*inputs)
    per_run = max(time.perf_counter() - start, 1e-6)
    reps = max(1, int(ROUND_S / per_run))

    def timed(sess) -> float:
        t = time.perf_counter()
        for _ in range(reps):
            sess.run(*inputs)
        return (time.perf_counter() - t) / reps * 1e3

    d_ms, t_ms = [], []
    for r in range(rounds):
        if r % 2:
            t_ms.append(timed(tuned))
            d_ms.append(timed(default))
        else:
            d_ms.append(timed(default))
            t_ms.append(timed(tuned))
    ratios = [d / t for d, t in zip(d_ms, t_ms)]
    return float(np.median(d_ms)), float(np.median(t_ms)), float(np.median(ratios))
