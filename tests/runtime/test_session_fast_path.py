"""Session.run's CPU fast path (64-byte-aligned inputs read in place, others staged into buffers
bound once, outputs shared with numpy without a copy) must behave exactly like copying in and out:
no returned array may alias the session's buffers, the caller's inputs or another output, and odd
inputs still work."""
from __future__ import annotations

import numpy as np
import pytest

import graphc
from graphc import ops
from graphc.errors import InputError
from graphc.ir import GraphBuilder, TensorType
from graphc.tensor import Tensor

W = np.arange(6, dtype=np.float32)


@pytest.fixture(scope="module")
def session():
    """Outputs of every kind: an input's view (reshape), a kernel's result twice, the input itself, a constant."""
    b = GraphBuilder("aliases")
    x = Tensor(b.input("x", TensorType("f32", (4, 6))))
    w = graphc.param("w", W)
    with b:
        flat = x.reshape(24)
        r = ops.relu(x * w)
        wr = ops.reshape(w, shape=(2, 3))
    g = b.build([flat.value, r.value, r.value, x.value, wr.value], ["flat", "r1", "r2", "x_out", "w_out"])
    sess = graphc.compile(g, target="x86").session()
    assert sess._staged is not None  # the path under test
    return sess


class _Subclass(np.ndarray):
    pass


def _aligned(x: np.ndarray, offset: int = 0) -> np.ndarray:
    """A copy of `x` whose data starts `offset` bytes past a 64-byte boundary (numpy allows
    arrays that are not even aligned to their element size)."""
    buf = np.empty(x.nbytes + 128, np.uint8)
    start = -buf.ctypes.data % 64 + offset
    out = buf[start:start + x.nbytes].view(x.dtype).reshape(x.shape)
    out[...] = x
    return out


def _staged_input(session) -> np.ndarray:
    return session._staged._views[0]


def _expected(x):
    r = np.maximum(x * W, 0)
    return [x.reshape(24), r, r, x, W.reshape(2, 3)]


def _check(got, x):
    for a, e in zip(got, _expected(x)):
        np.testing.assert_array_equal(a, e)


def test_outputs_match_and_alias_nothing(session):
    x = np.random.default_rng(0).standard_normal((4, 6)).astype(np.float32)
    got = session.run(x)
    _check(got, x)
    pointers = [a.__array_interface__["data"][0] for a in got]
    assert len(set(pointers)) == len(pointers), "two outputs share memory"
    assert not any(np.shares_memory(a, x) for a in got), "an output aliases the caller's input"


@pytest.mark.parametrize("aligned", [True, False], ids=["aligned-in-place", "misaligned-staged"])
def test_both_input_paths_alias_nothing(session, aligned):
    x = _aligned(np.random.default_rng(5).standard_normal((4, 6)).astype(np.float32), 0 if aligned else 4)
    staging = _staged_input(session)
    staging[...] = 0
    got = session.run(x)
    _check(got, x)
    assert not any(np.shares_memory(a, x) or np.shares_memory(a, staging) for a in got)
    # the aligned input was read where it lies; the other one went through the staging tensor
    np.testing.assert_array_equal(staging, 0 if aligned else x)


def test_read_only_aligned_input_is_staged(session):
    x = _aligned(np.random.default_rng(6).standard_normal((4, 6)).astype(np.float32))
    x.flags.writeable = False  # numpy will not export it over DLPack
    got = session.run(x)
    _check(got, x)
    np.testing.assert_array_equal(_staged_input(session), x)


def test_aligned_and_misaligned_inputs_together():
    b = GraphBuilder("two_inputs")
    x = Tensor(b.input("x", TensorType("f32", (8, 16))))
    y = Tensor(b.input("y", TensorType("f32", (8, 16))))
    with b:
        s = ops.relu(x - y)
    sess = graphc.compile(b.build([s.value, x.value], ["s", "x_out"]), target="x86").session()
    rng = np.random.default_rng(7)
    xs, ys = (rng.standard_normal((8, 16)).astype(np.float32) for _ in range(2))
    for ox, oy in [(0, 4), (4, 0), (0, 0), (8, 12), (2, 6)]:
        x, y = _aligned(xs, ox), _aligned(ys, oy)
        s_out, x_out = sess.run(x, y=y)
        np.testing.assert_array_equal(s_out, np.maximum(xs - ys, 0))
        np.testing.assert_array_equal(x_out, xs)
        assert not np.shares_memory(x_out, x)


def test_outputs_survive_later_calls_and_mutation(session):
    rng = np.random.default_rng(1)
    x1 = rng.standard_normal((4, 6)).astype(np.float32)
    first = session.run(x1)
    kept = [a.copy() for a in first]
    for a in first:  # the caller owns what it got: scribbling on it changes nothing else
        a[...] = 7
    x2 = rng.standard_normal((4, 6)).astype(np.float32)
    _check(session.run(x2), x2)  # the constant output and the staged input are intact
    x1_before = x1.copy()
    second = session.run(x1)
    x1[...] = -1  # mutating the input after the call leaves the results alone
    _check(second, x1_before)
    _check(kept, x1_before)


def test_misaligned_non_contiguous_and_non_array_inputs(session):
    x = np.random.default_rng(2).standard_normal((4, 6)).astype(np.float32)
    buf = np.empty(x.size + 1, np.float32)
    misaligned = buf[1:].reshape(4, 6)  # 4 bytes past an allocation's start: never 64-byte aligned
    misaligned[...] = x
    assert misaligned.ctypes.data % 64 != 0
    _check(session.run(_aligned(x, 2)), x)  # not even float32-aligned
    _check(session.run(misaligned), x)
    _check(session.run(np.asfortranarray(x)), x)
    _check(session.run(x[:, ::-1][:, ::-1]), x)
    _check(session.run(x.view(_Subclass)), x)  # not exactly an ndarray: through the full checks
    _check(session.run(x=x), x)


def test_input_errors_are_unchanged(session):
    x = np.zeros((4, 6), np.float32)
    with pytest.raises(InputError, match=r"input 'x': expected shape \[4, 6\], got \[6, 4\]"):
        session.run(x.T.copy())
    with pytest.raises(InputError, match=r"input 'x': expected dtype f32, got f64"):
        session.run(x.astype(np.float64))
    with pytest.raises(InputError, match="no input named 'y'"):
        session.run(y=x)
    with pytest.raises(InputError, match="missing input"):
        session.run()
    with pytest.raises(InputError, match="takes 1 input"):
        session.run(x, x)
    with pytest.raises(InputError, match="both by position and by name"):
        session.run(x, x=x)


def test_prepared_and_benchmark_keep_their_own_copies(session):
    x = np.random.default_rng(3).standard_normal((4, 6)).astype(np.float32)
    call = session.prepared(x)
    session.run(np.zeros((4, 6), np.float32))  # the fast path's staging buffer now holds zeros
    got = [t.numpy() for t in call()]
    _check(got, x)
    assert session.benchmark(x, repeat=2, warmup=1)["repeat"] == 2
