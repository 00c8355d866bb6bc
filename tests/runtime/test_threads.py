"""TVM thread-pool settings chosen before the first kernel launch."""
from __future__ import annotations

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
