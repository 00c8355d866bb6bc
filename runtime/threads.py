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
"""
from __future__ import annotations

import os


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
