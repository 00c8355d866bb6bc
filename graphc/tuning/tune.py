"""`graphc tune`: search over the schedules of the kernels graphc compiles a model into.

    result = tune_model("model.onnx", "x86", trials=256)        # into the target's default database
    compiled = graphc.compile("model.onnx", "x86")              # picks the tuned records up

Two searches, in this order: the knobs of graphc's own schedule rules (`graphc.tuning.templates`:
every kernel not yet in the database, or all with `retune`), then MetaSchedule for `trials`
(0: templates only). Each kernel's verdict keeps the fastest of its default schedule, its
template configuration and MetaSchedule's best record, each measured against the default.

The tasks are exactly the PrimFuncs codegen lowers (after the -O2 pipeline and weight packing),
deduplicated by structure and weighted by how often the model calls each. Hand-written template
kernels (flash attention) are not tuned. `trials` is the total number of measured candidates for
the model: re-running continues from what the database already holds (resumable). After the
search every tuned kernel is timed against graphc's default schedule and the verdict stored;
compile uses a tuned schedule only where it was faster.

Remote measurement (an ARM board over RPC) plugs in through three arguments: `builder` and
`runner` are MetaSchedule's (default: LocalBuilder / LocalRunner on this machine; e.g.
`ms.runner.RPCRunner(ms.runner.RPCConfig(host, port, key))`), and `kernel_timer(func, target)
-> (() -> ms)` times a scheduled kernel for the default-vs-tuned verdict (default: build and
time it in this process).
"""
from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field

from ..targets import Target, resolve
from .database import TuningDatabase, default_db_dir, target_key, workload_key, workload_module
from .progress import Progress


@dataclass
class Task:
    name: str  # the first kernel name it appears under, e.g. "k3_fused_linear_bias_gelu"
    label: str
    func: object  # unscheduled PrimFunc
    weight: int  # calls per inference
    default_ms: float | None = None
    tuned_ms: float | None = None
    trials: int = 0
    method: str | None = None  # the verdict's winner: "templates", "metaschedule", None (default schedule)


@dataclass
class TuneResult:
    db_path: str
    tasks: list[Task]
    seconds: dict[str, float] = field(default_factory=dict)
    trials_run: int = 0
    candidates: int = 0  # template configurations measured
    model_check: tuple[float, float, float] | None = None  # whole model: default ms, tuned ms, speedup

    def estimated_ms(self, tuned: bool) -> float:
        """Sum over kernels of calls x time: the kernel time of one inference, default or with
        the kept (faster) schedules."""
        total = 0.0
        for t in self.tasks:
            if t.default_ms is None:
                continue
            ms = min(t.default_ms, t.tuned_ms) if tuned and t.method and t.tuned_ms is not None else t.default_ms
            total += t.weight * ms
        return total


def extract_tasks(graph, target: Target) -> list[Task]:
    """The distinct lowered kernels of a compiled (optimized) graph, with their call counts;
    the same kernels, in the same order, that codegen's `build_relax_module` schedules."""
    from ..codegen.kernels import template_kernel
    from ..codegen.lower import lower_kernel
    from ..codegen.module import VIEW_OPS, _ident

    tasks: dict[str, Task] = {}
    for node in graph.nodes:
        if node.op == "const" or node.op in VIEW_OPS or template_kernel(node, target) is not None:
            continue
        kernel = lower_kernel(node, f"k{len(tasks)}_{_ident(node)}")
        func = kernel.func.without_attr("global_symbol")
        key = workload_key(func)
        if key in tasks:
            tasks[key].weight += 1
        else:
            tasks[key] = Task(str(kernel.func.attrs["global_symbol"]), kernel.label, func, 1)
    return list(tasks.values())


def tune_model(
    model,
    target: "str | Target" = "x86",
    trials: int = 64,
    db_path: str | None = None,
    *,
    input_shapes: dict | None = None,
    builder=None,
    runner=None,
    trials_per_iter: int = 16,
    out=sys.stdout,
    label: str | None = None,
    kernel_timer=None,
    retune: bool = False,
    templates: bool = True,
) -> TuneResult:
    """Tune `model`'s kernels for `target` into the database at `db_path` (default: the
    target's default database). Returns per-kernel default and tuned times. `label` names the
    model in the database's log of tuning sessions (what the benchmark reports as tuning time).
    `retune`: search the template knobs again for kernels the database already has.
    `templates=False` runs MetaSchedule alone (`graphc tune --no-templates`).
    The template search measures on this machine, so it is skipped when a remote `builder`,
    `runner` or `kernel_timer` is given."""
    from ..compiler import compile as compile_model
    from ..errors import GraphcError

    tgt = resolve(target)
    if tgt.kind == "cuda":
        raise GraphcError("graphc tune: MetaSchedule tuning is for CPU targets (x86, arm); cuda kernels use graphc's rules")
    if trials < 0:
        raise GraphcError(f"graphc tune: --trials must be >= 0, got {trials}")
    t0 = time.perf_counter()
    compiled = compile_model(model, tgt, input_shapes=input_shapes, tuning=False, log=lambda *a, **k: None)
    db = TuningDatabase(db_path or default_db_dir(tgt), tgt)
    tasks = extract_tasks(compiled.graph, tgt)
    seconds = {"compile": time.perf_counter() - t0}
    result = TuneResult(db.path, tasks, seconds)
    if not tasks:
        print("nothing to tune: every kernel is a hand-written template", file=out)
        return result
    for t in tasks:
        t.trials = db.trials(t.func)
    already = sum(t.trials for t in tasks)
    remaining = trials - already
    print(
        f"tuning {len(tasks)} kernels ({sum(t.weight for t in tasks)} calls per inference) for {tgt.describe()}; "
        f"database {db.path}: {already} trials already, {max(remaining, 0)} to run",
        file=out,
    )
    t_templates = time.perf_counter()
    if not templates:
        print("template search skipped (--no-templates)", file=out)
    elif builder is None and runner is None and kernel_timer is None:
        result.candidates = _template_search(tasks, tgt, db, retune, out)
    else:
        print("template search skipped: it measures on this machine only", file=out)
    seconds["templates"] = time.perf_counter() - t_templates
    t1 = time.perf_counter()
    if remaining > 0:
        progress = Progress(tasks, already, trials, out)
        _search(tasks, tgt, db, remaining, trials_per_iter, builder, runner, progress)
        progress.finish()
        result.trials_run = progress.done - already
        for t in tasks:
            t.trials = db.trials(t.func)
    seconds["search"] = time.perf_counter() - t1
    t2 = time.perf_counter()
    _compare(tasks, tgt, db, kernel_timer or _kernel_timer)
    seconds["compare"] = time.perf_counter() - t2
    if builder is None and runner is None and kernel_timer is None:  # the model runs here
        t3 = time.perf_counter()
        result.model_check = _check_on_model(compiled, model, tgt, input_shapes, db, tasks, out)
        seconds["model_check"] = time.perf_counter() - t3
    seconds["total"] = time.perf_counter() - t0
    db.record_session(label or getattr(model, "name", None) or str(model), result.trials_run, seconds["total"], result.candidates,
                      model_speedup=result.model_check[2] if result.model_check else None)
    return result


def _check_on_model(compiled, model, tgt: Target, input_shapes, db: TuningDatabase, tasks: list[Task], out):
    """Times the model with the kept tuned schedules against the default one; withdraws them
    when the model is not faster (model_check.py says why kernels alone can mislead)."""
    from ..compiler import compile as compile_model
    from .model_check import model_speedup

    kept = [t for t in tasks if db.uses_tuned(t.func)]
    if not kept:
        return None
    tuned = compile_model(model, tgt, input_shapes=input_shapes, tuning=db.path, log=lambda *a, **k: None)
    default_ms, tuned_ms, speedup = model_speedup(compiled.session(), tuned.session())
    verdict = f"whole model: default {default_ms:.3f} ms, tuned {tuned_ms:.3f} ms ({speedup:.2f}x)"
    if speedup < 1.0:
        for t in kept:
            db.withdraw(t.func, f"{verdict}: not faster")
            _take_verdict(t, db)
        verdict += f": {len(kept)} tuned kernels withdrawn, the default schedules stay"
    print(verdict, file=out)
    return default_ms, tuned_ms, speedup


def _template_search(tasks: list[Task], tgt: Target, db: TuningDatabase, retune: bool, out) -> int:
    """Search each kernel's schedule knobs (those not in the database yet) and record the verdicts;
    returns how many configurations were measured."""
    from .templates import knob_space, load_warning, planned_candidates, search_kernel

    todo = [t for t in tasks if retune or not db.has_result(t.func, "templates")]
    print(f"template search: {len(todo)} kernels to search, {len(tasks) - len(todo)} already in the database", file=out)
    if not todo:
        return 0
    warning = load_warning()
    if warning:
        print(warning, file=out)
    plans = [planned_candidates(knob_space(t.func, tgt)[2]) for t in todo]
    progress = Progress(todo, 0, sum(plans), out, unit="candidates")
    measured = 0
    for i, t in enumerate(todo):
        last = sum(plans[: i + 1])

        def measured_one(ms: float, i: int = i, last: int = last) -> None:
            progress.done = min(progress.done, last - 1)  # a second descent pass may pass the plan
            progress.update(i, [ms / 1e3])

        found = search_kernel(t.func, tgt, on_measure=measured_one)
        db.record_verdict(t.func, found.default_ms, found.tuned_ms, "templates", found.knobs)
        measured += found.measured
        progress.done = last  # the bar ends full even where candidates coincided
        progress.best_ms[i] = found.tuned_ms
        progress.update(i, [])
    progress.finish()
    return measured


def _search(tasks: list[Task], tgt: Target, db: TuningDatabase, trials: int, per_iter: int, builder, runner, progress) -> None:
    import logging

    from tvm.s_tir import meta_schedule as ms
    from tvm.s_tir.meta_schedule.logging import get_loggers_from_work_dir

    from ..examples.zoo import cache_dir

    # MetaSchedule's per-task logs (large, not needed to reuse the records) stay out of the database
    work_dir = os.path.join(cache_dir(), "tuning-logs", target_key(tgt))
    loggers = get_loggers_from_work_dir(work_dir, [t.name for t in tasks])
    for lg in loggers:  # the per-task logs go to files; the console shows our progress bar
        for h in lg.handlers:
            if isinstance(h, logging.StreamHandler) and not isinstance(h, logging.FileHandler):
                h.setLevel(logging.WARNING)
    logging.getLogger("tvm.s_tir.meta_schedule").setLevel(logging.WARNING)
    # build and measure on this machine by default; the time-outs allow for a busy shared machine
    # (a worker importing TVM under load takes longer than MetaSchedule's 30 s default)
    builder = builder or ms.builder.LocalBuilder(max_workers=tgt.num_threads, timeout_sec=180)
    runner = runner or ms.runner.LocalRunner(timeout_sec=120)
    contexts = [
        ms.TuneContext(
            mod=workload_module(t.func),
            target=tgt.tvm_target(),
            space_generator="post-order-apply",
            search_strategy="evolutionary",
            task_name=t.name,
            logger=lg,
            num_threads=tgt.num_threads,
            rand_state=i,
        ).clone()
        for i, (t, lg) in enumerate(zip(tasks, loggers))
    ]
    ms.tune_tasks(
        tasks=contexts,
        task_weights=[float(t.weight) for t in tasks],
        work_dir=work_dir,
        max_trials_global=trials,
        num_trials_per_iter=min(per_iter, trials),
        builder=builder,
        runner=runner,
        database=db.ms_database,
        measure_callbacks=[*ms.measure_callback.MeasureCallback.create("default"), progress.callback()],
    )


def _compare(tasks: list[Task], tgt: Target, db: TuningDatabase, timer, rounds: int = 3) -> None:
    """Time each tuned kernel against graphc's default schedule of it (interleaved, best of
    `rounds`) and store the verdict compile goes by."""
    from ..codegen.lower import Kernel
    from ..codegen.schedule import schedule_kernel

    for t in tasks:
        tuned = db.best_tuned(t.func)
        if tuned is None and db.has_result(t.func, "templates"):  # measured by the template search
            _take_verdict(t, db)
            continue
        default, _ = schedule_kernel(Kernel(t.func, [], [], t.label), tgt)
        fns = {"default": timer(default, tgt)}
        if tuned is not None:
            fns["tuned"] = timer(tuned, tgt)
        best = {k: float("inf") for k in fns}
        for _ in range(rounds):
            for k, fn in fns.items():
                best[k] = min(best[k], fn())
        t.default_ms = best["default"]
        if tuned is not None:
            db.record_verdict(t.func, t.default_ms, best["tuned"], "metaschedule")
            _take_verdict(t, db)


def _take_verdict(t: Task, db: TuningDatabase) -> None:
    """The task's default and kept times from its verdict (the winning method's measurement)."""
    verdict = db.verdicts[workload_key(t.func)]
    t.default_ms, t.tuned_ms = verdict["default_ms"], verdict["tuned_ms"]
    t.method = verdict["method"] if verdict["use_tuned"] else None


def _kernel_timer(func, tgt: Target):
    """() -> milliseconds per call of one kernel on random arguments (TVM's time_evaluator)."""
    import tvm

    from .templates import kernel_arguments

    lib = tvm.tirx.build(tvm.IRModule({"main": func.with_attr("global_symbol", "main")}), tgt.tvm_target())
    dev = tvm.cpu(0)
    args = [tvm.runtime.tensor(a, dev) for a in kernel_arguments(func)]
    evaluator = lib.time_evaluator("main", dev, number=1, repeat=5, min_repeat_ms=20)
    return lambda: min(evaluator(*args).results) * 1e3
