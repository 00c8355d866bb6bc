"""The benchmark suite: graphc (default schedules, and tuned when a tuning database exists) vs
PyTorch eager, torch.compile, ONNX Runtime and TVM's default Relax pipeline.

    python -m benchmarks.suite                                  # all six built-in models
    python -m benchmarks.suite --models mlp,cnn --rounds 3      # the fast mode CI runs
    graphc bench bert                                           # one model (or an .onnx file)

Per model and system: median / min / p90 latency over interleaved rounds, the ratio of every
peer's median to graphc's (>1: graphc is faster), a correctness check of the outputs against
PyTorch eager, compile time (and tuning time), and peak RSS growth while compiling and during
the first run. Each system runs in its own worker process (benchmarks/worker.py: clean compile
times and memory, no two runtimes' thread pools in one process); the parent interleaves the
rounds. Slow systems (TVM's untuned pipeline is 17x-129x slower than PyTorch) take part in as
many rounds as fit in --slow-cap-s.

Writes benchmarks/results/suite.json, suite.md and suite.png, and the README's table
(`python -m benchmarks.report` redraws them from the JSON).
"""
from __future__ import annotations

import argparse
import os
import sys

import numpy as np

from benchmarks import report
from benchmarks.harness import interleaved, write_json
from benchmarks.systems import PEERS, Case, graphc_system
from benchmarks.worker import SystemWorker

TOLERANCE = 1e-3  # max abs diff against PyTorch, relative to the output's scale (max(1, max |ref|))
HERE = os.path.dirname(os.path.abspath(__file__))
# untimed pause between two systems' runs, so the last one's worker threads have stopped spinning
# (ONNX Runtime's, OpenMP's and TVM's pools busy-wait after a run): with 0.02 s, the seed CNN's
# graphc median in this suite swung 2.7 -> 4.9 ms depending on which system ran before it
GAP_S = 0.25
# A round's sample of one system is the mean of back-to-back runs lasting about SAMPLE_MS after
# one untimed run: the steady-state latency of a model served repeatedly. Timing the first run
# after the pause measured thread-pool wake-up and cold caches instead (every system's seed MLP
# came out 3-5x slower than back to back). Systems slower than WARM_LIMIT_MS per run (TVM's
# untuned pipeline) time one run, unwarmed: their warm-up would cost more than their rounds.
SAMPLE_MS = 20.0
WARM_LIMIT_MS = 1000.0
MAX_INNER = 100


def sample_plan(run_ms: float) -> tuple[int, bool]:
    """(runs per sample, warm-up run before them) for a system whose (second) run took this long."""
    if run_ms >= WARM_LIMIT_MS:
        return 1, False
    return max(1, min(MAX_INNER, int(SAMPLE_MS / max(run_ms, 1e-3)))), True
DEFAULT_MODELS = ("mlp", "cnn", "attention", "resnet50", "bert", "gpt2")


def check(outputs: list[np.ndarray], reference: list[np.ndarray]) -> dict:
    if len(outputs) != len(reference):
        return {"correct": False, "max_rel_diff": None, "why": f"{len(outputs)} outputs, PyTorch has {len(reference)}"}
    worst = 0.0
    for out, ref in zip(outputs, reference):
        out = np.asarray(out)
        if out.shape != ref.shape:
            return {"correct": False, "max_rel_diff": None, "why": f"output shape {out.shape} != PyTorch's {ref.shape}"}
        scale = max(1.0, float(np.max(np.abs(ref))))
        worst = max(worst, float(np.max(np.abs(out.astype(np.float64) - ref))) / scale)
    return {"correct": bool(worst <= TOLERANCE), "max_rel_diff": worst}


def default_tuning_db() -> str | None:
    """The committed database for this machine type if there is one, else the user's default one."""
    from graphc.targets import resolve
    from graphc.tuning.database import VERDICTS, default_db_dir, target_key

    target = resolve("x86")
    for path in (os.path.join(HERE, "tuning", target_key(target)), default_db_dir(target)):
        if os.path.exists(os.path.join(path, VERDICTS)):
            return path
    return None


def systems_for(tuning_db: str | None, session=None) -> dict:
    systems = {"graphc": graphc_system(False, session)}
    if tuning_db:
        systems["graphc-tuned"] = graphc_system(tuning_db, session)
    systems.update(PEERS)
    return systems


def builtin_case(name: str) -> Case:
    from graphc.examples import zoo

    module, inputs = zoo.build(name)
    return Case(name, module, inputs, zoo.onnx_file(name), zoo.reference(module, inputs))


def onnx_case(path: str) -> Case:
    """An ONNX file from the user: random inputs from its signature, ONNX Runtime's outputs as the
    reference (there is no PyTorch module to run), so the PyTorch systems are left out."""
    import onnxruntime as ort

    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    inputs = {}
    for spec in sess.get_inputs():
        if any(not isinstance(d, int) for d in spec.shape):
            from graphc.errors import InputError

            raise InputError(f"{path}: input {spec.name} has dynamic shape {spec.shape}; graphc bench needs static input shapes")
        if "float" in spec.type:
            inputs[spec.name] = rng.standard_normal(spec.shape).astype(np.float32)
        else:  # token ids, masks: small non-negative integers are valid for both
            inputs[spec.name] = rng.integers(0, 2, spec.shape).astype(np.int64 if "int64" in spec.type else np.int32)
    return Case(os.path.basename(path), None, inputs, path, sess.run(None, inputs))


def bench_command(args) -> int:
    """`graphc bench MODEL`: one model, the markdown table on stdout (the README is left alone)."""
    import json
    import tempfile

    from graphc.examples import zoo

    if args.model in zoo.MODELS:
        case, reference = builtin_case(args.model), "PyTorch eager"
    elif args.model.endswith(".onnx") and os.path.exists(args.model):
        case, reference = onnx_case(args.model), "ONNX Runtime"
    else:
        from graphc.errors import GraphcError

        raise GraphcError(f"{args.model}: not a built-in model ({', '.join(zoo.MODELS)}) or an existing .onnx file")
    tuning_db = None if args.no_tuned else (args.tuning_db or default_tuning_db())
    systems = systems_for(tuning_db)
    if case.module is None:
        systems = {k: v for k, v in systems.items() if k not in ("pytorch", "torch.compile")}
    if args.systems:
        systems = {k: v for k, v in systems.items() if k in args.systems.split(",")}
    print(f"{case.name}: reference {reference}; systems {', '.join(systems)}", flush=True)
    model = args.model if case.module is None else case.name
    row = bench_case(model, case.reference, list(systems), tuning_db, args.rounds, args.slow_cap_s, log=lambda s: print(s, flush=True))
    row["description"] = case.name
    row["tuning"] = report.tuning_summary(tuning_db, case.name) if tuning_db else None
    payload = {"rounds": args.rounds, "slow_cap_s": args.slow_cap_s, "tolerance": TOLERANCE, "tuning_db": tuning_db, "reference": reference, "models": {case.name: row}}
    with tempfile.TemporaryDirectory() as tmp:
        path = write_json("bench", payload, os.path.dirname(os.path.abspath(args.json)) if args.json else tmp)
        with open(path) as f:
            results = json.load(f)
        if args.json:
            os.replace(path, args.json)
    print(report.markdown(results))
    wrong = [k for k, e in row["systems"].items() if e.get("correct") is False or (k.startswith("graphc") and "error" in e)]
    return 1 if wrong else 0  # a peer that cannot run the model is reported, not an error of graphc bench


def bench_case(
    model: str,
    reference: list[np.ndarray],
    systems: list[str],
    tuning_db: str | None,
    rounds: int,
    slow_cap_s: float,
    log=print,
    threads: int | None = None,
) -> dict:
    """Prepare every system in its own worker process (one after the other, so compile times
    are not shared), check its outputs, then time them all in interleaved rounds."""
    entries: dict[str, dict] = {}
    workers: dict[str, SystemWorker] = {}
    try:
        for name in systems:
            log(f"  {model}: {name}: compiling ...")
            worker = SystemWorker(name, model, tuning_db, threads)
            info = worker.info
            if not worker.ok:
                worker.close()
                entries[name] = {"error": info["error"]}
                log(f"  {model}: {name}: FAILED {info['error']}")
                if os.environ.get("GRAPHC_BENCH_TRACEBACKS"):
                    print(info.get("traceback", ""), file=sys.stderr)
                continue
            outputs = info.pop("outputs")
            entries[name] = {**info, **check(outputs, reference)}
            workers[name] = worker
            log(f"  {model}: {name}: compiled in {info['compile_s']:.1f}s, first run {info['first_run_ms']:.1f} ms, correct={entries[name]['correct']}")
        plans = {k: sample_plan(entries[k]["second_run_ms"]) for k in workers}
        # a system whose rounds would not fit in the cap runs fewer of them (at least 1)
        round_ms = {k: (inner + warm) * entries[k]["second_run_ms"] for k, (inner, warm) in plans.items()}
        caps = {k: max(1, int(slow_cap_s * 1e3 / ms)) for k, ms in round_ms.items() if ms * rounds > slow_cap_s * 1e3}
        fns = {k: (lambda w=w, plan=plans[k]: w.time_runs(*plan)) for k, w in workers.items()}
        # the first run (the correctness check) was the warm-up
        times = interleaved(fns, rounds=rounds, warmup=0, max_rounds=caps, self_timed=True, gap_s=GAP_S)
        for k, (inner, warm) in plans.items():
            entries[k].update(runs_per_sample=inner, warmed=warm)
    finally:
        for w in workers.values():
            w.close()
    for k, t in times.items():
        entries[k].update(t)
    ratios = {}
    for mine in ("graphc", "graphc-tuned"):
        if mine in times:
            ratios[mine] = {peer: times[peer]["median_ms"] / times[mine]["median_ms"] for peer in times if peer != mine}
    return {"systems": entries, "ratios": ratios, "slow_round_caps": caps}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default=",".join(DEFAULT_MODELS), help="comma-separated built-in models (default: all six)")
    ap.add_argument("--rounds", type=int, default=20, help="interleaved timing rounds (default 20)")
    ap.add_argument("--slow-cap-s", type=float, default=30.0, help="seconds of timed runs a slow system gets per model (default 30)")
    ap.add_argument("--systems", default=None, help="comma-separated subset of systems to run")
    ap.add_argument("--tuning-db", default=None, help="tuning database for graphc-tuned (default: benchmarks/tuning/<target>, else the user's)")
    ap.add_argument("--no-tuned", action="store_true", help="skip graphc-tuned even if a tuning database exists")
    ap.add_argument("--threads", type=int, default=None, help="threads every system uses (default: all available cores)")
    ap.add_argument("--out", default=os.path.join(HERE, "results"), help="directory for suite.json/.md/.png")
    ap.add_argument("--name", default="suite", help="results file name (default suite)")
    ap.add_argument("--no-readme", action="store_true", help="do not update the README's table")
    ap.add_argument("--merge", action="store_true", help="keep the other models' rows of an existing results file (rerun some models)")
    args = ap.parse_args(argv)
    from graphc.examples import zoo

    models = [m for m in args.models.split(",") if m]
    unknown = [m for m in models if m not in zoo.MODELS]
    if unknown:
        ap.error(f"unknown model(s) {', '.join(unknown)}; built-in: {', '.join(zoo.MODELS)}")
    tuning_db = None if args.no_tuned else (args.tuning_db or default_tuning_db())
    systems = systems_for(tuning_db)
    if args.systems:
        wanted = args.systems.split(",")
        systems = {k: v for k, v in systems.items() if k in wanted}
    results = {}
    for name in models:
        print(f"{name}: {zoo.MODELS[name].description}", flush=True)
        reference = builtin_case(name).reference
        row = bench_case(name, reference, list(systems), tuning_db, args.rounds, args.slow_cap_s, log=lambda s: print(s, flush=True), threads=args.threads)
        row["description"] = zoo.MODELS[name].description
        row["tuning"] = report.tuning_summary(tuning_db, name) if tuning_db else None
        results[name] = row
        print(report.model_line(name, row), flush=True)
    from graphc.targets import available_threads

    previous = os.path.join(args.out, f"{args.name}.json")
    if args.merge and os.path.exists(previous):
        import json

        with open(previous) as f:
            results = {**json.load(f)["models"], **results}
    threads = args.threads or available_threads()
    payload = {"rounds": args.rounds, "slow_cap_s": args.slow_cap_s, "tolerance": TOLERANCE, "threads": threads, "tuning_db": tuning_db, "models": results}
    path = write_json(args.name, payload, args.out)
    written = report.write_all(path, readme=not args.no_readme)
    print("wrote", path, *written)
    return 0


if __name__ == "__main__":
    sys.exit(main())
