"""Train step time: graphc's compiled step (forward + loss + backward + optimizer update, one
artifact) against PyTorch eager and torch.compile on the same batch.

    python -m benchmarks.train_step [--models cnn,mlp,bert] [--optimizer adamw] [--rounds 15]

Every system runs the same model from the same weights (graphc.examples.train_models).
torch.compile compiles the model (forward and, through AOTAutograd, its backward); the
optimizer step is torch's default (foreach) implementation in both torch systems. Before
timing, one step of each system is checked to give the same loss. Weights keep training
while being timed (each call is a real step). Medians of interleaved rounds; JSON in
benchmarks/results/train_step.json.
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from benchmarks.harness import interleaved, write_json
from graphc.examples.train_models import CASES, OPTIMIZERS, batches, torch_step


def _systems(model: str, optimizer: str, threads: int):
    import torch

    from graphc.training import compile_train

    torch.set_num_threads(threads)
    case = CASES[model]
    spec, make_torch_opt = OPTIMIZERS[optimizer]
    (x, y), = batches(case, 1)
    t0 = time.perf_counter()
    sess = compile_train(case.make(), loss=case.loss, optimizer=spec, example_inputs=(torch.from_numpy(x),), log=lambda *a: None)
    compile_s = time.perf_counter() - t0

    eager = case.make()
    eager_opt = make_torch_opt([p for p in eager.parameters() if p.requires_grad])
    compiled = case.make()
    compiled_fn = torch.compile(compiled)
    compiled_opt = make_torch_opt([p for p in compiled.parameters() if p.requires_grad])

    first = {"graphc": sess.step(x, y), "pytorch_eager": torch_step(eager, eager_opt, case, x, y)}
    t0 = time.perf_counter()
    first["torch_compile"] = torch_step(compiled_fn, compiled_opt, case, x, y)
    torch_compile_s = time.perf_counter() - t0
    for name, loss in first.items():
        if not np.isclose(loss, first["pytorch_eager"], rtol=1e-4):
            raise SystemExit(f"{model}: the first step's loss differs: {first}")
    fns = {
        "graphc": lambda: sess.step(x, y),
        "pytorch_eager": lambda: torch_step(eager, eager_opt, case, x, y),
        "torch_compile": lambda: torch_step(compiled_fn, compiled_opt, case, x, y),
    }
    return fns, {"graphc_compile_s": compile_s, "torch_compile_first_step_s": torch_compile_s, "first_step_loss": first}


def run(models: list[str], optimizer: str, rounds: int) -> dict:
    from graphc.targets import available_threads

    threads = available_threads()
    results = {}
    for model in models:
        fns, info = _systems(model, optimizer, threads)
        times = interleaved(fns, rounds=rounds, warmup=3, gap_s=0.1)  # torch's OpenMP pool spins after its step
        row = {
            "description": CASES[model].description,
            **{f"{k}_ms": v["median_ms"] for k, v in times.items()},
            "graphc_over_eager": times["graphc"]["median_ms"] / times["pytorch_eager"]["median_ms"],
            "graphc_over_torch_compile": times["graphc"]["median_ms"] / times["torch_compile"]["median_ms"],
            "timings": times,
            **info,
        }
        results[model] = row
        print(f"{model:5} graphc {row['graphc_ms']:8.2f} ms  eager {row['pytorch_eager_ms']:8.2f} ms  "
              f"torch.compile {row['torch_compile_ms']:8.2f} ms  graphc/eager {row['graphc_over_eager']:.2f}  "
              f"graphc/compile {row['graphc_over_torch_compile']:.2f}")
    return {"optimizer": OPTIMIZERS[optimizer][0], "rounds": rounds, "torch_threads": threads, "cases": results}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="cnn,mlp,bert", help=f"comma-separated, of {', '.join(CASES)}")
    ap.add_argument("--optimizer", default="adamw", choices=sorted(OPTIMIZERS))
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--name", default="train_step", help="results file name (benchmarks/results/NAME.json)")
    args = ap.parse_args(argv)
    payload = run([m.strip() for m in args.models.split(",") if m.strip()], args.optimizer, args.rounds)
    print("wrote", write_json(args.name, payload))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
