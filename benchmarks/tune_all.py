"""Tune the benchmark models into the committed database the suite's "graphc-tuned" column uses:

    python -m benchmarks.tune_all                      # all six models, template knobs only
    python -m benchmarks.tune_all --models mlp,cnn --trials 64

writes benchmarks/tuning/<target>/ (`suite.default_tuning_db` looks there first): verdicts.json
(per kernel: the kept knob values, default and tuned times) and sessions.json (tuning time per
model, which the benchmark report shows). Run it on a quiet machine: the search compares kernel
timings, and other load makes serial schedules look better than parallel ones. Resumable: kernels
already in the database are skipped unless --retune. With --trials > 0 MetaSchedule's records are
written there too (large: commit only verdicts.json and sessions.json).
"""
from __future__ import annotations

import argparse
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def committed_db_dir(target) -> str:
    from graphc.tuning.database import target_key

    return os.path.join(HERE, "tuning", target_key(target))


def main(argv: list[str] | None = None) -> int:
    from graphc.examples import zoo
    from graphc.targets import resolve
    from graphc.tuning.tune import tune_model

    from .suite import DEFAULT_MODELS

    ap = argparse.ArgumentParser(prog="python -m benchmarks.tune_all", description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", default=",".join(DEFAULT_MODELS), help="comma-separated built-in models (default: the suite's six)")
    ap.add_argument("--trials", type=int, default=0, help="MetaSchedule trials per model after the template search (default 0)")
    ap.add_argument("--retune", action="store_true", help="search the template knobs again for kernels already in the database")
    ap.add_argument("--db", help="database directory (default: benchmarks/tuning/<target>)")
    args = ap.parse_args(argv)
    target = resolve("x86")  # what the suite's graphc-tuned column compiles for
    db = args.db or committed_db_dir(target)
    for name in args.models.split(","):
        print(f"== {name}", flush=True)
        result = tune_model(zoo.onnx_file(name), target, args.trials, db, label=name, retune=args.retune)
        default, tuned = result.estimated_ms(False), result.estimated_ms(True)
        kept = sum(t.weight for t in result.tasks if t.method)
        check = result.model_check
        whole = f"; whole model {check[0]:.3f} -> {check[1]:.3f} ms ({check[2]:.2f}x)" if check else ""
        print(f"{name}: kernel time per inference {default:.3f} -> {tuned:.3f} ms ({default / tuned:.2f}x), "
              f"{kept} of {sum(t.weight for t in result.tasks)} kernel calls tuned{whole}, {result.seconds['total']:.0f}s", flush=True)
    print(f"database: {db}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
