"""`graphc tune` and `graphc bench` (the benchmark suite lives in the repository's benchmarks/)."""
from __future__ import annotations

import os
import sys

from ..errors import GraphcError


def add_parsers(sub) -> None:
    t = sub.add_parser("tune", help="auto-tune a model's kernels (graphc's schedule knobs, then MetaSchedule) into a persistent database")
    t.add_argument("model", help="a .onnx file or a built-in model name (mlp, cnn, attention, resnet50, bert, gpt2)")
    t.add_argument("--target", default="x86", help="target to tune for (CPU targets); default x86")
    t.add_argument("--trials", type=int, default=64,
                   help="total MetaSchedule candidates for the model (resumes: counts what the database holds); 0: template knobs only")
    t.add_argument("--retune", action="store_true", help="search the template knobs again for kernels the database already has")
    t.add_argument("--no-templates", action="store_true", help="skip the template knob search: MetaSchedule trials only")
    t.add_argument("--db", help="tuning database directory (default: ~/.cache/graphc/tuning/<target>/)")
    t.add_argument("--trials-per-iter", type=int, default=16, help="candidates measured per search round (default 16)")

    b = sub.add_parser("bench", help="benchmark a model: graphc vs PyTorch, torch.compile, ONNX Runtime, TVM default")
    b.add_argument("model", help="a .onnx file or a built-in model name (mlp, cnn, attention, resnet50, bert, gpt2)")
    b.add_argument("--rounds", type=int, default=20, help="interleaved timing rounds (default 20)")
    b.add_argument("--systems", help="comma-separated subset: graphc,graphc-tuned,pytorch,torch.compile,onnxruntime,tvm-default")
    b.add_argument("--tuning-db", help="tuning database for graphc-tuned (default: the committed or the user's one, if any)")
    b.add_argument("--no-tuned", action="store_true", help="skip graphc-tuned")
    b.add_argument("--slow-cap-s", type=float, default=30.0, help="seconds of timed runs a slow system gets (default 30)")
    b.add_argument("--json", help="also write the results to this JSON file")


def resolve_model(model: str) -> tuple[str, str]:
    """(path of the ONNX file, the name results are recorded under)."""
    from ..examples import zoo

    if model in zoo.MODELS:
        return zoo.onnx_file(model), model
    if not model.endswith(".onnx"):
        raise GraphcError(f"{model}: not a built-in model ({', '.join(zoo.MODELS)}) or an .onnx file")
    if not os.path.exists(model):
        raise GraphcError(f"{model}: no such file")
    return model, os.path.basename(model)


def cmd_tune(args) -> int:
    from .tune import tune_model

    path, name = resolve_model(args.model)
    from ..remote_cli import tune_options  # --rpc/--key: measure on a remote device

    result = tune_model(path, args.target, args.trials, args.db, trials_per_iter=args.trials_per_iter, label=name,
                        retune=args.retune, templates=not args.no_templates, **tune_options(args))
    print(f"{'kernel':44} {'calls':>5} {'trials':>6} {'default ms':>10} {'tuned ms':>9}  kept")
    for t in result.tasks:
        tuned = f"{t.tuned_ms:9.4f}" if t.tuned_ms is not None else f"{'-':>9}"
        kept = t.method or "default"
        print(f"{t.name[:44]:44} {t.weight:5} {t.trials:6} {t.default_ms:10.4f} {tuned}  {kept}")
    default, tuned = result.estimated_ms(False), result.estimated_ms(True)
    print(
        f"kernel time per inference: default {default:.3f} ms, tuned {tuned:.3f} ms ({default / tuned:.2f}x); "
        f"{result.candidates} template candidates and {result.trials_run} trials in {result.seconds['total']:.0f}s; database {result.db_path}"
    )
    return 0


def cmd_bench(args) -> int:
    suite = _benchmarks_suite()
    return suite.bench_command(args)


def _benchmarks_suite():
    """The suite is part of the source checkout (benchmarks/ beside graphc/), not of the package."""
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    if os.path.exists(os.path.join(root, "benchmarks", "suite.py")) and root not in sys.path:
        sys.path.insert(0, root)
    try:
        from benchmarks import suite
    except ImportError as e:
        raise GraphcError(f"graphc bench needs the source checkout's benchmarks/ directory ({e})") from None
    return suite
