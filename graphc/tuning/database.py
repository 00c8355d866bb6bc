"""The persistent tuning database: MetaSchedule's JSON database plus graphc's per-kernel verdicts.

One directory per target (default ``~/.cache/graphc/tuning/<target>/``, `$GRAPHC_TUNING_DIR` or `$GRAPHC_CACHE_DIR` moves it):

* ``database_workload.json``, ``database_tuning_record.json``: MetaSchedule's records, keyed by
  the structural hash of each kernel's unscheduled PrimFunc (what codegen lowers before graphc's
  schedule rules run), so any model with the same kernel reuses them;
* ``sessions.json``: every `graphc tune` run: model, trials, seconds;
* ``verdicts.json``: for each tuned kernel, per tuning method ("templates": knob values for
  graphc's own rules, `graphc.tuning.templates`; "metaschedule": the best record above) the
  measured time of its schedule and of graphc's default schedule, and which method won.
  Compile uses a tuned schedule only where it measured faster.
"""
from __future__ import annotations

import json
import os

import tvm_ffi

from ..targets import Target

VERDICTS = "verdicts.json"
SESSIONS = "sessions.json"


def target_key(target: Target) -> str:
    """Records are only valid for the CPU and thread count they were measured with."""
    return f"{target.kind}-{target.mcpu}-{target.num_threads}t"


def default_db_dir(target: Target) -> str:
    """`$GRAPHC_TUNING_DIR/<target>` when set (the test suite points it at an empty folder, so a
    database tuned on this machine does not change what the tests compile), else the cache."""
    from ..examples.zoo import cache_dir

    base = os.environ.get("GRAPHC_TUNING_DIR") or os.path.join(cache_dir(), "tuning")
    return os.path.join(base, target_key(target))


def workload_module(func):
    """A kernel's unscheduled PrimFunc as the module MetaSchedule tunes and keys its records by
    (the kernel's own name stripped: the same kernel in two models is one workload)."""
    import tvm

    return tvm.IRModule({"main": func.with_attr("global_symbol", "main")})


def workload_key(func) -> str:
    return f"{tvm_ffi.structural_hash(workload_module(func)):x}"


class TuningDatabase:
    def __init__(self, path: str, target: Target):
        self.path = path
        self.target = target
        self._ms = None
        self.verdicts: dict[str, dict] = {}
        vpath = os.path.join(path, VERDICTS)
        if os.path.exists(vpath):
            with open(vpath) as f:
                self.verdicts = json.load(f)

    @property
    def ms_database(self):
        """MetaSchedule's JSONDatabase (opened on first use: reading it parses every record)."""
        if self._ms is None:
            from tvm.s_tir import meta_schedule as ms

            os.makedirs(self.path, exist_ok=True)
            self._ms = ms.database.JSONDatabase(work_dir=self.path, module_equality="structural")
        return self._ms

    def _has_ms_records(self) -> bool:
        """Whether MetaSchedule ever wrote here (opening its database creates its files: a
        templates-only database stays two small JSON files)."""
        return self._ms is not None or os.path.exists(os.path.join(self.path, "database_workload.json"))

    def trials(self, func) -> int:
        """How many measured candidates the database holds for this kernel."""
        if not self._has_ms_records():
            return 0
        mod = workload_module(func)
        db = self.ms_database
        if not db.has_workload(mod):
            return 0
        return len(db.get_top_k(db.commit_workload(mod), 1 << 30))

    def best_tuned(self, func):
        """The fastest tuned schedule of this kernel as a PrimFunc, or None."""
        if not self._has_ms_records():
            return None
        mod = workload_module(func)
        if not self.ms_database.has_workload(mod):
            return None
        tuned = self.ms_database.query_ir_module(mod, self.target.tvm_target(), "main")
        return None if tuned is None else tuned["main"]

    def record_verdict(self, func, default_ms: float, tuned_ms: float, method: str = "metaschedule", knobs: dict | None = None) -> None:
        """One method's result for a kernel; the verdict keeps the method with the best speedup,
        each measured against the default schedule in the same run (the machine's load drifts)."""
        key = workload_key(func)
        results = method_results(self.verdicts.get(key))
        results[method] = {"default_ms": default_ms, "tuned_ms": tuned_ms, **({"knobs": knobs or {}} if method == "templates" else {})}
        best = max(results, key=lambda m: results[m]["default_ms"] / results[m]["tuned_ms"])
        won = results[best]
        self.verdicts[key] = {
            "method": best,
            "default_ms": won["default_ms"],
            "tuned_ms": won["tuned_ms"],
            "use_tuned": won["tuned_ms"] < won["default_ms"],
            **({"knobs": won["knobs"]} if best == "templates" else {}),
            "results": results,
        }
        _write_json(os.path.join(self.path, VERDICTS), self.verdicts)

    def uses_tuned(self, func) -> bool:
        verdict = self.verdicts.get(workload_key(func))
        return bool(verdict and verdict["use_tuned"])

    def withdraw(self, func, reason: str) -> None:
        """Keep the kernel's tuned result on record but compile with the default schedule (the
        model as a whole ran no faster with the tuned schedules: graphc/tuning/model_check.py).
        A later search of the kernel writes a fresh verdict."""
        verdict = self.verdicts[workload_key(func)]
        verdict["use_tuned"] = False
        verdict["withdrawn"] = reason
        _write_json(os.path.join(self.path, VERDICTS), self.verdicts)

    def has_result(self, func, method: str) -> bool:
        return method in method_results(self.verdicts.get(workload_key(func)))

    def record_session(self, model: str, trials_run: int, seconds: float, candidates: int = 0, model_speedup: float | None = None) -> None:
        """Append to sessions.json: which model was tuned, how many MetaSchedule trials and
        template candidates were measured, how long it took, and the whole model's measured
        speedup with the tuned schedules (None: nothing tuned to check)."""
        import time

        path = os.path.join(self.path, SESSIONS)
        sessions = []
        if os.path.exists(path):
            with open(path) as f:
                sessions = json.load(f)
        sessions.append(
            {"model": model, "trials_run": trials_run, "candidates": candidates, "seconds": round(seconds, 1),
             "model_speedup": None if model_speedup is None else round(model_speedup, 3), "date": time.strftime("%Y-%m-%d %H:%M")}
        )
        _write_json(path, sessions)

    def lookup(self, func):
        """What codegen asks for each kernel: (tuned PrimFunc, note) when the database has a record
        that measured faster than graphc's default schedule; else None (the default rule is used)."""
        verdict = self.verdicts.get(workload_key(func))
        if verdict is None or not verdict["use_tuned"]:
            return None
        if verdict.get("method") == "templates":
            return self._with_knobs(func, verdict)
        tuned = self.best_tuned(func)
        if tuned is None:
            return None
        speedup = verdict["default_ms"] / verdict["tuned_ms"]
        return tuned, f"tuned (MetaSchedule, {speedup:.2f}x vs default schedule)"

    def _with_knobs(self, func, verdict: dict):
        """graphc's rules with the recorded knob values, notes first saying so; the default schedule
        (and a note why) when a rule no longer accepts them (the rules changed since tuning)."""
        from ..codegen.knobs import describe
        from ..codegen.lower import Kernel
        from ..codegen.schedule import schedule_kernel

        kernel = Kernel(func, [], [], "tuned")
        tuned, notes = schedule_kernel(kernel, self.target, verdict["knobs"])
        if any(" (" in n for n in notes):  # a rule fell back ("generic (...)"): did it with the default knobs too?
            default, default_notes = schedule_kernel(kernel, self.target)
            changed = [n for n in notes if n not in default_notes]
            if changed:
                return default, [f"default schedule (tuned knobs not applied: {changed[0]})", *default_notes]
        speedup = verdict["default_ms"] / verdict["tuned_ms"]
        return tuned, [f"tuned (templates: {describe(verdict['knobs'])}; {speedup:.2f}x vs default schedule)", *notes]


def method_results(verdict: dict | None) -> dict[str, dict]:
    """{method: {default_ms, tuned_ms[, knobs]}} of a stored verdict (one written before template
    tuning existed holds MetaSchedule's result only)."""
    if verdict is None:
        return {}
    if "results" in verdict:
        return {m: dict(r) for m, r in verdict["results"].items()}
    return {"metaschedule": {"default_ms": verdict["default_ms"], "tuned_ms": verdict["tuned_ms"]}}


def open_database(tuning: "str | bool | None", target: Target) -> TuningDatabase | None:
    """`tuning`: None = the target's default database if it exists, a path = that database,
    False = no tuning records."""
    if tuning is False:
        return None
    if tuning is None or tuning is True:
        path = default_db_dir(target)
        if not os.path.exists(os.path.join(path, VERDICTS)):
            return None
    else:
        path = os.fspath(tuning)
    return TuningDatabase(path, target)


def _write_json(path: str, payload) -> None:
    """Written whole and renamed into place: an interrupted tune never leaves half a file."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w") as f:
        json.dump(payload, f, indent=1, sort_keys=True)
    os.replace(tmp, path)
