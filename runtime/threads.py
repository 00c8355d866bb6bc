"""How many threads TVM's CPU thread pool runs kernels on.

TVM sizes its pool at ``hardware_concurrency() / 2`` on x86: it assumes every core
is hyper-threaded. On a machine without SMT (a 2-vCPU VM, for one) every
``parallel`` loop then ran on ONE thread: measured here, a 1024^3 sgemm went from
180 to 348 GFLOP/s with the pool sized right. TVM reads ``TVM_NUM_THREADS`` when a
thread first launches a parallel kernel (that thread's pool keeps its size), so
`use_physical_cores` sets it before the first launch: to the number of physical
cores this process may run on (hyper-thread siblings count once, which is what
TVM's halving approximates). A value the user set (``TVM_NUM_THREADS`` or
``OMP_NUM_THREADS``, which TVM also reads) is left alone.

It also shortens how long an idle pool worker busy-waits for the next task. TVM's default
is 300,000 ``sched_yield`` calls, i.e. 100 ms or more of a whole core after every
inference: measured here, a PyTorch sgemm in another process started 50 ms after a graphc
kernel ran at 38-77 GFLOP/s instead of 190 (the same harm to anything sharing the machine,
benchmark peers included). 10,000 yields (a few ms) still cover the gaps between the
kernels of one inference: model latencies were unchanged (MLP, CNN, attention block,
ResNet-50, BERT within noise of the default). ``TVM_THREAD_POOL_SPIN_COUNT`` set by the
user wins.

And it keeps the thread that launches kernels off the workers' cores (`move_off_worker_cores`,
called before every run). TVM binds each pool worker to one core and lets the launching thread,
which runs task 0 itself, float; after an idle pause the launcher often woke on the worker's
core and the two shared it for the whole run (nothing else ran there; the load balancer does not
move a cache-hot thread for milliseconds): measured here, a 64x784x128 GEMM alone took 0.06 or
0.12 ms per call, 2 ms samples split between the two, the median 0.12 ms whenever another
process had run in between.
"""
from __future__ import annotations

import ctypes
import os
import platform


def physical_cores() -> int:
    """Physical cores among the CPUs this process may run on (SMT siblings counted once)."""
    try:
        cpus = sorted(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - non-Linux
        return max((os.cpu_count() or 2) // 2, 1)
    cores = set()
    for cpu in cpus:
        try:
            with open(f"/sys/devices/system/cpu/cpu{cpu}/topology/thread_siblings_list") as f:
                cores.add(f.read().strip())
        except OSError:
            cores.add(str(cpu))
    return max(len(cores), 1)


IDLE_SPIN_YIELDS = 10_000


def use_physical_cores() -> int:
    """Size TVM's thread pool and its workers' busy-wait (unless the user did); returns the
    thread count in effect."""
    os.environ.setdefault("TVM_THREAD_POOL_SPIN_COUNT", str(IDLE_SPIN_YIELDS))
    for var in ("TVM_NUM_THREADS", "OMP_NUM_THREADS"):
        if os.environ.get(var, "").strip().isdigit():
            return int(os.environ[var])
    n = physical_cores()
    os.environ["TVM_NUM_THREADS"] = str(n)
    return n


def _tvm_atoi(name: str, default: int) -> int:
    """An environment variable read as TVM reads it (C `atoi`: leading digits, else 0)."""
    val = os.environ.get(name)
    if val is None:
        return default
    digits = val.strip()
    n = len(digits) - len(digits.lstrip("0123456789"))
    return int(digits[:n]) if n else 0


def _max_freq(cpu: int) -> int:
    try:
        with open(f"/sys/devices/system/cpu/cpu{cpu}/cpufreq/cpuinfo_max_freq") as f:
            return int(f.read())
    except (OSError, ValueError):
        return 0


def tvm_core_order() -> list[int]:
    """The online CPUs in the order TVM's thread group hands them out (threading_backend.cc:
    highest `cpuinfo_max_freq` first, then by number): the launching thread's pool worker i
    (i >= 1) is bound to entry i."""
    return sorted(range(os.cpu_count() or 1), key=lambda cpu: (-_max_freq(cpu), cpu))


def _tvm_default_threads() -> int:
    """TVM's pool size when neither variable is set (MaxConcurrency: half the CPUs on x86)."""
    n = os.cpu_count() or 1
    return max(n // 2 if platform.machine() in ("x86_64", "AMD64") else n, 1)


class WorkerCores:
    """Where TVM's pool binds its workers, and where the launching thread belongs instead.

    Empty (nothing to do) when TVM does not bind (``TVM_BIND_THREADS`` other than 1), when the
    launching thread runs no task of its own (``TVM_EXCLUDE_WORKER0=0``), when the pool has one
    thread, or when those cores are not all ones this process may use."""

    def __init__(self) -> None:
        self.home: frozenset[int] = frozenset()
        self.workers: frozenset[int] = frozenset()
        threads = _tvm_atoi("TVM_NUM_THREADS", _tvm_atoi("OMP_NUM_THREADS", 0)) or _tvm_default_threads()
        order = tvm_core_order()
        if _tvm_atoi("TVM_BIND_THREADS", 1) != 1 or _tvm_atoi("TVM_EXCLUDE_WORKER0", 1) == 0 or not 2 <= threads <= len(order):
            return
        if not set(order[:threads]) <= os.sched_getaffinity(0):
            return
        self.home, self.workers = frozenset(order[:1]), frozenset(order[1:threads])


try:
    _sched_getcpu = ctypes.CDLL(None, use_errno=True).sched_getcpu  # glibc: a vDSO call, ~0.1 us
except (AttributeError, OSError):  # pragma: no cover - not glibc
    _sched_getcpu = None
_cores: WorkerCores | None = None


def move_off_worker_cores() -> None:
    """Before a run: if this thread sits on a core TVM bound a pool worker to, move it to the
    remaining one (pin, then restore its affinity: it stays where it was moved, and child
    processes started later inherit the affinity it had, not the pin). ~0.3 us when it is
    already off them, ~5 us when it moves."""
    global _cores
    if _sched_getcpu is None:
        return
    if _cores is None:
        _cores = WorkerCores()
    if _cores.workers and _sched_getcpu() in _cores.workers:
        allowed = os.sched_getaffinity(0)
        if _cores.home <= allowed:  # (a thread its owner pinned elsewhere stays there)
            os.sched_setaffinity(0, _cores.home)
            os.sched_setaffinity(0, allowed)
