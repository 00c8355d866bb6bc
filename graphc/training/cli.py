"""The command line's training parts: `graphc compile --train ...` and `graphc train`.

    graphc compile model.onnx --train --loss cross_entropy --optimizer adamw:lr=1e-3 -o train.gca
    graphc train train.gca --data data.npz --steps 500 [--lr 0.01] [--checkpoint ckpt.gtc] [--resume ckpt.gtc]
"""
from __future__ import annotations

import sys
import time

import numpy as np


def add_compile_arguments(c) -> None:
    t = c.add_argument_group("training (--train compiles a train step: forward, loss, backward and optimizer update)")
    t.add_argument("--train", action="store_true", help="compile a train step instead of inference")
    t.add_argument("--loss", default="cross_entropy", metavar="LOSS",
                   help="cross_entropy[:label_smoothing=X,ignore_index=N] (default) or mse, on the model's first output")
    t.add_argument("--optimizer", default="sgd", metavar="OPT",
                   help="sgd[:lr=,momentum=,nesterov=,weight_decay=,dampening=], adam[:lr=,betas=B1/B2,eps=,weight_decay=] or adamw[:...]")
    t.add_argument("--freeze", action="append", default=[], metavar="NAME", help="a weight not to train (repeatable)")


def add_train_parser(sub) -> None:
    t = sub.add_parser("train", help="run a compiled train step (graphc compile --train) over a dataset")
    t.add_argument("artifact", help="train step artifact (.gca)")
    t.add_argument("--data", required=True, metavar="FILE.npz", help="arrays named as the step's inputs and targets, examples along axis 0")
    t.add_argument("--steps", type=int, default=None, metavar="N", help="steps to run (default: one epoch)")
    t.add_argument("--lr", type=float, default=None, help="learning rate (default: the one compiled in)")
    t.add_argument("--seed", type=int, default=0, help="shuffling seed")
    t.add_argument("--no-shuffle", action="store_true", help="take the batches in file order")
    t.add_argument("--resume", metavar="CKPT", help="start from a checkpoint")
    t.add_argument("--checkpoint", metavar="CKPT", help="write a checkpoint at the end (parameters, optimizer state, step)")
    t.add_argument("--device", default="cpu", help="device to run on (cpu, cuda:0)")
    t.add_argument("--no-progress", action="store_true", help="print one line per 10%% instead of a progress bar")


def compile_train_command(args, graph, out: str, target) -> int:
    from .compile import compile_train_step

    t0 = time.perf_counter()
    step = compile_train_step(graph, args.loss, args.optimizer, target, opt_level=args.opt_level, frozen=set(args.freeze),
                              verify_numerics=args.verify_numerics, log=print)
    step.save(out)
    if args.time_passes and step.report is not None:
        print(step.report.table())
    layout = step.layout
    n_values = sum(int(np.prod(p.shape, dtype=np.int64)) for p in layout.params)
    print(f"compiled a train step of {args.model} for {step.target.describe()} in {time.perf_counter() - t0:.1f}s: "
          f"{len(layout.params)} parameters ({n_values} values), loss {layout.loss['kind']}, optimizer {layout.optimizer['kind']} "
          f"(lr {layout.optimizer['lr']}), inputs {', '.join(str(s.name) for s in layout.data + layout.targets)} -> {out}")
    return 0


class Progress:
    """One status line redrawn in place on a terminal; on a pipe, a line every 10%."""

    def __init__(self, total: int, stream=None, bar: bool | None = None):
        self.total, self.stream = total, stream or sys.stdout
        self.bar = self.stream.isatty() if bar is None else bar
        self.t0 = time.perf_counter()
        self.next_line = 0

    def update(self, done: int, loss: float) -> None:
        ms = (time.perf_counter() - self.t0) * 1e3 / max(done, 1)
        if self.bar:
            width = 30
            filled = width * done // self.total
            self.stream.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{self.total} loss {loss:.4f} ({ms:.1f} ms/step)")
            if done == self.total:
                self.stream.write("\n")
            self.stream.flush()
        elif done >= self.next_line or done == self.total:
            self.stream.write(f"step {done}/{self.total} loss {loss:.6f} ({ms:.1f} ms/step)\n")
            self.stream.flush()
            self.next_line = done + max(self.total // 10, 1)


def cmd_train(args) -> int:
    from ..errors import InputError
    from ..runtime.train import load_train
    from .data import Dataset

    sess = load_train(args.artifact, device=args.device)
    data = Dataset.load(args.data, sess.layout.data + sess.layout.targets)
    if args.resume:
        sess.load_checkpoint(args.resume)
    if args.lr is not None:
        sess.lr = args.lr
    steps = args.steps if args.steps is not None else data.batches_per_epoch
    if steps < 1:
        raise InputError(f"--steps must be at least 1, got {steps}")
    n_in = len(sess.layout.data)
    names = [s.name for s in sess.layout.data + sess.layout.targets]
    progress = Progress(steps, bar=False if args.no_progress else None)
    losses = []
    batches = data.batches(shuffle=not args.no_shuffle, seed=args.seed)
    for k in range(steps):
        batch = next(batches)
        arrays = [batch[n] for n in names]
        losses.append(sess.step(arrays[:n_in], arrays[n_in:]))
        progress.update(k + 1, losses[-1])
    tail = losses[-min(10, len(losses)):]
    print(f"trained {steps} steps (now at step {sess.step_count}, lr {sess.current_lr():g}): loss {losses[0]:.6f} -> {losses[-1]:.6f} "
          f"(mean of the last {len(tail)}: {float(np.mean(tail)):.6f})")
    if not np.isfinite(losses[-1]):
        print("graphc: warning: the loss is not finite (learning rate too high?)", file=sys.stderr)
    if args.checkpoint:
        sess.save_checkpoint(args.checkpoint)
        print(f"checkpoint written to {args.checkpoint}")
    return 0
