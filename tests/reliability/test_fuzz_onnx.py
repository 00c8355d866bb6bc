"""Differential fuzzing against ONNX Runtime: random ONNX models built with onnx.helper,
imported and compiled by graphc, must compute what ONNX Runtime computes."""
from __future__ import annotations

import math

import numpy as np
import onnx.printer
import onnxruntime as ort
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper, numpy_helper

import graphc

from .conftest import FUZZ_EXAMPLES, tried

UNARY = ["Relu", "Sigmoid", "Tanh", "Erf", "Abs", "Neg", "Softsign"]
BINARY = ["Add", "Sub", "Mul", "Max", "Min"]


class _Model:
    def __init__(self, draw, opset: int):
        self.draw, self.opset = draw, opset
        self.nodes, self.inits, self.values = [], [], []  # values: (name, shape)
        self.rng = np.random.default_rng(draw(st.integers(0, 2**31 - 1)))

    def fresh(self, prefix: str) -> str:
        return f"{prefix}{len(self.nodes)}_{len(self.inits)}"

    def init(self, array: np.ndarray) -> str:
        name = self.fresh("w")
        self.inits.append(numpy_helper.from_array(array.astype(array.dtype), name))
        return name

    def node(self, op: str, inputs: list[str], shape, **attrs) -> str:
        out = self.fresh("t")
        self.nodes.append(helper.make_node(op, inputs, [out], name=f"{op}_{len(self.nodes)}", **attrs))
        self.values.append((out, tuple(shape)))
        return out

    def pick(self, pred=lambda s: True):
        cands = [v for v in self.values if pred(v[1])]
        return self.draw(st.sampled_from(cands)) if cands else None


def _step(m: _Model) -> None:
    kind = m.draw(st.sampled_from(["unary", "binary", "matmul", "conv", "softmax", "reduce", "transpose", "reshape", "concat", "layernorm"]))
    x, shape = m.pick()
    rank = len(shape)
    if kind == "unary":
        m.node(m.draw(st.sampled_from(UNARY)), [x], shape)
    elif kind == "binary":
        other = m.init(m.rng.standard_normal(shape[-1:]).astype(np.float32))
        args = [x, other] if m.draw(st.booleans()) else [other, x]
        m.node(m.draw(st.sampled_from(BINARY)), args, shape)
    elif kind == "matmul":
        n = m.draw(st.sampled_from([3, 8]))
        w = m.init(m.rng.standard_normal((shape[-1], n)).astype(np.float32) / math.sqrt(shape[-1]))
        m.node("MatMul", [x, w], shape[:-1] + (n,))
    elif kind == "conv" and rank == 4 and min(shape[2:]) >= 2:
        cout = m.draw(st.sampled_from([4, 8]))
        w = m.init(m.rng.standard_normal((cout, shape[1], 3, 3)).astype(np.float32) / math.sqrt(9 * shape[1]))
        b = m.init(m.rng.standard_normal(cout).astype(np.float32))
        y = m.node("Conv", [x, w, b], (shape[0], cout) + shape[2:], pads=[1, 1, 1, 1])
        y = m.node("Relu", [y], (shape[0], cout) + shape[2:])
        if m.draw(st.booleans()):
            m.node("MaxPool", [y], (shape[0], cout, shape[2] // 2, shape[3] // 2), kernel_shape=[2, 2], strides=[2, 2])
    elif kind == "softmax":
        m.node("Softmax", [x], shape, axis=m.draw(st.integers(-rank, rank - 1)))
    elif kind == "reduce":
        axis = m.draw(st.integers(0, rank - 1))
        out_shape = shape[:axis] + (1,) + shape[axis + 1 :]
        if m.opset >= 18:
            m.node("ReduceMean", [x, m.init(np.array([axis], np.int64))], out_shape, keepdims=1)
        else:
            m.node("ReduceMean", [x], out_shape, axes=[axis], keepdims=1)
    elif kind == "transpose":
        perm = m.draw(st.permutations(list(range(rank))))
        m.node("Transpose", [x], tuple(shape[p] for p in perm), perm=perm)
    elif kind == "reshape" and rank >= 2:
        new = shape[:-2] + (shape[-2] * shape[-1],)
        m.node("Reshape", [x, m.init(np.array(new, np.int64))], new)
    elif kind == "concat":
        axis = m.draw(st.integers(0, rank - 1))
        m.node("Concat", [x, x], shape[:axis] + (2 * shape[axis],) + shape[axis + 1 :], axis=axis)
    elif kind == "layernorm" and m.opset >= 17:
        g = m.init(m.rng.standard_normal(shape[-1:]).astype(np.float32))
        b = m.init(m.rng.standard_normal(shape[-1:]).astype(np.float32))
        m.node("LayerNormalization", [x, g, b], shape, axis=-1)


@st.composite
def onnx_models(draw):
    opset = draw(st.sampled_from([13, 17, 18]))
    m = _Model(draw, opset)
    shape = tuple(draw(st.sampled_from([1, 2, 3, 4, 6])) for _ in range(draw(st.integers(2, 4))))
    m.values.append(("x", shape))
    for _ in range(draw(st.integers(1, 6))):
        _step(m)
    out, out_shape = m.values[-1]
    graph = helper.make_graph(
        m.nodes, "fuzz", [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info(out, TensorProto.FLOAT, out_shape)], initializer=m.inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=8)
    x = m.rng.standard_normal(shape).astype(np.float32)
    return model, x


@settings(max_examples=FUZZ_EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(onnx_models())
def test_random_onnx_models_match_onnxruntime(case):
    model, x = case
    tried("random ONNX models")
    note(onnx.printer.to_text(model.graph))
    if not model.graph.node:
        return
    expected = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    got = graphc.compile(model, target="x86").session().run(x)[0]
    scale = max(1.0, float(np.max(np.abs(expected))))
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4 * scale)
