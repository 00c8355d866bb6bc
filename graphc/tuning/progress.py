"""The tuning progress bar: trials done, and the best kernel time found so far.

On a terminal it redraws one line; otherwise (logs, CI, tests) it prints one line per
measured batch. "best" is the model's estimated kernel time per inference: the sum over
kernels of calls x the fastest candidate measured so far (kernels not yet measured count
nothing), followed by the kernel whose batch was just measured.
"""
from __future__ import annotations

BAR = 30


class Progress:
    def __init__(self, tasks, done: int, total: int, out, unit: str = "trials"):
        self.tasks = tasks
        self.unit = unit
        self.done = done
        self.total = max(total, 1)
        self.out = out
        self.best_ms: dict[int, float] = {}
        self.tty = bool(getattr(out, "isatty", lambda: False)())

    def update(self, task_id: int, seconds: list[float]) -> None:
        self.done += len(seconds)
        valid = [s for s in seconds if s > 0]
        if valid:
            self.best_ms[task_id] = min(self.best_ms.get(task_id, float("inf")), min(valid) * 1e3)
        task = self.tasks[task_id]
        est = sum(self.tasks[i].weight * ms for i, ms in self.best_ms.items())
        filled = min(BAR, BAR * self.done // self.total)
        kernel = f"{task.name} {self.best_ms[task_id]:.4f} ms" if task_id in self.best_ms else f"{task.name} (no valid candidate yet)"
        line = f"[{'#' * filled}{'.' * (BAR - filled)}] {self.done}/{self.total} {self.unit}  best so far: {est:.3f} ms/inference; {kernel}"
        if self.tty:
            print(f"\r{line}\x1b[K", end="", file=self.out, flush=True)
        else:
            print(line, file=self.out, flush=True)

    def finish(self) -> None:
        if self.tty:
            print(file=self.out, flush=True)

    def callback(self):
        """A MetaSchedule measure callback that feeds this bar."""
        from tvm.ir.utils import derived_object
        from tvm.s_tir.meta_schedule.measure_callback import PyMeasureCallback

        progress = self

        @derived_object
        class _ProgressCallback(PyMeasureCallback):
            def apply(self, task_scheduler, task_id, measure_candidates, builder_results, runner_results):
                secs = []
                for br, rr in zip(builder_results, runner_results):
                    ok = br.error_msg is None and rr.error_msg is None and rr.run_secs
                    secs.append(sum(float(s) for s in rr.run_secs) / len(rr.run_secs) if ok else -1.0)
                progress.update(int(task_id), secs)

        return _ProgressCallback()
