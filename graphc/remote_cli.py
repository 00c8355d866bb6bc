"""`graphc bench MODEL --rpc HOST:PORT --key KEY [--target arm --cpu CORE]`: graphc on a remote device.

The local benchmark compares graphc with PyTorch, ONNX Runtime... on this machine; on a remote
device only graphc's artifact runs (the device has the TVM runtime, not the peers). The model is
compiled here for --target, uploaded through the RPC tracker, checked against the reference
outputs (PyTorch, or ONNX Runtime for an .onnx file, as `graphc bench`) and timed there.
"""
from __future__ import annotations

import json
import os
import tempfile
import time

from .errors import GraphcError, InputError


def add_rpc_options(parser, target: bool = True) -> None:
    """--rpc/--key (and, for `graphc bench`, --target/--cpu: the device's) on a subcommand's parser."""
    g = parser.add_argument_group("remote device (TVM RPC)")
    g.add_argument("--rpc", metavar="HOST:PORT", help="measure on a remote device through this TVM RPC tracker")
    g.add_argument("--key", help="with --rpc: the device key registered with the tracker")
    if target:
        g.add_argument("--target", default="x86", help="with --rpc: the device's target (x86, arm); default x86")
        g.add_argument("--cpu", help="with --rpc --target arm: the device's core (default cortex-a72)")


def tune_options(args) -> dict:
    """`graphc tune`'s extra tune_model arguments: with --rpc, measure on the device
    (`graphc.remote_tune`); without, none (this machine)."""
    if bool(args.rpc) != bool(args.key):
        raise InputError("--rpc HOST:PORT and --key KEY go together (the tracker, and the device key registered with it)")
    if not args.rpc:
        return {}
    from .remote_tune import rpc_tuning
    from .targets import resolve

    return rpc_tuning(args.rpc, args.key, resolve(args.target))


def bench_or_remote(local_bench):
    """The `graphc bench` command: `local_bench(args)` unless --rpc asks for the remote device."""

    def command(args) -> int:
        if bool(args.rpc) != bool(args.key):
            raise InputError("--rpc HOST:PORT and --key KEY go together (the tracker, and the device key registered with it)")
        return remote_bench(args) if args.rpc else local_bench(args)

    return command


def remote_bench(args) -> int:
    import graphc

    from .remote import connect
    from .targets import resolve
    from .tuning.cli import _benchmarks_suite

    suite = _benchmarks_suite()
    from .examples import zoo

    if args.model in zoo.MODELS:
        case, reference = suite.builtin_case(args.model), "PyTorch eager"
    elif args.model.endswith(".onnx") and os.path.exists(args.model):
        case, reference = suite.onnx_case(args.model), "ONNX Runtime"
    else:
        raise GraphcError(f"{args.model}: not a built-in model ({', '.join(zoo.MODELS)}) or an existing .onnx file")
    target = resolve(args.target, cpu=args.cpu)
    t0 = time.perf_counter()
    compiled = graphc.compile(graphc.from_onnx(case.onnx_path), target=target, log=lambda *a: None)
    compile_s = time.perf_counter() - t0
    with tempfile.TemporaryDirectory(prefix="graphc-bench-") as tmp:
        artifact = compiled.save(os.path.join(tmp, f"{case.name}.gca"))
        with connect(artifact, args.rpc, args.key) as sess:
            check = suite.check(sess.run(**case.inputs), case.reference)
            stats = sess.benchmark(**case.inputs, repeat=args.rounds)
    row = {"model": case.name, "target": target.to_json(), "device": stats["device"], "compile_s": compile_s,
           "reference": reference, "tolerance": suite.TOLERANCE, **check, **stats}
    verdict = "matches" if check["correct"] else "DIFFERS FROM"
    diff = f"max rel diff {check['max_rel_diff']:.2g}" if check["max_rel_diff"] is not None else check.get("why", "")
    print(f"{case.name} on {stats['device']} ({target.describe()}): {verdict} {reference} "
          f"({diff}); median {stats['median_ms']:.3f} ms, min {stats['min_ms']:.3f} ms "
          f"over {args.rounds} runs (timed on the device); compiled in {compile_s:.1f}s")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(row, f, indent=1)
    return 0 if check["correct"] else 1
