"""The `graphc` command line.

    graphc compile model.onnx --target x86 -o model.gca
    graphc run model.gca --input x=x.npy --bench 100
    graphc inspect model.onnx [--dot] [-O2]
    graphc targets
    graphc compile model.onnx --train --loss cross_entropy --optimizer adamw:lr=1e-3 -o train.gca
    graphc train train.gca --data data.npz --steps 500
    graphc tune bert --target x86 --trials 256 [--db DIR]
    graphc bench bert [--rounds 20]

Every user mistake prints one readable line (`graphc: error: ...`) and exits
non-zero; `--verbose` adds the traceback.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
import traceback

import numpy as np

from . import __version__, remote_cli
from .errors import GraphcError, InputError
from .training import cli as training_cli
from .tuning import cli as tuning_cli


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line + usage hint, exit 2 (argparse's convention)
        self.print_usage(sys.stderr)
        self.exit(2, f"graphc: error: {message}\n")


def _shape_arg(text: str) -> tuple[str, tuple[int, ...]]:
    try:
        name, dims = text.split("=", 1)
        return name, tuple(int(d) for d in dims.replace("x", ",").split(",") if d)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected NAME=D0,D1,... (e.g. x=1,3,224,224), got {text!r}") from None


def _input_arg(text: str) -> tuple[str, str]:
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"expected NAME=FILE.npy, got {text!r}")
    name, path = text.split("=", 1)
    return name, path


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="graphc", description="graphc: compile and run ML models with TVM-generated kernels.")
    p.add_argument("--version", action="version", version=f"graphc {__version__}")
    p.add_argument("-v", "--verbose", action="store_true", help="show tracebacks and details on errors")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    c = sub.add_parser("compile", help="compile a model (.onnx or .gir) into an artifact (.gca)")
    c.add_argument("model", help="model file: .onnx, or graphc IR text .gir")
    c.add_argument("--target", default="x86", help="target to compile for (see `graphc targets`); default x86")
    c.add_argument("--cpu", help="--target arm: the core to compile for (an LLVM AArch64 CPU name; default cortex-a72)")
    c.add_argument("--arch", help="--target cuda: the GPU architecture (sm_90 default, sm_80, sm_86, sm_89)")
    c.add_argument("-o", "--output", help="artifact path (default: MODEL with .gca suffix)")
    c.add_argument("-O", "--opt-level", type=int, default=2, choices=[0, 1, 2, 3], help="optimization level (default 2)")
    c.add_argument("--input-shape", action="append", type=_shape_arg, default=[], metavar="NAME=D0,D1,..", help="fix a dynamic input shape")
    c.add_argument("--print-after", action="append", default=[], metavar="PASS", help="print the IR after PASS ('all' for every pass)")
    c.add_argument("--dump-ir", metavar="DIR", help="write the IR after every pass into DIR")
    c.add_argument("--verify-numerics", action="store_true", help="run the reference interpreter before/after every pass")
    c.add_argument("--time-passes", action="store_true", help="print per-pass times")
    c.add_argument("--tuning-db", metavar="DIR", help="use this tuning database (default: the target's, from `graphc tune`, if any)")
    c.add_argument("--no-tuning", action="store_true", help="ignore tuning databases: graphc's default schedules only")
    training_cli.add_compile_arguments(c)

    r = sub.add_parser("run", help="run a compiled artifact and print its outputs (and latency)")
    r.add_argument("artifact", help="artifact file (.gca)")
    r.add_argument("--input", action="append", type=_input_arg, default=[], metavar="NAME=FILE.npy", help="input array from a .npy file")
    r.add_argument("--random", action="store_true", help="use random inputs for the ones not given")
    r.add_argument("--bench", type=int, default=0, metavar="N", help="also time N runs and print the median latency")
    r.add_argument("--device", default=None, help="device to run on (cpu, cuda:0); default: cuda:0 for --target cuda artifacts, else cpu")
    r.add_argument("--save", metavar="FILE.npz", help="write the outputs to an .npz file")
    r.add_argument("--rpc", metavar="HOST:PORT", help="run (and --bench) on a remote device through this TVM RPC tracker")
    r.add_argument("--key", help="with --rpc: the device key registered with the tracker")

    i = sub.add_parser("inspect", help="print a model's graphc IR (or an artifact's summary)")
    i.add_argument("model", help=".onnx, .gir or .gca file")
    i.add_argument("-O", "--opt-level", type=int, default=None, choices=[0, 1, 2, 3], help="show the IR after the -O pipeline")
    i.add_argument("--dot", action="store_true", help="print the graph in Graphviz DOT format instead")
    i.add_argument("--explain-fusion", action="store_true", help="list every fused group and every near miss with the reason")
    i.add_argument("--input-shape", action="append", type=_shape_arg, default=[], metavar="NAME=D0,D1,..")

    sub.add_parser("targets", help="list the compilation targets and what each needs")
    training_cli.add_train_parser(sub)
    tuning_cli.add_parsers(sub)  # graphc tune, graphc bench
    remote_cli.add_rpc_options(sub.choices["bench"])  # graphc bench --rpc HOST:PORT --key KEY
    remote_cli.add_rpc_options(sub.choices["tune"], target=False)  # graphc tune --rpc HOST:PORT --key KEY
    return p


def _load_graph(path: str, input_shapes: dict | None):
    from .compiler import to_graph

    if path.endswith(".gir"):
        from .printer import parse_graph

        try:
            with open(path) as f:
                return parse_graph(f.read())
        except OSError as e:
            raise GraphcError(f"{path}: {e.strerror}") from None
    return to_graph(path, input_shapes)


def cmd_compile(args) -> int:
    from .compiler import compile as compile_model
    from .targets import resolve

    out = args.output or os.path.splitext(args.model)[0] + ".gca"
    t0 = time.perf_counter()
    target = resolve(args.target, cpu=args.cpu, arch=args.arch)  # before importing: a missing toolchain fails fast
    graph = _load_graph(args.model, dict(args.input_shape) or None)
    if args.train:
        return training_cli.compile_train_command(args, graph, out, target)
    compiled = compile_model(
        graph,
        target,
        opt_level=args.opt_level,
        verify_numerics=args.verify_numerics,
        print_after=tuple(args.print_after),
        dump_ir=args.dump_ir,
        tuning=False if args.no_tuning else args.tuning_db,
    )
    compiled.save(out)
    if args.time_passes and compiled.pipeline_report is not None:
        print(compiled.pipeline_report.table())
    g = compiled.graph
    kernels = compiled.build.kernels
    print(
        f"compiled {args.model} for {compiled.target.describe()} in {time.perf_counter() - t0:.1f}s: "
        f"{len(g.compute_nodes())} nodes, {sum(k.uses for k in kernels)} kernel calls ({len(kernels)} distinct kernels) -> {out}"
    )
    return 0


def cmd_run(args) -> int:
    from .runtime import load

    if bool(args.rpc) != bool(args.key):
        raise InputError("--rpc HOST:PORT and --key KEY go together (the tracker, and the device key registered with it)")
    if args.rpc:
        from .remote import connect

        sess = connect(args.artifact, args.rpc, args.key, device=args.device)
    else:
        sess = load(args.artifact, device=args.device)
    given = {}
    for name, path in args.input:
        if name not in sess.input_names:
            raise InputError(f"artifact has no input named {name!r}; its inputs are: {', '.join(sess.input_names)}")
        try:
            given[name] = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as e:
            raise InputError(f"input {name!r}: cannot read {path}: {e}") from None
    rng = np.random.default_rng(0)
    for spec in sess.inputs:
        if spec.name not in given:
            if not args.random:
                raise InputError(f"missing input {spec.name!r} ({spec.type}); pass --input {spec.name}=FILE.npy or --random")
            given[spec.name] = spec.random(rng)
    outputs = sess.run(**given)
    for spec, arr in zip(sess.outputs, outputs):
        a64 = arr.astype(np.float64) if arr.dtype.kind in "fiub" else arr
        print(f"{spec.name}: {spec.type}  min {a64.min():.6g}  max {a64.max():.6g}  mean {a64.mean():.6g}")
    if args.save:
        np.savez(args.save, **dict(zip(sess.output_names, outputs)))
        print(f"outputs written to {args.save}")
    if args.bench:
        stats = sess.benchmark(**given, repeat=args.bench)
        print(f"latency: median {stats['median_ms']:.3f} ms, min {stats['min_ms']:.3f} ms over {args.bench} runs")
    return 0


def cmd_inspect(args) -> int:
    if args.model.endswith(".gca"):
        from .runtime.artifact import read_artifact

        art = read_artifact(args.model)
        print(f"graphc artifact {args.model} (graphc {art.graphc_version})")
        print(f"  target: {art.target}")
        for s in art.inputs:
            print(f"  input  {s.name}: {s.type}")
        for s in art.outputs:
            print(f"  output {s.name}: {s.type}")
        nbytes = sum(a.nbytes for _, a in art.params)
        print(f"  {len(art.params)} parameters, {nbytes / 1e6:.2f} MB; library {len(art.lib) / 1e6:.2f} MB")
        for k in art.meta.get("kernels", []):
            print(f"  kernel {k['name']:40} {k['label']:28} x{k['uses']}  {'; '.join(k['notes'])}")
        return 0
    graph = _load_graph(args.model, dict(args.input_shape) or None)
    if args.opt_level is not None or args.explain_fusion:
        from .passes.pipeline import optimize

        graph, report = optimize(graph, args.opt_level if args.opt_level is not None else 2, log=lambda s: None)
        if args.explain_fusion:
            from .passes.explain import explain_fusion

            print(explain_fusion(graph, report.rewrites))
            return 0
    if args.dot:
        from .nxgraph import to_dot

        print(to_dot(graph))
    else:
        print(graph)
    return 0


def cmd_targets(args) -> int:
    from .targets import KNOWN_TARGETS

    for name, desc in KNOWN_TARGETS.items():
        print(f"{name:6} {desc}")
    return 0


COMMANDS = {"compile": cmd_compile, "run": cmd_run, "inspect": cmd_inspect, "targets": cmd_targets, "train": training_cli.cmd_train}
COMMANDS.update({"tune": tuning_cli.cmd_tune, "bench": remote_cli.bench_or_remote(tuning_cli.cmd_bench)})


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 2
    try:
        return COMMANDS[args.command](args)
    except GraphcError as e:
        if args.verbose:
            traceback.print_exc()
        print(f"graphc: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("graphc: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # a graphc bug: say so, keep it to one line unless --verbose
        if args.verbose:
            traceback.print_exc()
        print(f"graphc: internal error: {type(e).__name__}: {e} (rerun with --verbose for the traceback)", file=sys.stderr)
        return 3


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
