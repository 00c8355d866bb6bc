"""ONNX RNN / GRU / LSTM import (unrolled over the static sequence length), against onnxruntime."""
from __future__ import annotations

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from onnx import helper  # noqa: E402

from graphc.errors import FrontendError  # noqa: E402
from graphc.frontends.onnx import from_onnx  # noqa: E402
from tests.frontends.test_onnx_import import check, f32, make_model, run_ort  # noqa: E402

SEQ, BATCH, INPUT, HIDDEN = 4, 3, 5, 4
GATES = {"RNN": 1, "GRU": 3, "LSTM": 4}


def recurrent_model(op, *, dirs=1, layout=0, bias=True, lens=None, lens_input=False, initial=False, peepholes=False, **attrs):
    """A one-node model: X and (optionally) sequence_lens are graph inputs, the rest initializers.

    Returns (model, inputs, expected): onnxruntime's outputs for the same node in layout 0
    (onnxruntime does not implement layout=1; the layouts differ only by transposes)."""
    g = GATES[op]
    x = f32(SEQ, BATCH, INPUT)
    inputs = {"X": x}
    inits = {"W": f32(dirs, g * HIDDEN, INPUT, low=-0.7, high=0.7), "R": f32(dirs, g * HIDDEN, HIDDEN, low=-0.7, high=0.7)}
    names = ["X", "W", "R", "", "", "", "", ""]
    if bias:
        inits["B"], names[3] = f32(dirs, 2 * g * HIDDEN, low=-0.5, high=0.5), "B"
    if lens is not None:
        lens = np.array(lens, np.int32)
        (inputs if lens_input else inits)["lens"], names[4] = lens, "lens"
    states = ["h0", "c0"] if op == "LSTM" else ["h0"]
    if initial:
        for k, name in enumerate(states):
            inits[name], names[5 + k] = f32(dirs, BATCH, HIDDEN), name
    if peepholes:
        inits["P"], names[7] = f32(dirs, 3 * HIDDEN), "P"
    while names[-1] == "":
        names.pop()
    outs = ["Y", "Y_h", "Y_c"] if op == "LSTM" else ["Y", "Y_h"]
    if dirs == 2:
        attrs["direction"] = "bidirectional"

    def model(layout):
        node = helper.make_node(op, names, outs, name=f"{op.lower()}_node", hidden_size=HIDDEN, layout=layout, **attrs)
        return make_model([node], ins(layout), outs, inits_of(layout), opset=14)

    def ins(layout):  # batch-major X and states for layout 1
        return {k: (v.transpose(1, 0, 2) if layout and k == "X" else v) for k, v in inputs.items()}

    def inits_of(layout):
        return {k: (v.transpose(1, 0, 2) if layout and k in states else v) for k, v in inits.items()}

    y, *finals = run_ort(model(0), inputs)
    if layout:
        y, finals = y.transpose(2, 0, 1, 3), [s.transpose(1, 0, 2) for s in finals]
    return model(layout), ins(layout), [y, *finals]


@pytest.mark.parametrize(
    "op,kwargs",
    [
        ("RNN", dict(direction="reverse", activations=["Relu"], clip=1.5)),
        ("RNN", dict(dirs=2, layout=1, initial=True, lens=[4, 2, 3])),
        ("GRU", dict(linear_before_reset=1, direction="reverse", lens=[1, 4, 3], lens_input=True)),
        ("GRU", dict(dirs=2, initial=True, activations=["Sigmoid", "LeakyRelu", "HardSigmoid", "Tanh"], activation_alpha=[0.2, 0.3], activation_beta=[0.4])),
        ("GRU", dict(bias=False, layout=1, clip=0.8)),
        ("LSTM", dict(dirs=2, layout=1, initial=True, peepholes=True, lens=[2, 4, 3], clip=2.0)),
        ("LSTM", dict(input_forget=1, peepholes=True, lens=[3, 0, 4], lens_input=True)),
        ("LSTM", dict(direction="reverse", activations=["Sigmoid", "Elu", "Softplus"], activation_alpha=[0.7])),
    ],
    ids=["rnn-reverse-relu-clip", "rnn-bidir-layout1-lens", "gru-lbr-reverse-runtime-lens", "gru-bidir-activations",
         "gru-nobias-layout1-clip", "lstm-bidir-layout1-peepholes-lens-clip", "lstm-input-forget-runtime-lens", "lstm-reverse-activations"],
)
def test_recurrent_matches_onnxruntime(op, kwargs):
    model, inputs, expected = recurrent_model(op, **kwargs)
    graph = check(model, inputs, rtol=1e-4, atol=1e-5, expected=expected)
    assert "linear" in graph.op_counts()


def test_hidden_state_only_output_and_full_length_lens_need_no_mask():
    """Y unused: no concat of the steps; sequence_lens all equal to the sequence length: no masking."""
    x = f32(SEQ, BATCH, INPUT)
    inits = {"W": f32(1, 4 * HIDDEN, INPUT), "R": f32(1, 4 * HIDDEN, HIDDEN), "lens": np.full(BATCH, SEQ, np.int32)}
    node = helper.make_node("LSTM", ["X", "W", "R", "", "lens"], ["", "Y_h"], hidden_size=HIDDEN)
    graph = check(make_model([node], {"X": x}, ["Y_h"], inits), {"X": x}, rtol=1e-4, atol=1e-5)
    assert "where" not in graph.op_counts()
    assert "concat" not in graph.op_counts()


@pytest.mark.parametrize(
    "attrs,message",
    [
        (dict(direction="sideways"), "unknown direction 'sideways'"),
        (dict(activations=["Tanh", "Swish"]), "unknown activation 'Swish'"),
        (dict(activations=["Tanh"]), "should name 2 function(s) per direction"),
        (dict(hidden_size=7), "hidden_size 7 does not match R"),
    ],
)
def test_bad_attributes_name_the_node(attrs, message):
    x = f32(SEQ, BATCH, INPUT)
    inits = {"W": f32(1, 3 * HIDDEN, INPUT), "R": f32(1, 3 * HIDDEN, HIDDEN)}
    attrs = {"hidden_size": HIDDEN, **attrs}
    node = helper.make_node("GRU", ["X", "W", "R"], ["Y"], name="my_gru", **attrs)
    graph = helper.make_graph(
        [node], "g", [helper.make_tensor_value_info("X", onnx.TensorProto.FLOAT, list(x.shape))],
        [helper.make_tensor_value_info("Y", onnx.TensorProto.FLOAT, None)], initializer=[onnx.numpy_helper.from_array(v, k) for k, v in inits.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])
    with pytest.raises(FrontendError, match="my_gru") as err:
        from_onnx(model)
    assert message in str(err.value)
