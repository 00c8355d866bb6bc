"""Template tuning (AutoTVM-style): search the knobs of graphc's own CPU schedule rules.

For each kernel, the default schedule is built once while recording which knobs its rules
consulted (`graphc.codegen.knobs`: register-tile rows, K unroll, loop order, parallel or
serial, vector width). Configurations of those knobs are then built and measured against the
default schedule: all of them when the space is small, else coordinate descent from the
default (each knob in turn, the others at the best values so far). A candidate is rejected
when its schedule falls back (a knob value the rule cannot use), fails to build, or computes
a different result than the default schedule on the same random inputs. The fastest is kept
only when a confirmation run (rounds interleaved with the default) shows it at least `MARGIN`
faster both best-of-rounds and in the median round. Measure on a quiet machine: with other
processes on the cores a parallel kernel waits at its barriers and serial candidates win
(on a 2-core VM at load 5, mlp's GEMMs "gained" 1.06-1.42x that re-measured at 0.86-1.0x).

Candidates that schedule to the same PrimFunc as one already measured are not measured again
(many knobs change nothing on a given kernel, e.g. the loop order when there is one row tile).
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import tvm_ffi

from ..codegen.knobs import Knob, describe, recording
from ..targets import Target

MARGIN = 0.03  # a candidate must beat the default by 3% (noise on a busy 2-core machine: ~1-3%)
EXHAUSTIVE_LIMIT = 24  # spaces up to this many configurations are searched exhaustively
MAX_CANDIDATES = 40  # measured configurations per kernel at most (coordinate descent)
CONFIRM_ROUNDS = 8  # even: half the rounds time the default first, half the candidate


@dataclass
class TemplateResult:
    knobs: dict  # the kept configuration ({} when nothing beat the default)
    default_ms: float
    tuned_ms: float
    measured: int = 0  # candidates built and timed
    rejected: list[str] = field(default_factory=list)  # why candidates were dropped (first few)

    @property
    def speedup(self) -> float:
        return self.default_ms / self.tuned_ms


def knob_space(func, tgt: Target):
    """(default scheduled func, its notes, {name: Knob}) of one unscheduled kernel."""
    with recording() as space:
        default, notes = _schedule(func, tgt, None)
    return default, notes, space


def configurations(space: dict[str, Knob]) -> int:
    total = 1
    for k in space.values():
        total *= len(k.candidates)
    return total


def planned_candidates(space: dict[str, Knob]) -> int:
    """How many configurations `search_kernel` will try at most (for the progress bar)."""
    if configurations(space) <= EXHAUSTIVE_LIMIT:
        return configurations(space) - 1
    return min(MAX_CANDIDATES, sum(len(k.candidates) - 1 for k in space.values()))


def load_warning() -> str | None:
    """A line to print when other processes keep the cores busy (the verdicts would favour serial
    schedules), else None."""
    import os

    cores = os.cpu_count() or 1
    load = os.getloadavg()[0]
    if load <= 0.5 * cores:
        return None
    return f"warning: load average {load:.1f} on {cores} cores: timings are unreliable, tune on a quiet machine"


def search_kernel(func, tgt: Target, on_measure: Callable[[float], None] = lambda ms: None) -> TemplateResult:
    """Search one kernel's knob space; `on_measure(candidate ms)` after each timed candidate."""
    default, default_notes, space = knob_space(func, tgt)
    bench = _Bench(func, default, tgt)
    seen: dict[int, float] = {tvm_ffi.structural_hash(default): 1.0}  # scheduled func -> time ratio vs default
    rejected: list[str] = []
    measured = 0

    def ratio(config: dict) -> float:
        nonlocal measured
        sched, notes = _schedule(func, tgt, config)
        if notes != default_notes:  # a rule fell back: this combination is invalid here
            rejected.append(f"{describe(config)}: {_diff(notes, default_notes)}")
            return float("inf")
        key = tvm_ffi.structural_hash(sched)
        if key not in seen:
            seen[key] = bench.ratio(sched, config, rejected)
            measured += 1
            if np.isfinite(seen[key]):
                on_measure(seen[key] * bench.default_ms)
        return seen[key]

    best, best_ratio = _exhaustive(space, ratio) if configurations(space) <= EXHAUSTIVE_LIMIT else _descent(space, ratio)
    result = TemplateResult({}, bench.default_ms, bench.default_ms, measured, rejected[:8])
    if best and best_ratio < 1 - MARGIN:
        sched, _ = _schedule(func, tgt, best)
        default_ms, tuned_ms, median_ratio = bench.confirm(sched)
        if tuned_ms < (1 - MARGIN) * default_ms and median_ratio < 1 - MARGIN:
            result = TemplateResult(best, default_ms, tuned_ms, measured, rejected[:8])
        else:
            result.default_ms = result.tuned_ms = default_ms
    return result


def _exhaustive(space: dict[str, Knob], ratio) -> tuple[dict, float]:
    names = list(space)
    best, best_ratio = {}, 1.0
    for values in itertools.product(*(space[n].candidates for n in names)):
        config = {n: v for n, v in zip(names, values) if v != space[n].default}
        if not config:
            continue
        r = ratio(config)
        if r < best_ratio:
            best, best_ratio = config, r
    return best, best_ratio


def _descent(space: dict[str, Knob], ratio) -> tuple[dict, float]:
    """Coordinate descent from the default: each knob's alternatives with the others fixed at
    the best so far; a second pass only if the first changed something, within MAX_CANDIDATES."""
    best, best_ratio = {}, 1.0
    tried = 0
    for _ in range(2):
        improved = False
        for name, k in space.items():
            for value in k.candidates:
                if value == best.get(name, k.default) or tried >= MAX_CANDIDATES:
                    continue
                config = {**best, name: value}
                if value == k.default:
                    config.pop(name)
                tried += 1
                r = ratio(config)
                if r < best_ratio:
                    best, best_ratio, improved = config, r, True
        if not improved:
            break
    return best, best_ratio


def _schedule(func, tgt: Target, knobs: dict | None):
    from ..codegen.lower import Kernel
    from ..codegen.schedule import schedule_kernel

    return schedule_kernel(Kernel(func, [], [], "tuning"), tgt, knobs)


def _diff(notes: list[str], default_notes: list[str]) -> str:
    return next((n for n in notes if n not in default_notes), "notes differ")[:120]


def kernel_arguments(func) -> list[np.ndarray]:
    """Fixed example arguments for a PrimFunc's buffers: standard normal floats, zero integers."""
    from ..codegen.schedule.common import param_buffers

    rng = np.random.default_rng(0)
    args = []
    for buf in param_buffers(func):
        shape, dtype = [int(d) for d in buf.shape], str(buf.dtype)
        args.append(rng.standard_normal(shape).astype(dtype) if dtype.startswith("float") else np.zeros(shape, dtype))
    return args


class _Bench:
    """Builds and times scheduled variants of one kernel on fixed random arguments, each
    measurement next to one of the default schedule (the machine's load drifts)."""

    def __init__(self, func, default, tgt: Target):
        import tvm

        self.tgt = tgt
        self.dev = tvm.cpu(0)
        self.host_args = kernel_arguments(func)
        lib = self._build(default)
        self.default = self._timer(lib)
        self.reference = self._run(lib)
        self.default_ms = self.default()

    def ratio(self, sched, config: dict, rejected: list[str]) -> float:
        """Candidate time / default time (inf: does not build, or computes something else)."""
        try:
            lib = self._build(sched)
        except Exception as e:  # noqa: BLE001 - an invalid combination: skip it, say why
            rejected.append(f"{describe(config)}: build failed ({type(e).__name__})")
            return float("inf")
        got = self._run(lib)
        if not all(_close(g, r) for g, r in zip(got, self.reference)):
            rejected.append(f"{describe(config)}: result differs from the default schedule's")
            return float("inf")
        timer = self._timer(lib)
        before, cand, after = self.default(), timer(), self.default()
        self.default_ms = min(self.default_ms, before, after)
        return cand / min(before, after)

    def confirm(self, sched) -> tuple[float, float, float]:
        """(default ms, candidate ms, median of the per-round ratios candidate / default):
        best of CONFIRM_ROUNDS interleaved rounds."""
        timer = self._timer(self._build(sched))
        defaults, cands = [], []
        for r in range(CONFIRM_ROUNDS):
            if r % 2:
                cands.append(timer())
                defaults.append(self.default())
            else:
                defaults.append(self.default())
                cands.append(timer())
        ratios = [c / d for c, d in zip(cands, defaults)]
        return min(defaults), min(cands), float(np.median(ratios))

    def _build(self, func):
        import tvm

        return tvm.tirx.build(tvm.IRModule({"main": func.with_attr("global_symbol", "main")}), self.tgt.tvm_target())

    def _args(self):
        import tvm

        return [tvm.runtime.tensor(a, self.dev) for a in self.host_args]

    def _run(self, lib) -> list[np.ndarray]:
        args = self._args()
        lib["main"](*args)
        return [a.numpy() for a in args]

    def _timer(self, lib):
        args = self._args()
        evaluator = lib.time_evaluator("main", self.dev, number=1, repeat=5, min_repeat_ms=5)
        return lambda: min(evaluator(*args).results) * 1e3


def _close(got: np.ndarray, ref: np.ndarray) -> bool:
    """Equal up to float reassociation (a different K unroll or vector partials sum in another order)."""
    if not np.issubdtype(ref.dtype, np.floating):
        return bool(np.array_equal(got, ref))
    scale = float(np.max(np.abs(ref))) if ref.size else 0.0
    return bool(np.allclose(got, ref, rtol=1e-4, atol=1e-5 * max(scale, 1.0), equal_nan=True))
