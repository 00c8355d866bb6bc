"""The ONNX importer core: graph outputs, value_info, external data, dynamic inputs, domains,
specialization on input values (``input_values``, `NonConstantInputError`,
`graphc.SpecializingModel`) and the ONNX backend API (`graphc.onnx_backend`)."""
from __future__ import annotations

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")

from onnx import TensorProto as TP  # noqa: E402
from onnx import helper, numpy_helper  # noqa: E402

import graphc  # noqa: E402
import graphc.onnx_backend as backend  # noqa: E402
from graphc.errors import FrontendError, InputError, NonConstantInputError, TargetError, UnsupportedOpError  # noqa: E402
from graphc.frontends.onnx import from_onnx  # noqa: E402
from tests.conftest import assert_close  # noqa: E402

RNG = np.random.default_rng(3)


def f32(*shape):
    return RNG.uniform(-2, 2, size=shape).astype(np.float32)


def model_of(nodes, inputs, outputs, initializers=None, value_info=(), opset=17, extra_opsets=()):
    """inputs / outputs: (name, elem type, shape or None) triples; initializers: name -> array."""
    graph = helper.make_graph(
        nodes,
        "core",
        [helper.make_tensor_value_info(*i) for i in inputs],
        [helper.make_tensor_value_info(*o) for o in outputs],
        initializer=[numpy_helper.from_array(a, n) for n, a in (initializers or {}).items()],
        value_info=[helper.make_tensor_value_info(*v) for v in value_info],
    )
    opsets = [helper.make_opsetid("", opset), *(helper.make_opsetid(d, v) for d, v in extra_opsets)]
    return helper.make_model(graph, opset_imports=opsets, ir_version=10)


def compiled_outputs(graph, *args):
    return graphc.compile(graph, target="x86", log=lambda *a, **k: None).session().run(*args)


# ---------------------------------------------------------------------------------------
# graph outputs
# ---------------------------------------------------------------------------------------
def test_outputs_that_are_inputs_initializers_or_repeated():
    x, w = f32(2, 3), f32(2, 3)
    model = model_of(
        [helper.make_node("Add", ["x", "w"], ["s"]), helper.make_node("Identity", ["s"], ["s2"])],
        [("x", TP.FLOAT, [2, 3])],
        [("s", TP.FLOAT, [2, 3]), ("x", TP.FLOAT, [2, 3]), ("w", TP.FLOAT, [2, 3]), ("s2", TP.FLOAT, [2, 3])],
        {"w": w},
    )
    graph = from_onnx(model)
    assert graph.output_names == ["s", "x", "w", "s2"]
    expected = [x + w, x, w, x + w]
    for got in (graphc.run_graph(graph, x), compiled_outputs(graph, x)):
        for g, e in zip(got, expected):
            assert_close(g, e)


def test_unused_node_outputs_and_unused_inputs():
    """A Split output nobody reads and a graph input nothing uses: both fine; the input stays an input."""
    x = f32(4, 2)
    model = model_of(
        [helper.make_node("Split", ["x"], ["a", "b"], axis=0, num_outputs=2), helper.make_node("Neg", ["a"], ["y"])],
        [("x", TP.FLOAT, [4, 2]), ("unused", TP.FLOAT, [3])],
        [("y", TP.FLOAT, [2, 2])],
        opset=18,
    )
    graph = from_onnx(model)
    assert [v.name for v in graph.inputs] == ["x", "unused"]
    assert_close(compiled_outputs(graph, x, f32(3))[0], -x[:2])


def test_graph_without_inputs():
    model = model_of([helper.make_node("Constant", [], ["c"], value_floats=[1.0, 2.0])], [], [("c", TP.FLOAT, [2])])
    graph = from_onnx(model)
    assert_close(compiled_outputs(graph)[0], np.array([1.0, 2.0], np.float32))


def test_declared_output_type_mismatch_is_an_error():
    model = model_of([helper.make_node("Relu", ["x"], ["y"])], [("x", TP.FLOAT, [2, 3])], [("y", TP.FLOAT, [3, 2])])
    with pytest.raises(FrontendError, match=r"graph output 'y': the model declares shape \[3, 2\], graphc has \[2, 3\]"):
        from_onnx(model)


# ---------------------------------------------------------------------------------------
# value_info
# ---------------------------------------------------------------------------------------
def test_value_info_agrees_with_graphc():
    model = model_of(
        [helper.make_node("Relu", ["x"], ["h"]), helper.make_node("Neg", ["h"], ["y"])],
        [("x", TP.FLOAT, [2, 3])],
        [("y", TP.FLOAT, [2, 3])],
        value_info=[("h", TP.FLOAT, ["batch", 3])],  # symbolic dims match anything
    )
    assert from_onnx(model).outputs[0].shape == (2, 3)


@pytest.mark.parametrize(
    "declared, message",
    [
        (("h", TP.FLOAT, [3, 2]), r"the model declares shape \[3, 2\], graphc has \[2, 3\]"),
        (("h", TP.INT64, [2, 3]), r"the model declares element type INT64, graphc has f32"),
    ],
)
def test_value_info_contradicting_graphc_names_the_node(declared, message):
    model = model_of(
        [helper.make_node("Relu", ["x"], ["h"], name="act"), helper.make_node("Neg", ["h"], ["y"])],
        [("x", TP.FLOAT, [2, 3])],
        [("y", TP.FLOAT, [2, 3])],
        value_info=[declared],
    )
    with pytest.raises(FrontendError, match=rf"node 'act' \(Relu, opset 17\): output 'h': {message} \(from the model's value_info\)"):
        from_onnx(model)


# ---------------------------------------------------------------------------------------
# domains, external data
# ---------------------------------------------------------------------------------------
def test_unknown_domain_names_domain_and_opset():
    model = model_of(
        [helper.make_node("FusedGelu", ["x"], ["y"], domain="com.microsoft", name="g")],
        [("x", TP.FLOAT, [2])],
        [("y", TP.FLOAT, [2])],
        extra_opsets=[("com.microsoft", 1)],
    )
    with pytest.raises(UnsupportedOpError, match=r"1 unsupported ONNX op type: FusedGelu \(com.microsoft opset 1; nodes g\)") as err:
        from_onnx(model)
    assert err.value.op_types == ("com.microsoft.FusedGelu",)


def test_external_data_through_the_backend(tmp_path):
    x, w = f32(2, 16), f32(16, 8)
    model = model_of([helper.make_node("MatMul", ["x", "w"], ["y"])], [("x", TP.FLOAT, [2, 16])], [("y", TP.FLOAT, [2, 8])], {"w": w})
    path = tmp_path / "model.onnx"
    onnx.save_model(model, str(path), save_as_external_data=True, location="model.weights", size_threshold=0)
    assert (tmp_path / "model.weights").stat().st_size == w.nbytes
    (y,) = backend.prepare(str(path)).run([x])
    assert_close(y, x @ w, rtol=1e-4, atol=1e-5)


# ---------------------------------------------------------------------------------------
# specialization: input_values, NonConstantInputError, SpecializingModel
# ---------------------------------------------------------------------------------------
def _reshape_model():
    """y = Reshape(x + 1, shape), z = Slice(y, starts=[0], ends=end, axes=[0]): `shape` and `end` decide shapes."""
    return model_of(
        [
            helper.make_node("Add", ["x", "one"], ["x1"]),
            helper.make_node("Reshape", ["x1", "shape"], ["y"], name="reshape"),
            helper.make_node("Slice", ["y", "zero", "end", "zero"], ["z"], name="slice"),
        ],
        [("x", TP.FLOAT, [4, 6]), ("shape", TP.INT64, [2]), ("end", TP.INT64, [1])],
        [("y", TP.FLOAT, None), ("z", TP.FLOAT, None)],
        {"one": np.ones((), np.float32), "zero": np.zeros(1, np.int64)},
    )


def test_shape_input_must_be_constant_names_the_inputs():
    with pytest.raises(NonConstantInputError, match=r"'reshape' \(Reshape, opset 17\): input 1 \(shape\) 'shape' must be a constant.*graph input\(s\) 'shape'") as err:
        from_onnx(_reshape_model())
    assert err.value.input_names == ("shape",)
    # one at a time: with `shape` bound, the Slice's `end` is next
    with pytest.raises(NonConstantInputError) as err:
        from_onnx(_reshape_model(), input_values={"shape": [3, 8]})
    assert err.value.input_names == ("end",)


def test_input_values_bind_inputs_as_constants():
    x = f32(4, 6)
    graph = from_onnx(_reshape_model(), input_values={"shape": np.array([3, 8]), "end": [2]})
    assert [v.name for v in graph.inputs] == ["x"]
    y, z = compiled_outputs(graph, x)
    assert_close(y, (x + 1).reshape(3, 8))
    assert_close(z, (x + 1).reshape(3, 8)[:2])


@pytest.mark.parametrize(
    "values, message",
    [
        ({"nope": [1]}, r"input_values names unknown input\(s\) nope"),
        ({"shape": [1.5, 2.0]}, r"input_values\['shape'\]: a float64 array cannot stand for the model's int64 input"),
        ({"shape": [3, 8, 1]}, r"input_values\['shape'\]: the model declares shape \[2\], graphc has \[3\]"),
    ],
)
def test_bad_input_values_are_errors(values, message):
    with pytest.raises(FrontendError, match=message):
        from_onnx(_reshape_model(), input_values=values)


def test_input_in_both_shapes_and_values_is_an_error():
    with pytest.raises(FrontendError, match=r"input\(s\) shape are in both input_shapes and input_values"):
        from_onnx(_reshape_model(), input_shapes={"shape": [2]}, input_values={"shape": [3, 8]})


def test_specializing_model_compiles_per_shape_values():
    model = graphc.SpecializingModel(_reshape_model())
    assert model.input_names == ["x", "shape", "end"]
    x = f32(4, 6)
    y, z = model.run(x, np.array([3, 8]), np.array([2]))
    assert_close(y, (x + 1).reshape(3, 8))
    assert_close(z, (x + 1).reshape(3, 8)[:2])
    assert model.value_inputs == {"shape", "end"} and model.compilations == 1

    x2 = f32(4, 6)
    y, z = model.run(x2, shape=np.array([3, 8]), end=np.array([2]))  # same values: cached
    assert_close(z, (x2 + 1).reshape(3, 8)[:2])
    assert model.compilations == 1

    y, z = model.run(x2, np.array([-1, 3]), np.array([5]))  # new values: a new specialization
    assert y.shape == (8, 3) and z.shape == (5, 3)
    assert_close(z, (x2 + 1).reshape(8, 3)[:5])
    assert model.compilations == 2
    assert [v.name for v in model.specialization(x2, np.array([-1, 3]), np.array([5])).graph.inputs] == ["x"]


def test_specializing_model_dynamic_dims_and_cache_bound():
    model_proto = model_of([helper.make_node("Relu", ["x"], ["y"])], [("x", TP.FLOAT, ["n", 3])], [("y", TP.FLOAT, ["n", 3])])
    model = graphc.SpecializingModel(model_proto, max_cache=1)
    for n in (2, 5, 2):
        x = f32(n, 3)
        assert_close(model.run(x)[0], np.maximum(x, 0))
    assert model.compilations == 3  # the cache holds one specialization: 2 was evicted by 5


def test_specializing_model_input_errors():
    model = graphc.SpecializingModel(_reshape_model())
    with pytest.raises(InputError, match=r"missing input\(s\) end"):
        model.run(f32(4, 6), np.array([3, 8]))
    with pytest.raises(InputError, match="no input named 'bogus'"):
        model.run(f32(4, 6), bogus=1)
    with pytest.raises(InputError, match="takes 3 input"):
        model.run(1, 2, 3, 4)
    with pytest.raises(InputError, match="'shape' given both by position and by name"):
        model.run(f32(4, 6), np.array([3, 8]), shape=np.array([3, 8]))


def test_specializing_model_overridable_initializer_input():
    """An initializer listed as a graph input is a default the caller may override by name."""
    x, w = f32(2, 3), f32(2, 3)
    graph = helper.make_graph(
        [helper.make_node("Mul", ["x", "w"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", TP.FLOAT, [2, 3]), helper.make_tensor_value_info("w", TP.FLOAT, [2, 3])],
        [helper.make_tensor_value_info("y", TP.FLOAT, [2, 3])],
        initializer=[numpy_helper.from_array(w, "w")],
    )
    model = graphc.SpecializingModel(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=10))
    assert model.input_names == ["x"]
    assert_close(model.run(x)[0], x * w)
    w2 = f32(2, 3)
    assert_close(model.run(x, w=w2)[0], x * w2)


def test_unsupported_ops_fail_when_the_model_is_made():
    model = model_of([helper.make_node("NoSuchOp", ["x"], ["y"])], [("x", TP.FLOAT, [2])], [("y", TP.FLOAT, [2])])
    with pytest.raises(UnsupportedOpError, match="NoSuchOp"):
        graphc.SpecializingModel(model)


# ---------------------------------------------------------------------------------------
# the ONNX backend API
# ---------------------------------------------------------------------------------------
def test_backend_prepare_run_model_and_devices():
    x = f32(4, 6)
    rep = backend.prepare(_reshape_model(), "CPU")
    y, z = rep.run([x, np.array([2, 12]), np.array([1])])
    assert_close(y, (x + 1).reshape(2, 12))
    assert z.shape == (1, 12) and z.dtype == np.float32
    (y, _z) = rep.run({"x": x, "shape": np.array([8, 3]), "end": np.array([3])})
    assert y.shape == (8, 3)
    y, z = backend.run_model(_reshape_model(), [x, np.array([6, 4]), np.array([6])])
    assert_close(z, (x + 1).reshape(6, 4))
    assert backend.supports_device("CPU") and not backend.supports_device("CUDA")
    with pytest.raises(TargetError, match="CPU only"):
        backend.prepare(_reshape_model(), "CUDA")


def test_backend_run_node():
    a, b = f32(2, 3), f32(2, 3)
    (y,) = backend.run_node(helper.make_node("Sub", ["a", "b"], ["y"]), [a, b])
    assert_close(y, a - b)
    x = np.array([[3.0, 1.0, 2.0]], np.float32)
    values, indices = backend.GraphcBackend.run_node(
        helper.make_node("TopK", ["x", "k"], ["v", "i"], axis=1), {"x": x, "k": np.array([2])},
        outputs_info=[(np.float32, (1, 2)), (np.int64, (1, 2))],
    )
    assert_close(values, np.array([[3.0, 2.0]], np.float32))
    assert_close(indices, np.array([[0, 2]], np.int64))


# ---------------------------------------------------------------------------------------
# sequence and optional graph inputs / outputs
# ---------------------------------------------------------------------------------------
def _sequence_model():
    """total = ConcatFromSequence(seq, axis=0); parts = SplitToSequence(total, [1, rest]); n = SequenceLength(seq)."""
    seq_type = helper.make_sequence_type_proto(helper.make_tensor_type_proto(TP.FLOAT, [None, 3]))
    graph = helper.make_graph(
        [
            helper.make_node("ConcatFromSequence", ["seq"], ["total"], axis=0),
            helper.make_node("SplitToSequence", ["total"], ["parts"], axis=0, keepdims=1),
            helper.make_node("SequenceLength", ["seq"], ["n"]),
        ],
        "seqs",
        [helper.make_value_info("seq", seq_type)],
        [helper.make_tensor_value_info("total", TP.FLOAT, None), helper.make_value_info("parts", seq_type),
         helper.make_tensor_value_info("n", TP.INT64, [])],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=10)


def test_sequence_inputs_and_outputs_are_flattened():
    a, b = f32(1, 3), f32(2, 3)
    graph = from_onnx(_sequence_model(), input_shapes={"seq": [(1, 3), (2, 3)]})
    assert [v.name for v in graph.inputs] == ["seq[0]", "seq[1]"]
    assert graph.output_names == ["total", "parts[0]", "parts[1]", "parts[2]", "n"]
    total, *parts, n = graphc.run_graph(graph, a, b)
    assert_close(total, np.concatenate([a, b]))
    assert_close(parts[2], b[1:2])
    assert int(n) == 2
    with pytest.raises(FrontendError, match=r"input 'seq': a sequence input needs its length and element shapes: pass input_shapes=\{'seq': \[shape, ...\]\}"):
        from_onnx(_sequence_model())


def test_specializing_model_takes_and_returns_sequences():
    model = graphc.SpecializingModel(_sequence_model())
    a, b, c = f32(1, 3), f32(2, 3), f32(1, 3)
    total, parts, n = model.run([a, b])
    assert_close(total, np.concatenate([a, b]))
    assert isinstance(parts, list) and len(parts) == 3
    assert_close(parts[1], b[:1])
    assert int(n) == 2
    total, parts, n = model.run(seq=[a, b, c])  # another length: another specialization
    assert len(parts) == 4 and int(n) == 3 and model.compilations == 2


def _optional_model():
    """has = OptionalHasElement(opt); y = Identity(opt) (an optional output)."""
    opt_type = helper.make_optional_type_proto(helper.make_tensor_type_proto(TP.FLOAT, [2]))
    graph = helper.make_graph(
        [helper.make_node("OptionalHasElement", ["opt"], ["has"]), helper.make_node("Identity", ["opt"], ["y"])],
        "opts",
        [helper.make_value_info("opt", opt_type)],
        [helper.make_tensor_value_info("has", TP.BOOL, []), helper.make_value_info("y", opt_type)],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=10)


def test_optional_inputs_and_outputs():
    model = graphc.SpecializingModel(_optional_model())
    x = f32(2)
    has, y = model.run(x)
    assert bool(has)
    assert_close(y, x)
    has, y = model.run(None)
    assert not bool(has) and y is None
    has, y = model.run()  # left out: empty
    assert not bool(has) and y is None
    with pytest.raises(FrontendError, match=r"graph output\(s\) 'y' are empty optionals.*SpecializingModel returns them as None"):
        from_onnx(_optional_model(), input_shapes={"opt": None})
    assert from_onnx(_optional_model()).output_names == ["has", "y"]  # declared shape: a value


def test_none_for_a_required_input_is_an_error():
    with pytest.raises(InputError, match="input 'x' is not optional"):
        graphc.SpecializingModel(_reshape_model()).run(None, [2, 12], [1])
