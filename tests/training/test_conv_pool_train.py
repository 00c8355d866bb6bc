"""Training's conv -> bias -> relu -> max pool (passes/index_max_pool.py, passes/fuse_conv_pool.py):
the rewrite numerically (train graph before vs after, interpreter; ties routed like torch) and
structurally (the seed CNN step's kernels), its declines, and the CUDA schedule (emulated)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import graphc
from graphc.examples.train_models import CASES, OPTIMIZERS, batches
from graphc.ir import GraphBuilder, TensorType
from graphc.passes.autodiff import grad
from graphc.passes.index_max_pool import index_max_pool
from graphc.passes.pipeline import run_pipeline
from graphc.passes.rules import RewriteReport
from graphc.runtime.interpreter import run_graph
from graphc.training.compile import compile_train_step
from graphc.training.graph import build_train_graph
from graphc.training.losses import parse_loss
from graphc.training.optimizers import parse_optimizer

QUIET = {"log": lambda *a: None}
RULES = ("index_max_pool", "index_max_pool_grad", "pool_relu_mask", "pooled_bias_grad")


def _relu_pool_loss(shape, pool_attrs, bias: bool):
    """loss = sum(max_pool(relu(z + b)) * c): its gradient has the relu-pool backward (and, with
    the bias, the bias gradient's sum)."""
    b = GraphBuilder("relu_pool")
    z = b.input("z", TensorType("f32", shape))
    ins = [z]
    if bias:
        bv = b.input("b", TensorType("f32", (shape[1], 1, 1)))
        ins.append(bv)
        z = b.emit("add", [z, bv])[0]
    (pooled,) = b.emit("max_pool2d", [b.emit("relu", [z])[0]], pool_attrs)
    c = b.input("c", pooled.type)
    loss = b.emit("sum", [b.emit("mul", [pooled, c])[0]], {"axes": None})[0]
    return grad(b.build([loss]), wrt=[v.name for v in ins])


def _torch_grads(z, bias, c, pool_attrs):
    zt = torch.tensor(z, requires_grad=True)
    bt = torch.tensor(bias, requires_grad=True)
    k, pad = pool_attrs["kernel"], pool_attrs.get("pad", (0, 0, 0, 0))
    y = torch.nn.functional.max_pool2d(torch.relu(zt + bt), k, pool_attrs.get("stride", k), (pad[0], pad[1]))
    (y * torch.tensor(c)).sum().backward()
    return zt.grad.numpy(), bt.grad.numpy()


@pytest.mark.parametrize("pool_attrs", [{"kernel": (2, 2)}, {"kernel": (3, 3), "stride": (2, 2), "pad": (1, 1, 1, 1)}],
                         ids=["2x2", "3x3s2pad1"])
def test_ties_and_dead_windows_route_like_torch(pool_attrs):
    """Integer-valued inputs (tied maxima) with all-negative windows: before and after the rewrite,
    interpreted and compiled, the gradients equal torch's (each window's first max)."""
    rng = np.random.default_rng(0)
    shape = (2, 4, 8, 8)
    z = rng.integers(-3, 2, size=shape).astype(np.float32)
    z[0, 0] = -1.0  # a whole channel of dead windows
    bias = np.zeros((4, 1, 1), np.float32)
    g = _relu_pool_loss(shape, pool_attrs, bias=True)
    report = RewriteReport()
    after = index_max_pool(g, report)
    assert [report.count(r) for r in RULES] == [1, 1, 1, 1], report.applied
    ops = [n.op for n in after.nodes]
    assert "max_pool2d_grad" not in ops and "max_pool2d" not in ops and ops.count("max_pool2d_with_index") == 1
    c = rng.standard_normal(_pooled_shape(g)).astype(np.float32)
    dz, db = _torch_grads(z, bias, c, pool_attrs)
    for graph in (g, after):
        _, gz, gb = run_graph(graph, z, bias, c)
        np.testing.assert_allclose(gz, dz, rtol=0, atol=1e-6)
        np.testing.assert_allclose(gb, db, rtol=1e-6, atol=1e-5)
    compiled = graphc.compile(g, target="x86").session().run(z, bias, c)
    np.testing.assert_allclose(compiled[1], dz, rtol=0, atol=1e-6)
    np.testing.assert_allclose(compiled[2], db, rtol=1e-5, atol=1e-5)


def _pooled_shape(g):
    return next(v.shape for v in g.inputs if v.name == "c")


def test_bias_gradient_stays_full_resolution_when_unmasked_windows_touch_padding():
    """Without a relu the routed gradient is not masked by pooled > 0: a padded window's tap may be
    padding, so the bias gradient's sum is not moved to pooled resolution (and says why)."""
    b = GraphBuilder("pool_only")
    z = b.input("z", TensorType("f32", (1, 4, 6, 6)))
    bv = b.input("b", TensorType("f32", (4, 1, 1)))
    (pooled,) = b.emit("max_pool2d", [b.emit("add", [z, bv])[0]], {"kernel": (3, 3), "stride": (2, 2), "pad": (1, 1, 1, 1)})
    loss = b.emit("sum", [pooled], {"axes": None})[0]
    g = grad(b.build([loss]), wrt=["z", "b"])
    report = RewriteReport()
    after = index_max_pool(g, report)
    assert report.count("index_max_pool_grad") == 1 and report.count("pooled_bias_grad") == 0
    assert any("padding" in r for r in report.reasons("pooled_bias_grad")), report.declined
    x = np.random.default_rng(1).standard_normal((1, 4, 6, 6)).astype(np.float32)
    bias = np.zeros((4, 1, 1), np.float32)
    for a, e in zip(run_graph(after, x, bias), run_graph(g, x, bias)):
        np.testing.assert_allclose(a, e, rtol=1e-6, atol=1e-6)


def test_inference_graph_is_left_alone():
    case = CASES["cnn"]
    forward = graphc.compiler.to_graph(case.make(), None, (torch.zeros(batches(case, 1)[0][0].shape),))
    assert index_max_pool(forward) is forward


def _seed_cnn_train_graph(optimizer: str):
    case = CASES["cnn"]
    forward = graphc.compiler.to_graph(case.make(), None, (torch.zeros(batches(case, 1)[0][0].shape),))
    graphs = build_train_graph(forward, parse_loss(case.loss, ()), parse_optimizer(OPTIMIZERS[optimizer][0]))
    return graphs.step


def test_rewrite_keeps_the_seed_cnn_sgd_step_numerics():
    step = _seed_cnn_train_graph("sgd_momentum")
    before, _ = run_pipeline(step, ["canonicalize", "fold_constants", "cse", "dce"], **QUIET)
    report = RewriteReport()
    after = index_max_pool(before, report)
    assert [report.count(r) for r in RULES] == [2, 2, 2, 2], report.applied
    assert not [n for n in after.nodes if n.op in ("max_pool2d", "max_pool2d_grad")]
    # relu's mask reads pooled values only: every greater is at pooled resolution
    pooled_shapes = {v.shape for n in after.nodes if n.op == "max_pool2d_with_index" for v in n.outputs}
    assert all(n.inputs[0].shape in pooled_shapes for n in after.nodes if n.op == "greater"), [n.describe() for n in after.nodes]
    rng = np.random.default_rng(0)
    inputs = []
    for v in before.inputs:
        if v.dtype == "f32":
            inputs.append(rng.uniform(-1, 1, v.shape).astype(np.float32))
        else:
            inputs.append(rng.integers(0, 10, v.shape).astype(v.type.np_dtype))
    for name, a, e in zip(before.output_names, run_graph(after, *inputs), run_graph(before, *inputs)):
        np.testing.assert_allclose(a, e, rtol=1e-5, atol=1e-6, err_msg=name)


def test_seed_cnn_adamw_step_has_one_forward_and_one_backward_kernel_per_block():
    case = CASES["cnn"]
    (x, _), = batches(case, 1)
    step = compile_train_step(case.make(), loss=case.loss, optimizer=OPTIMIZERS["adamw"][0],
                              example_inputs=(torch.from_numpy(x),), **QUIET)
    graph = step.step_graph
    fused = [n for n in graph.nodes if n.op == "fused"]
    forward = [n for n in fused if n.kind == "conv_bias_relu_pool"]
    backward = [n for n in fused if n.kind == "max_pool_relu_grad"]
    assert len(forward) == 2 and len(backward) == 2
    for n in forward:  # pooled value and i32 tap; no full-resolution activation leaves the kernel
        assert [v.dtype for v in n.outputs] == ["f32", "i32"]
        conv = next(b for b in n.body.nodes if b.op == "conv2d")
        assert all(v.shape[2:] != conv.outputs[0].shape[2:] for v in n.outputs)
    for n in backward:  # reads pooled-size tensors only (g, pooled value, tap), writes the conv output's gradient
        assert len(n.inputs) == 3 and len({v.shape for v in n.inputs}) == 1
        assert n.outputs[0].shape[2] == 2 * n.inputs[0].shape[2]
    assert not [n.op for n in graph.nodes if n.op in ("relu", "max_pool2d", "max_pool2d_grad", "greater")]
    labels = [k.label for k in step.build.kernels if not k.name.startswith("eval_")]
    assert labels.count("fused[conv_bias_relu_pool]") == 2 and labels.count("fused[max_pool_relu_grad]") == 2
    notes = {k.label: k.notes for k in step.build.kernels if not k.name.startswith("eval_")}
    assert notes["fused[conv_bias_relu_pool]"] == ["conv2d: blocked"]


def test_conv_relu_pool_train_graph_scheduled_for_cuda_matches_the_reference_emulated():
    """A small conv -> bias -> relu -> max pool gradient graph through the pipeline, scheduled for
    CUDA (the two-output forward and the routing backward), thread loops serialized on the CPU."""
    import tvm
    from tvm import relax

    from graphc.codegen.module import build_relax_module
    from graphc.passes.pipeline import optimize
    from graphc.targets import resolve
    from graphc.testing.gpu_emulation import emulated_module

    rng = np.random.default_rng(0)
    b = GraphBuilder("conv_relu_pool")
    x = b.input("x", TensorType("f32", (2, 3, 8, 8)))
    w = b.input("w", TensorType("f32", (8, 3, 3, 3)))
    bias = b.input("b", TensorType("f32", (8, 1, 1)))
    conv = b.emit("conv2d", [x, w], {"pad": (1, 1, 1, 1)})[0]
    (pooled,) = b.emit("max_pool2d", [b.emit("relu", [b.emit("add", [conv, bias])[0]])[0]], {"kernel": (2, 2)})
    c = b.input("c", pooled.type)
    loss = b.emit("sum", [b.emit("mul", [pooled, c])[0]], {"axes": None})[0]
    source = grad(b.build([loss]), wrt=["x", "w", "b"])
    graph, report = optimize(source, 2, **QUIET)
    assert report.rewrites.count("pool_relu_mask") == 1 and report.rewrites.count("fuse_pool_relu_grad") == 1
    build = build_relax_module(graph, resolve("cuda", arch="sm_90"))
    vm = relax.VirtualMachine(relax.build(emulated_module(build), resolve("x86").tvm_target()), tvm.cpu())
    inputs = [rng.standard_normal(v.shape).astype(np.float32) for v in graph.inputs]
    actual = vm["main"](*[tvm.runtime.tensor(a) for a in inputs], *[tvm.runtime.tensor(p) for p in build.param_values])
    for i, (a, e) in enumerate(zip(actual, run_graph(source, *inputs))):
        np.testing.assert_allclose(a.numpy(), e, rtol=1e-4, atol=1e-4, err_msg=f"output {i}")
