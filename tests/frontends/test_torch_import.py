"""PyTorch importer: small modules checked against PyTorch, the seed models, and the error paths.

Every ATen converter is exercised by a case below (a completeness test checks it): each
case exports a tiny module, imports it, runs it on the reference interpreter and
compiled for x86, and compares with PyTorch eager.
"""
from __future__ import annotations

import inspect
import subprocess
import sys
from dataclasses import dataclass
from typing import Callable

import numpy as np
import pytest

torch = pytest.importorskip("torch")
F = torch.nn.functional

import graphc  # noqa: E402
from graphc.errors import FrontendError, UnsupportedOpError  # noqa: E402
from graphc.examples import seeds  # noqa: E402
from graphc.frontends import torch as torch_frontend  # noqa: E402
from graphc.frontends.torch import from_torch  # noqa: E402
from tests.conftest import assert_close  # noqa: E402

RNG = np.random.default_rng(0)
QUIET = {"log": lambda *a, **k: None}


def f32(*shape, low=-2.0, high=2.0):
    return RNG.uniform(low, high, size=shape).astype(np.float32)


def i64(*shape, low=-5, high=5):
    return RNG.integers(low, high, size=shape).astype(np.int64)


def bools(*shape):
    return RNG.integers(0, 2, size=shape).astype(bool)


class Fn(torch.nn.Module):
    """A module whose forward is `fn` (positional tensor inputs)."""

    def __init__(self, fn: Callable):
        super().__init__()
        self.fn = fn

    def forward(self, *xs):
        return self.fn(*xs)


def torch_outputs(module, inputs) -> list[np.ndarray]:
    import torch.utils._pytree as pytree

    with torch.no_grad():
        out = module(*[torch.from_numpy(np.ascontiguousarray(a)) for a in inputs])
    return [t.numpy() for t in pytree.tree_leaves(out)]


def check(module, inputs, rtol=1e-4, atol=1e-5, **import_options):
    """Import `module`; interpreter and x86 results must match PyTorch. Returns the graph."""
    expected = torch_outputs(module, inputs)
    graph = from_torch(module, tuple(inputs), **import_options)
    for i, (a, e) in enumerate(zip(graphc.run_graph(graph, *inputs), expected, strict=True)):
        assert_close(a, e, rtol=rtol, atol=atol, what=f"interpreter output {i}")
    got = graphc.compile(graph, target="x86", **QUIET).session().run(*inputs)
    for i, (a, e) in enumerate(zip(got, expected, strict=True)):
        assert_close(a, e, rtol=rtol, atol=atol, what=f"x86 output {i}")
    return graph


# ---------------------------------------------------------------------------------------
# op coverage: (id, module or forward function, inputs, ATen ops the case must convert)
# ---------------------------------------------------------------------------------------
@dataclass
class Case:
    id: str
    fn: Callable | torch.nn.Module
    inputs: tuple
    covers: tuple[str, ...]
    tol: float = 1e-5

    @property
    def module(self):
        return self.fn if isinstance(self.fn, torch.nn.Module) else Fn(self.fn)


def _bn():
    bn = torch.nn.BatchNorm2d(3).eval()
    with torch.no_grad():
        bn.running_mean.uniform_(-1, 1), bn.running_var.uniform_(0.5, 2), bn.weight.uniform_(0.5, 1.5), bn.bias.uniform_(-1, 1)
    return bn


def _sdpa_masks(q, k, v, bool_mask, float_mask):
    return (
        F.scaled_dot_product_attention(q, k, v, attn_mask=bool_mask),
        F.scaled_dot_product_attention(q, k, v, attn_mask=float_mask, scale=0.3),
        F.scaled_dot_product_attention(q, k, v, is_causal=True),
    )


_KEY_MASK = np.ones((1, 1, 5, 6), bool)
_KEY_MASK[..., 4:] = False

CASES = [
    # elementwise
    Case("unary", lambda x: (x.abs(), -x, x.exp(), x.tanh(), x.sigmoid(), torch.erf(x), torch.relu(x), F.silu(x)), (f32(3, 5),),
         ("abs.default", "neg.default", "exp.default", "tanh.default", "sigmoid.default", "erf.default", "relu.default", "silu.default")),
    Case("unary_positive", lambda x: (x.log(), x.sqrt(), x.rsqrt(), x.reciprocal()), (f32(4, 6, low=0.2, high=3),),
         ("log.default", "sqrt.default", "rsqrt.default", "reciprocal.default")),
    Case("int_to_float", lambda n: (n.exp(), n.sqrt()), (i64(5, low=0, high=4),), ("exp.default", "sqrt.default")),
    Case("gelu", lambda x: (F.gelu(x), F.gelu(x, approximate="tanh")), (f32(2, 33, low=-4, high=4),), ("gelu.default",)),
    Case("arithmetic", lambda x, y: (torch.add(x, y, alpha=2), torch.sub(x, y, alpha=0.5), x * y, x / (y.abs() + 1), x + 1, 3 - x, 2.5 * x),
         (f32(2, 3, 4), f32(3, 4)), ("add.Tensor", "sub.Tensor", "mul.Tensor", "div.Tensor")),
    Case("promotion", lambda n, x: (n + x, n * 2.5, n / 2, x + torch.tensor(2.0, dtype=torch.float64)), (i64(3, 4), f32(3, 4)),
         ("add.Tensor", "mul.Tensor", "div.Tensor")),
    Case("int_division", lambda a, b: (torch.div(a, b, rounding_mode="trunc"), torch.div(a, b, rounding_mode="floor"), a // 3),
         (i64(4, 6, low=-20, high=20), i64(4, 6, low=1, high=7) * np.array([1, -1, 1, -1, 1, -1])), ("div.Tensor_mode",)),
    Case("pow", lambda x, y: (x ** 2, x.abs() ** y, 2 ** y), (f32(3, 4), f32(3, 4, low=0.5, high=2)),
         ("pow.Tensor_Scalar", "pow.Tensor_Tensor", "pow.Scalar")),
    Case("max_min_clamp", lambda x, y: (torch.maximum(x, y), torch.minimum(x, y), x.clamp(-0.5, 0.7), x.clamp(min=y), x.clamp(max=0.1),
                                        x.clamp_min(0.2), F.hardtanh(x), F.relu6(x * 4)),
         (f32(3, 4), f32(3, 4)), ("maximum.default", "minimum.default", "clamp.default", "clamp.Tensor", "hardtanh.default")),
    Case("where", lambda c, x, y: (torch.where(c, x, y), torch.where(c, x, 0.5), torch.where(c, -1.0, y), x.masked_fill(c, -1e4)),
         (bools(3, 4), f32(3, 4), f32(4)), ("where.self",)),
    Case("comparisons", lambda x, y, n: (x == y, x == 0.5, x != y, x != 0.5, x < y, x < 1, x <= y, x <= 1, x > y, x > 0, x >= y, x >= 0,
                                         n < 0.5, n == y.long()),
         (f32(3, 4), np.where(bools(3, 4), f32(3, 4), 0.5).astype(np.float32), i64(3, 4, low=-1, high=2)),
         tuple(f"{op}.{kind}" for op in ("eq", "ne", "lt", "le", "gt", "ge") for kind in ("Tensor", "Scalar")) + ("_to_copy.default",)),
    Case("logic", lambda a, b, x: (a & b, a | b, a ^ b, ~a, torch.logical_and(x, b), torch.logical_or(a, x), torch.logical_xor(x, x * 0), x.logical_not()),
         (bools(3, 4), bools(3, 4), np.where(bools(3, 4), f32(3, 4), 0).astype(np.float32)),
         ("bitwise_and.Tensor", "bitwise_or.Tensor", "bitwise_xor.Tensor", "bitwise_not.default",
          "logical_and.default", "logical_or.default", "logical_xor.default", "logical_not.default")),
    Case("activations", lambda x: (F.leaky_relu(x, 0.2), F.elu(x, alpha=0.7)), (f32(4, 7),), ("leaky_relu.default", "elu.default")),
    Case("casts", lambda x: (x.to(torch.int32), (x * 4).long(), x.bool(), x.double(), x.half()), (f32(3, 5, low=-3, high=3),),
         ("_to_copy.default",), tol=1e-3),
    # shapes and indexing
    Case("views", lambda x: (x.view(6, -1), x.reshape(-1), x.permute(2, 0, 1), x.transpose(0, 1), x.mT,
                             x.unsqueeze(-1), x[None, :, None].squeeze(), x[:, :1].squeeze(1), x.flatten(1)),
         (f32(2, 3, 4),), ("view.default", "permute.default", "unsqueeze.default", "squeeze.dims")),
    Case("expand", lambda x: (x.expand(2, 3, 4), x.expand(-1, 4), x.repeat(2, 1, 3), x.expand(2, 3, 4) + 0), (f32(3, 1),),
         ("expand.default", "repeat.default")),
    Case("slices", lambda x: (x[1:], x[:, -3:], x[:, ::2], x[..., 1:7:3], x[1], x[:, -1], x.narrow(2, 1, 2), x.flip(0, 2)),
         (f32(3, 5, 8),), ("slice.Tensor", "select.int", "flip.default")),
    Case("cat_split", lambda x, y: (torch.cat([x, y], 1), torch.cat([x, y.half()], 1), torch.stack([x, x], -1),
                                    *torch.split(x, 2, dim=1), *x.split([1, 2], dim=1), *torch.chunk(y, 2, dim=0), *x.unbind(0)),
         (f32(2, 3), f32(2, 4)), ("cat.default", "split_with_sizes.default")),
    Case("pad", lambda x: (F.pad(x, (1, 2)), F.pad(x, (0, 0, 2, 1), value=-1.0), F.pad(x, (-1, 1, 1, -1))), (f32(2, 3, 4),),
         ("constant_pad_nd.default",)),
    Case("gathers", lambda w, ids, x, idx: (F.embedding(ids, w), w.index_select(0, ids[0]), torch.gather(x, 1, idx), torch.gather(x, 0, idx[:2])),
         (f32(10, 4), i64(2, 5, low=0, high=10), f32(3, 4), i64(3, 2, low=0, high=3)),
         ("embedding.default", "index_select.default", "gather.default")),
    Case("advanced_index", lambda x, i, j: (x[i], x[:, i], x[i, j], x[:, i, j], x[i, :, j], x[i[:, None], j]),
         (f32(4, 5, 6), i64(3, low=-4, high=4), i64(3, low=0, high=5)), ("index.Tensor",)),
    Case("identity_ops", lambda x: (x.clone(), x.detach(), x.contiguous() + 1), (f32(2, 3),), ("clone.default", "alias.default")),
    # reductions
    Case("reductions", lambda x: (x.sum(1), x.sum(), x.sum((0, 2), keepdim=True), x.mean(-1), x.mean(), x.amax(1), x.amin((0, 1)),
                                  x.max(1).values, x.min(2, keepdim=True)[0], x.max(), x.min()),
         (f32(2, 3, 4),), ("sum.dim_IntList", "mean.dim", "mean.default", "amax.default", "amin.default",
                           "max.dim", "min.dim", "max.default", "min.default")),
    Case("int_sum", lambda n, b: (n.sum(0), b.sum(1), n.to(torch.int32).sum(-1)), (i64(3, 4), bools(3, 4)), ("sum.dim_IntList",)),
    Case("var_std", lambda x: (x.var(1), x.var(-1, unbiased=False, keepdim=True), x.std(0), torch.var_mean(x, 1)[0]), (f32(4, 6),),
         ("var.correction", "var_mean.correction")),
    Case("any_all", lambda b, x: (b.any(1), b.all(0), b.any(), b.all(), x.any(-1)), (bools(3, 4), np.where(bools(3, 4), f32(3, 4), 0).astype(np.float32)),
         ("any.dim", "any.dims", "any.default")),
    Case("softmax", lambda x: (x.softmax(-1), F.log_softmax(x, 1), torch.softmax(x.double(), 0)), (f32(3, 4, 5, low=-9, high=9),),
         ("_softmax.default", "_log_softmax.default")),
    # nn
    Case("linear", lambda x, w, b: (F.linear(x, w, b), F.linear(x, w)), (f32(2, 3, 8), f32(5, 8), f32(5)), ("linear.default",)),
    Case("matmul", lambda a, b, c, v: (a @ b, torch.mm(a[0], b[0]), torch.bmm(a, b), a @ v, v @ b, torch.addmm(c, a[0], b[0]),
                                       torch.addmm(c, a[0], b[0], beta=0.5, alpha=2)),
         (f32(2, 3, 4), f32(2, 4, 5), f32(5), f32(4)), ("matmul.default", "mm.default", "bmm.default", "addmm.default")),
    Case("conv", lambda x, w, w1, wg: (F.conv2d(x, w, stride=2, padding=1), F.conv2d(x, w, dilation=2), F.conv2d(x, wg, groups=2, padding=(0, 1)),
                                       F.conv2d(x, w, padding="same"), F.conv1d(x[:, :, 0], w1, stride=2, padding=1)),
         (f32(1, 4, 9, 10), f32(6, 4, 3, 3), f32(6, 4, 3), f32(6, 2, 2, 3)), ("conv2d.default", "convolution.default")),
    Case("conv_transpose", lambda x, w: (F.conv_transpose2d(x, w, stride=2, padding=1, output_padding=1), F.conv_transpose2d(x, w[:, :2], groups=2)),
         (f32(1, 4, 5, 6), f32(4, 3, 3, 3)), ("convolution.default",)),
    Case("pools", lambda x: (F.max_pool2d(x, 3, 2, 1), F.max_pool2d(x, 2, ceil_mode=True), F.avg_pool2d(x, 3, 2, 1, count_include_pad=False),
                             F.avg_pool2d(x, 2), F.adaptive_avg_pool2d(x, (2, 3)), F.adaptive_avg_pool2d(x, 1), F.max_pool2d(x[0], 2)),
         (f32(2, 3, 9, 11),), ("max_pool2d_with_indices.default", "avg_pool2d.default", "_adaptive_avg_pool2d.default", "mean.dim")),
    Case("batch_norm", _bn(), (f32(2, 3, 4, 5),), ("_native_batch_norm_legit_no_training.default",)),
    Case("layer_norm", lambda x, w, b: (F.layer_norm(x, (6,), w, b, eps=1e-6), F.layer_norm(x, (4, 6))), (f32(2, 4, 6), f32(6), f32(6)),
         ("layer_norm.default",)),
    Case("group_norm", lambda x, w, b: (F.group_norm(x, 2, w, b), F.group_norm(x, 3)), (f32(2, 6, 3, 4), f32(6), f32(6)),
         ("native_group_norm.default",)),
    Case("attention", _sdpa_masks, (f32(2, 3, 5, 8), f32(2, 3, 6, 8), f32(2, 3, 6, 4), _KEY_MASK, f32(1, 3, 5, 6)),
         ("scaled_dot_product_attention.default",)),
    Case("attention_gqa", lambda q, k, v: F.scaled_dot_product_attention(q, k, v, enable_gqa=True), (f32(1, 4, 5, 8), f32(1, 2, 5, 8), f32(1, 2, 5, 8)),
         ("scaled_dot_product_attention.default",)),
]


@pytest.fixture
def converted(monkeypatch) -> set[str]:
    """The ATen ops (short names) converted during the test."""
    seen: set[str] = set()
    torch_frontend.supported_ops()  # load the converters before wrapping them

    def recording(key, fn):
        def convert(ctx, *args):
            seen.add(key.removeprefix("aten."))
            return fn(ctx, *args)

        return convert

    for key, fn in list(torch_frontend.CONVERTERS.items()):
        monkeypatch.setitem(torch_frontend.CONVERTERS, key, recording(key, fn))
    return seen


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_aten_op(case, converted):
    check(case.module, case.inputs, rtol=max(case.tol, 1e-4), atol=case.tol)
    missing = set(case.covers) - converted
    assert not missing, f"the exported program did not use {sorted(missing)}: the case does not test what it claims"


class Block(torch.nn.Module):
    """A small attention block: as a core-ATen program its layer_norm, linear and attention are decomposed."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.ln, self.qkv = torch.nn.LayerNorm(8), torch.nn.Linear(8, 24)

    def forward(self, x, mask):
        q, k, v = self.qkv(self.ln(x)).view(1, 4, 3, 2, 4).permute(2, 0, 3, 1, 4)
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)


CORE_ATEN_COVERS = ("native_layer_norm.default", "addmm.default", "bmm.default", "mul.Scalar", "any.dim", "_softmax.default")


def test_core_aten_program(converted):
    """An ExportedProgram already lowered to core ATen (default decompositions) imports too."""
    x, mask = f32(1, 4, 8), np.tril(np.ones((4, 4), bool))
    program = torch.export.export(Block().eval(), (torch.from_numpy(x), torch.from_numpy(mask))).run_decompositions()
    g = from_torch(program)
    assert "scaled_dot_product_attention" not in g.op_counts()
    assert_close(graphc.run_graph(g, x, mask)[0], torch_outputs(Block().eval(), (x, mask))[0], rtol=1e-4, atol=1e-5)
    missing = set(CORE_ATEN_COVERS) - converted
    assert not missing, f"the core-ATen program did not use {sorted(missing)}"


def test_every_converter_has_a_case():
    covered = {op for case in CASES for op in case.covers} | set(CORE_ATEN_COVERS)
    untested = {k.removeprefix("aten.") for k in torch_frontend.supported_ops()} - covered
    assert not untested, f"ATen converters without a test case: {sorted(untested)}"


# ---------------------------------------------------------------------------------------
# models, names, locations, parameters
# ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def cnn():
    model = seeds.torch_cnn(seed=0)
    return model, seeds.random_input((2, 1, 28, 28), seed=1)


def test_seed_cnn(cnn):
    model, x = cnn
    g = check(model, (x,))
    assert [v.name for v in g.inputs] == ["x"] and g.output_names == ["output"]
    assert g.op_counts() == {"conv2d": 2, "reshape": 3, "add": 3, "relu": 2, "max_pool2d": 2, "linear": 1}
    consts = {n.outputs[0].name for n in g.const_nodes()}
    assert {"conv1.weight", "conv1.bias", "conv2.weight", "conv2.bias", "fc.weight", "fc.bias"} <= consts
    conv = next(n for n in g.nodes if n.op == "conv2d")
    line = inspect.getsourcelines(type(model).forward)[1] + 1  # the forward's first statement
    assert conv.loc == f"seeds.py:{line}"


def test_seed_mlp_and_compile_entry_point():
    model = seeds.torch_mlp(seed=0)
    x = seeds.random_input((4, 784), seed=2)
    compiled = graphc.compile(model, target="x86", example_inputs=(x,), **QUIET)
    assert_close(compiled.session().run(x)[0], torch_outputs(model, (x,))[0], rtol=1e-4, atol=1e-6)
    assert model.training is False  # seeds build eval modules; from_torch restores the mode it found
    model.train()
    graphc.frontends.torch.from_torch(model, (x,))
    assert model.training is True


def test_compile_needs_example_inputs():
    with pytest.raises(FrontendError, match="example_inputs"):
        graphc.compile(seeds.torch_mlp(), target="x86", **QUIET)


def test_params_as_inputs():
    model = seeds.torch_mlp(seed=0)
    x = seeds.random_input((4, 784), seed=2)
    g = from_torch(model, (x,), params_as_inputs=True)
    assert [v.name for v in g.inputs] == ["input", "0.weight", "0.bias", "2.weight", "2.bias"]
    assert not g.const_nodes()
    sess = graphc.compile(g, target="x86", **QUIET).session()
    weights = {k: v * 0.5 for k, v in seeds.state_dict_numpy(model).items()}
    model.load_state_dict({k: torch.from_numpy(v) for k, v in weights.items()})
    assert_close(sess.run(x, **weights)[0], torch_outputs(model, (x,))[0], rtol=1e-4, atol=1e-6)


def test_buffers_and_static_subgraphs():
    """Persistent buffers are named constants; constants-only subgraphs (here a causal mask and
    ops without converters: tril, arange) are evaluated by PyTorch at import time."""

    class Model(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("scale", torch.tensor([2.0, 3.0, 4.0]))
            self.register_buffer("offsets", torch.arange(4.0), persistent=False)

        def forward(self, x):
            mask = torch.tril(torch.ones(4, 4, dtype=torch.bool))
            ramp = torch.arange(4).float().cumsum(0) + self.offsets
            return torch.where(mask, x * self.scale[:, None, None], ramp)

    x = f32(3, 4, 4)
    g = check(Model(), (x,))
    assert {"scale"} == {n.outputs[0].name for n in g.const_nodes() if n.outputs[0].name}
    assert set(g.op_counts()) == {"mul", "unsqueeze", "where"}


def test_outputs_named_by_structure():
    class Model(torch.nn.Module):
        def forward(self, x):
            return {"logits": x * 2, "extra": (x + 1, x.sum())}

    g = from_torch(Model(), (f32(2, 3),))
    assert g.output_names == ["logits", "extra.0", "extra.1"]
    g = from_torch(Fn(lambda x: (x * 2, 3, None)), (f32(2),))  # constants stay outputs, Nones are dropped
    assert g.output_names == ["output0", "output1"]
    assert graphc.run_graph(g, np.ones(2, np.float32))[1] == 3
    g = from_torch(Fn(lambda x: x * 2), (f32(2),))
    assert g.output_names == ["output"]


def test_input_names_and_keyword_inputs():
    class Model(torch.nn.Module):
        def forward(self, tokens, mask=None, scale: float = 1.0):
            return tokens * scale if mask is None else tokens.masked_fill(mask, 0.0)

    x, m = f32(2, 3), bools(2, 3)
    g = from_torch(Model(), {"tokens": x, "mask": m})
    assert [v.name for v in g.inputs] == ["tokens", "mask"]
    assert_close(graphc.run_graph(g, tokens=x, mask=m)[0], np.where(m, 0, x).astype(np.float32))
    g = from_torch(Model(), (x,), input_names=["data"])
    assert [v.name for v in g.inputs] == ["data"]
    with pytest.raises(FrontendError, match="input_names gives 2 names for 1 tensor inputs"):
        from_torch(Model(), (x,), input_names=["a", "b"])


def test_exported_program_input():
    program = torch.export.export(Fn(lambda x: torch.relu(x) * 3), (torch.zeros(2, 3),))
    g = from_torch(program)
    assert g.op_counts() == {"relu": 1, "mul": 1}


# ---------------------------------------------------------------------------------------
# errors
# ---------------------------------------------------------------------------------------
class Unsupported(torch.nn.Module):
    def forward(self, x):
        y = torch.lgamma(x)
        z = torch.digamma(y)
        return torch.lgamma(z) + torch.special.i0(y)


def _line_of(fn, text: str) -> int:
    lines, first = inspect.getsourcelines(fn)
    return first + next(i for i, ln in enumerate(lines) if text in ln)


def test_unsupported_ops_listed_once_with_source_lines():
    with pytest.raises(UnsupportedOpError) as e:
        from_torch(Unsupported(), (f32(3, 4),))
    msg = str(e.value)
    here, fwd = "test_torch_import.py", Unsupported.forward
    first, last = _line_of(fwd, "y = torch.lgamma"), _line_of(fwd, "return torch.lgamma")
    assert msg.startswith("torch module Unsupported: 3 unsupported ATen ops: ")
    assert f"aten.lgamma.default at {here}:{first} (y = torch.lgamma(x)), {here}:{last} (return torch.lgamma(z) + torch.special.i0(y))" in msg
    assert f"aten.digamma.default at {here}:{_line_of(fwd, 'torch.digamma')} (z = torch.digamma(y))" in msg
    assert f"aten.i0.default at {here}:{last}" in msg


def test_random_ops_are_not_folded():
    with pytest.raises(UnsupportedOpError, match="aten.rand"):
        from_torch(Fn(lambda x: x + torch.rand(3)), (f32(3),))


def test_export_failure_names_the_reason():
    class DataDependent(torch.nn.Module):
        def forward(self, x):
            if x.sum() > 0:
                return x * 2
            return x

    with pytest.raises(FrontendError, match=r"torch.export cannot trace DataDependent: .*data-dependent"):
        from_torch(DataDependent(), (f32(3),))


def test_not_a_module():
    with pytest.raises(FrontendError, match="takes a torch.nn.Module"):
        from_torch(lambda x: x, (f32(3),))


def test_mutating_forward_is_rejected():
    class Counter(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("calls", torch.zeros(()))

        def forward(self, x):
            self.calls += 1
            return x * self.calls

    with pytest.raises(FrontendError, match="mutates 'calls'"):
        from_torch(Counter(), (f32(3),))


def test_output_graphc_does_not_compute():
    with pytest.raises(FrontendError, match=r"aten.max.dim at .*output 1 is used, but graphc does not compute it"):
        from_torch(Fn(lambda x: torch.max(x, 1).indices), (f32(3, 4),))


@pytest.mark.parametrize("fn, inputs, match", [
    (lambda x, m: x[m], (f32(3, 4), bools(3, 4)), r"aten.index.Tensor at .*: index 0 is a mask"),
    (lambda x, w: F.conv3d(x, w), (f32(1, 2, 3, 3, 3), f32(2, 2, 1, 1, 1)), "only 1-D and 2-D convolutions"),
    (lambda x: F.avg_pool2d(x, 2, divisor_override=3), (f32(1, 1, 4, 4),), "divisor_override=3 is not supported"),
    (lambda q: F.scaled_dot_product_attention(q, q, q, dropout_p=0.1), (f32(1, 2, 3, 4),), "dropout_p=0.1"),
    (lambda x, y: torch.div(x, y, rounding_mode="floor"), (f32(3), f32(3)), "rounding_mode='floor' on f32 tensors"),
    (lambda a, b: a & b, (i64(3), i64(3)), "bitwise ops on i64, i64 tensors"),
], ids=["mask_index", "conv3d", "divisor_override", "attention_dropout", "float_floor_division", "int_bitwise"])
def test_conversion_errors_name_op_and_line(fn, inputs, match):
    with pytest.raises(FrontendError, match=match) as e:
        from_torch(Fn(fn), inputs)
    assert "test_torch_import.py:" in str(e.value)  # the lambda's line


def test_graphc_imports_without_torch():
    code = "import sys; import graphc, graphc.compiler, graphc.frontends.onnx; assert 'torch' not in sys.modules, 'torch was imported'"
    subprocess.run([sys.executable, "-c", code], check=True)
