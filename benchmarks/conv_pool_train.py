"""Seed CNN train step with and without training's conv-relu-pool fusion (passes/index_max_pool.py:
the forward as one conv-bias-relu-pool kernel writing the pooled value and its tap, the backward
routing by the tap at pooled resolution), timed in interleaved rounds in one process.

    python -m benchmarks.conv_pool_train [--optimizer adamw] [--rounds 10]

"without" is the same pipeline minus the index_max_pool pass (what graphc did before it).
"""
from __future__ import annotations

import argparse

from benchmarks.harness import interleaved
from graphc.examples.train_models import CASES, OPTIMIZERS, batches
from graphc.passes import pipeline


def _session(case, spec, x, with_pass: bool):
    import torch

    from graphc.training.compile import compile_train_step

    saved = dict(pipeline.LEVELS)
    if not with_pass:
        for level, names in saved.items():
            pipeline.LEVELS[level] = [n for n in names if n != "index_max_pool"]
    try:
        step = compile_train_step(case.make(), loss=case.loss, optimizer=spec, example_inputs=(torch.from_numpy(x),), log=lambda *a: None)
    finally:
        pipeline.LEVELS.update(saved)
    kernels = [k.name for k in step.build.kernels if not k.name.startswith("eval_")]
    return step.session(), kernels


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--optimizer", default="adamw", choices=sorted(OPTIMIZERS))
    ap.add_argument("--rounds", type=int, default=10)
    args = ap.parse_args(argv)
    case = CASES["cnn"]
    spec = OPTIMIZERS[args.optimizer][0]
    (x, y), = batches(case, 1)
    sessions = {}
    for name, flag in (("without", False), ("with", True)):
        sess, kernels = _session(case, spec, x, flag)
        sessions[name] = sess
        print(f"{name}: {len(kernels)} kernels")
    stats = interleaved({k: (lambda s=s: s.step(x, y)) for k, s in sessions.items()}, rounds=args.rounds)
    for k, st in stats.items():
        print(f"{k:8} median {st['median_ms']:8.2f} ms  best {st['min_ms']:8.2f} ms")
    print(f"without / with: median {stats['without']['median_ms'] / stats['with']['median_ms']:.2f}x, "
          f"best {stats['without']['min_ms'] / stats['with']['min_ms']:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
