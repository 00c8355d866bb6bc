"""TVM thread-pool settings chosen before the first kernel launch."""
from __future__ import annotations

import os

import pytest

from runtime import threads


def test_pool_sized_to_physical_cores_with_short_idle_spin(monkeypatch):
    for var in ("TVM_NUM_THREADS", "OMP_NUM_THREADS", "TVM_THREAD_POOL_SPIN_COUNT"):
        monkeypatch.delenv(var, raising=False)
    n = threads.use_physical_cores()
    assert n == threads.physical_cores() >= 1
    assert threads.os.environ["TVM_NUM_THREADS"] == str(n)
    assert threads.os.environ["TVM_THREAD_POOL_SPIN_COUNT"] == str(threads.IDLE_SPIN_YIELDS)


def test_user_settings_win(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    monkeypatch.delenv("TVM_NUM_THREADS", raising=False)
    monkeypatch.setenv("TVM_THREAD_POOL_SPIN_COUNT", "0")
    assert threads.use_physical_cores() == 3
    assert "TVM_NUM_THREADS" not in threads.os.environ
    assert threads.os.environ["TVM_THREAD_POOL_SPIN_COUNT"] == "0"


# -- keeping the launching thread off the pool workers' cores --------------------------------

_POOL_VARS = ("TVM_NUM_THREADS", "OMP_NUM_THREADS", "TVM_BIND_THREADS", "TVM_EXCLUDE_WORKER0")
two_cpus = pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2 or not {0, 1} <= os.sched_getaffinity(0),
                              reason="needs CPUs 0 and 1 (a launching thread and one pool worker)")


def _machine(monkeypatch, freqs: dict[int, int], allowed=None, **env):
    """A machine with CPUs `freqs` (cpu -> cpuinfo_max_freq) and TVM settings `env`."""
    for var in _POOL_VARS:
        monkeypatch.delenv(var, raising=False)
    for var, val in env.items():
        monkeypatch.setenv(var, val)
    monkeypatch.setattr(threads, "_max_freq", lambda cpu: freqs[cpu])
    monkeypatch.setattr(threads.os, "cpu_count", lambda: len(freqs))
    monkeypatch.setattr(threads.os, "sched_getaffinity", lambda pid: set(freqs) if allowed is None else set(allowed))


def test_worker_cores_follow_tvms_core_order(monkeypatch):
    # big cores (highest max frequency) first, then by number: TVM's threading_backend order
    _machine(monkeypatch, {0: 1800, 1: 3000, 2: 3000, 3: 1800}, TVM_NUM_THREADS="3")
    assert threads.tvm_core_order() == [1, 2, 0, 3]
    cores = threads.WorkerCores()
    assert cores.home == {1} and cores.workers == {2, 0}
    _machine(monkeypatch, {0: 0, 1: 0}, OMP_NUM_THREADS="2")  # no cpufreq in a VM: by number
    cores = threads.WorkerCores()
    assert cores.home == {0} and cores.workers == {1}


@pytest.mark.parametrize("env, allowed", [
    ({"TVM_NUM_THREADS": "1"}, None),  # no workers
    ({"TVM_NUM_THREADS": "2", "TVM_BIND_THREADS": "0"}, None),  # TVM binds nothing
    ({"TVM_NUM_THREADS": "2", "TVM_EXCLUDE_WORKER0": "0"}, None),  # the launcher runs no task
    ({"TVM_NUM_THREADS": "8"}, None),  # more threads than CPUs: TVM binds nothing
    ({"TVM_NUM_THREADS": "2"}, {2, 3}),  # the process may not use the cores TVM binds to
])
def test_nothing_to_steer(monkeypatch, env, allowed):
    _machine(monkeypatch, {0: 0, 1: 0, 2: 0, 3: 0}, allowed, **env)
    assert not threads.WorkerCores().workers


def test_tvm_reads_its_variables_with_atoi(monkeypatch):
    monkeypatch.setenv("TVM_BIND_THREADS", " 1x")
    assert threads._tvm_atoi("TVM_BIND_THREADS", 0) == 1
    monkeypatch.setenv("TVM_BIND_THREADS", "yes")
    assert threads._tvm_atoi("TVM_BIND_THREADS", 1) == 0
    monkeypatch.delenv("TVM_BIND_THREADS")
    assert threads._tvm_atoi("TVM_BIND_THREADS", 1) == 1


@two_cpus
def test_launching_thread_moves_off_a_worker_core_keeping_its_affinity(monkeypatch):
    for var in _POOL_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("TVM_NUM_THREADS", "2")
    monkeypatch.setattr(threads, "_cores", None)
    cores = threads.WorkerCores()
    (worker,) = cores.workers
    allowed = os.sched_getaffinity(0)
    try:
        os.sched_setaffinity(0, {worker})
        os.sched_setaffinity(0, allowed)  # free again, but sitting on the worker's core
        assert threads._sched_getcpu() == worker
        threads.move_off_worker_cores()
        assert threads._sched_getcpu() in cores.home
        assert os.sched_getaffinity(0) == allowed  # not left pinned (child processes inherit it)
        os.sched_setaffinity(0, {worker})  # a thread its owner pinned there stays there
        threads.move_off_worker_cores()
        assert threads._sched_getcpu() == worker and os.sched_getaffinity(0) == {worker}
    finally:
        os.sched_setaffinity(0, allowed)


_POOL_PROBE = """
import json, os, numpy as np, graphc
from graphc import ops
from graphc.ir import GraphBuilder, TensorType
from graphc.tensor import Tensor
import os

import pytest

from runtime import threads
b = GraphBuilder("mm")
x = Tensor(b.input("x", TensorType("f32", (256, 256))))
with b:
    y = ops.relu(ops.matmul(x, graphc.param("w", np.ones((256, 256), np.float32))))
sess = graphc.compile(b.build([y.value]), target="x86").session()
sess.run(np.ones((256, 256), np.float32))  # the pool starts with the first parallel kernel
def allowed(tid):
    with open(f"/proc/self/task/{tid}/status") as f:
        line = next(l for l in f if l.startswith("Cpus_allowed_list"))
    cpus = set()
    for part in line.split()[1].split(","):
        lo, _, hi = part.partition("-")
        cpus |= set(range(int(lo), int(hi or lo) + 1))
    return sorted(cpus)
me = threads.ctypes.CDLL(None).gettid()
print(json.dumps([[allowed(t) for t in sorted(os.listdir("/proc/self/task"), key=int) if int(t) != me], allowed(me)]))
"""


@two_cpus
def test_worker_cores_match_where_tvm_binds_its_pool():
    """The model of TVM's binding checked against TVM itself: after a run, a pool thread is bound
    to exactly the predicted worker core and the launching thread may use home and worker cores."""
    import json
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k not in _POOL_VARS}
    env["TVM_NUM_THREADS"] = "2"
    out = subprocess.run([sys.executable, "-c", _POOL_PROBE], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    others, mine = json.loads(out.stdout.strip().splitlines()[-1])
    order = threads.tvm_core_order()
    assert [order[1]] in others
    assert mine == sorted(order[:2])
