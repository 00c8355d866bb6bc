"""ai.onnx.ml ops, TfIdfVectorizer (onnxruntime as reference) and ai.onnx.preview.training optimizers
(the ONNX reference evaluator as reference: onnxruntime does not implement them)."""
from __future__ import annotations

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from onnx import TensorProto as TP  # noqa: E402
from onnx import helper, numpy_helper  # noqa: E402
from onnx.reference import ReferenceEvaluator  # noqa: E402

from graphc.errors import FrontendError, UnsupportedOpError  # noqa: E402
from graphc.frontends.onnx import from_onnx  # noqa: E402
from tests.frontends.test_onnx_import import RNG, check, f32, run_ort  # noqa: E402

ML = "ai.onnx.ml"
TRAINING = "ai.onnx.preview.training"


def model(node, inputs: dict, n_outputs=1, domain_opsets=None, opset=17):
    outs = list(node.output)[:n_outputs]
    graph = helper.make_graph(
        [node], "m",
        [helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(a.dtype), list(a.shape)) for n, a in inputs.items()],
        [helper.make_empty_tensor_value_info(o) for o in outs],
    )
    opsets = [helper.make_opsetid("", opset)] + [helper.make_opsetid(d, v) for d, v in (domain_opsets or {}).items()]
    return onnx.shape_inference.infer_shapes(helper.make_model(graph, opset_imports=opsets, ir_version=10))


def test_binarizer():
    x = f32(3, 4)
    check(model(helper.make_node("Binarizer", ["x"], ["y"], domain=ML, threshold=0.25), {"x": x}, domain_opsets={ML: 1}), {"x": x})


@pytest.mark.parametrize("x_shape,indices", [((3, 5), [4, 0, 4]), ((2, 3, 4), [[1, 3]]), ((6,), [5, 1])], ids=["2d", "3d-2d-indices", "1d"])
def test_array_feature_extractor(x_shape, indices):
    x, idx = f32(*x_shape), np.array(indices, np.int64)
    node = helper.make_node("ArrayFeatureExtractor", ["x", "idx"], ["y"], domain=ML)
    check(model(node, {"x": x, "idx": idx}, domain_opsets={ML: 1}), {"x": x, "idx": idx})


@pytest.mark.parametrize(
    "x,attrs",
    [
        (np.array([[1, 7, 3], [9, 3, 1]], np.int64), dict(keys_int64s=[1, 3, 5], values_floats=[0.5, -1.0, 2.0], default_float=7.0)),
        (np.array([0.5, 2.0, -1.0, 0.5], np.float32), dict(keys_floats=[0.5, -1.0], values_int64s=[10, 20])),
        (np.array([4, 2, 4, 8], np.int64), dict(keys_tensor=numpy_helper.from_array(np.array([2, 4], np.int64)),
                                                values_tensor=numpy_helper.from_array(np.array([1.5, 2.5], np.float32)),
                                                default_tensor=numpy_helper.from_array(np.array([-3.0], np.float32)))),
    ],
    ids=["int-to-float", "float-to-int-default", "tensor-attributes"],
)
def test_label_encoder_numeric(x, attrs):
    node = helper.make_node("LabelEncoder", ["x"], ["y"], domain=ML, **attrs)
    check(model(node, {"x": x}, domain_opsets={ML: 4}), {"x": x})


def test_label_encoder_strings_are_a_clear_error():
    node = helper.make_node("LabelEncoder", ["x"], ["y"], domain=ML, keys_strings=["a"], values_int64s=[1], name="enc")
    graph = helper.make_graph([node], "m", [helper.make_tensor_value_info("x", TP.INT64, [2])], [helper.make_tensor_value_info("y", TP.INT64, [2])])
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid(ML, 4)], ir_version=10)
    with pytest.raises(FrontendError, match="'enc'.*string keys or values are not supported"):
        from_onnx(m, input_shapes=None)


def tree_ensemble(aggregate, post_transform=0, missing=False):
    """Two trees on 3 features, 2 targets: BRANCH_LEQ, BRANCH_GT, BRANCH_EQ and a BRANCH_MEMBER set."""
    node = helper.make_node(
        "TreeEnsemble", ["x"], ["y"], domain=ML,
        # tree 0: nodes 0-2, tree 1: nodes 3-4 (node ids are global)
        nodes_featureids=[0, 1, 2, 2, 0],
        nodes_modes=numpy_helper.from_array(np.array([0, 3, 6, 4, 1], np.uint8)),
        nodes_splits=numpy_helper.from_array(np.array([0.2, -0.5, np.nan, 1.0, 0.0], np.float32)),
        nodes_truenodeids=[1, 0, 2, 4, 3], nodes_trueleafs=[0, 1, 1, 0, 1],
        nodes_falsenodeids=[2, 1, 3, 5, 4], nodes_falseleafs=[0, 1, 1, 1, 1],
        nodes_missing_value_tracks_true=[1, 0, 1, 0, 1] if missing else [0] * 5,
        membership_values=numpy_helper.from_array(np.array([1.0, 2.0, np.nan], np.float32)),
        leaf_targetids=[0, 1, 0, 1, 0, 1], leaf_weights=numpy_helper.from_array(np.array([1.0, -2.0, 3.5, 0.25, 4.0, -1.5], np.float32)),
        n_targets=2, tree_roots=[0, 3], aggregate_function=aggregate, post_transform=post_transform,
    )
    return model(node, {"x": np.zeros((12, 3), np.float32)}, domain_opsets={ML: 5}, opset=21)


def _softmax(y):
    e = np.exp(y - y.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _softmax_zero(y):
    e = np.where(np.abs(y) > 1e-7, np.exp(y - y.max(axis=-1, keepdims=True)), 0)
    return e / e.sum(axis=-1, keepdims=True)


# post_transform by the spec's numbering, applied to onnxruntime's raw scores (onnxruntime swaps 1 and 2)
POST_TRANSFORMS = {0: lambda y: y, 1: _softmax, 2: lambda y: 1 / (1 + np.exp(-y)), 3: _softmax_zero}


@pytest.mark.parametrize(
    "aggregate,post,missing",
    [(1, 0, False), (0, 3, True), (2, 2, False), (3, 1, True)],
    ids=["sum", "average-missing-softmax-zero", "min-logistic", "max-softmax-missing"],
)
def test_tree_ensemble(aggregate, post, missing):
    x = RNG.integers(-2, 3, size=(12, 3)).astype(np.float32) * 0.5  # many values on the splits
    x[0, 0] = x[1, 2] = np.nan
    m, raw = tree_ensemble(aggregate, post, missing), tree_ensemble(aggregate, 0, missing)
    expected = POST_TRANSFORMS[post](run_ort(raw, {"x": x})[0].astype(np.float64)).astype(np.float32)
    check(m, {"x": x}, expected=[expected])


@pytest.mark.parametrize(
    "attrs",
    [
        dict(mode="TF", min_gram_length=1, max_gram_length=3, max_skip_count=2, ngram_counts=[0, 3, 7], ngram_indexes=[5, 0, 1, 2, 3, 4],
             pool_int64s=[2, 3, 5, 2, 3, 5, 4, 3, 5, 2]),
        dict(mode="IDF", min_gram_length=2, max_gram_length=2, max_skip_count=1, ngram_counts=[0, 2], ngram_indexes=[0, 1, 2, 3],
             pool_int64s=[2, 3, 2, 3, 5, 2], weights=[0.5, 1.0, 2.0, 4.0]),
        dict(mode="TFIDF", min_gram_length=1, max_gram_length=2, max_skip_count=0, ngram_counts=[0, 2], ngram_indexes=[1, 0, 2],
             pool_int64s=[3, 5, 5, 2], weights=[0.5, 3.0, 2.0]),
    ],
    ids=["tf-uni-bi-trigrams", "idf-weights", "tfidf"],
)
def test_tfidf_vectorizer(attrs):
    x = RNG.integers(1, 6, size=(3, 9)).astype(np.int32)
    check(model(helper.make_node("TfIdfVectorizer", ["x"], ["y"], **attrs), {"x": x}), {"x": x})


# ---------------------------------------------------------------------------------------
# training optimizers
# ---------------------------------------------------------------------------------------
OPTIMIZERS = {
    "Momentum": (1, dict(alpha=0.9, beta=0.7, mode="standard", norm_coefficient=0.01)),
    "Nesterov": (1, dict(alpha=0.9, beta=0.7, mode="nesterov", norm_coefficient=0.02)),
    "Adagrad": (1, dict(decay_factor=0.1, epsilon=1e-5, norm_coefficient=0.01)),
    "Adam": (2, dict(alpha=0.8, beta=0.95, epsilon=1e-6, norm_coefficient=0.01, norm_coefficient_post=0.05)),
}


@pytest.mark.parametrize("name", list(OPTIMIZERS))
@pytest.mark.parametrize("step", [0, 3])
def test_training_optimizers(name, step):
    """Two tensors updated at once; T = 0 (first update: no momentum history / bias correction) and T > 0."""
    n_states, attrs = OPTIMIZERS[name]
    op = "Momentum" if name == "Nesterov" else name
    shapes = [(3,), (2, 2)]
    inputs = {"R": np.array(0.1, np.float32), "T": np.array(step, np.int64)}
    groups = ["X", "G"] + (["V", "H"] if n_states == 2 else ["V" if op == "Momentum" else "H"])
    for g in groups:
        for k, shape in enumerate(shapes):
            inputs[f"{g}{k}"] = f32(*shape, low=0.1 if g == "H" else -1.0, high=1.0)
    outs = [f"{g}{k}_new" for g in [groups[0], *groups[2:]] for k in range(len(shapes))]
    node = helper.make_node(op, list(inputs), outs, domain=TRAINING, **attrs)
    m = model(node, inputs, n_outputs=len(outs), domain_opsets={TRAINING: 1})
    expected = ReferenceEvaluator(m).run(None, inputs)
    check(m, inputs, rtol=1e-5, atol=1e-6, expected=expected)


@pytest.mark.parametrize(
    "op,why",
    [("StringNormalizer", "no string dtype"), ("RegexFullMatch", "no string dtype"), ("Bernoulli", "no random number generation")],
)
def test_deliberately_unsupported_ops_say_why(op, why):
    node = helper.make_node(op, ["x"], ["y"], name="n")
    graph = helper.make_graph([node], "m", [helper.make_tensor_value_info("x", TP.FLOAT, [2])], [helper.make_tensor_value_info("y", TP.FLOAT, [2])])
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)], ir_version=10)
    with pytest.raises(UnsupportedOpError, match=rf"{op} \(ai.onnx opset 20; nodes n; graphc has {why}"):
        from_onnx(m)
