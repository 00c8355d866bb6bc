"""CUDA codegen without a GPU: every op sample and every test model compiles for sm_80 and
sm_90 through graphc's GPU schedules, TVM's CUDA codegen and nvcc, with the fused kernels
(flash attention, conv-bias-relu-pool) graphc's own, visible in the generated CUDA source.

Numerics that need no GPU are checked too: the flash-attention template built with
``emulate=True`` (thread loops serial, the same program) runs on the CPU against numpy.
Running the kernels on a GPU is scripts/gpu/run_on_gpu.py's job.
"""
from __future__ import annotations

import math
import re

import numpy as np
import pytest
import tvm
import tvm_ffi
from tvm import tirx

import graphc
from graphc.codegen.cuda_build import compile_fatbin, cuda_sources
from graphc.codegen.module import build_relax_module
from graphc.errors import TargetError
from graphc.targets import resolve
from tests.codegen.attention_cases import flash_attention_cases
from tests.conftest import assert_close
from tests.ops.test_registry import cases, one_node_graph, samples_of

ARCHS = ["sm_80", "sm_90"]
FATBIN_MAGIC = b"\x50\xed\x55\xba"  # the header of an nvcc fatbin


def _kernel_source(source: str, name: str) -> str:
    """The text of __global__ function `name`_kernel in a CUDA source."""
    m = re.search(r'extern "C" __global__ void (?:__launch_bounds__\(\d+\) )?' + name + r"_kernel\([^)]*\) \{", source)
    assert m, f"no kernel {name} in the CUDA source"
    depth, i = 1, m.end()
    while depth:
        depth += {"{": 1, "}": -1}.get(source[i], 0)
        i += 1
    return source[m.start() : i]


# ---------------------------------------------------------------------------------------
# every op sample: all kernels deduplicated into one module, one nvcc run per arch
# ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def op_kernels():
    """(name -> scheduled PrimFunc for every distinct kernel of every op sample, [(op, sample index,
    kernel name) for every sample compiled to one kernel]), scheduled for cuda at -O0."""
    target = resolve("cuda", arch="sm_90")
    funcs, names, single = {}, {}, []
    for param in cases():
        op, idx = param.values
        sample = samples_of(op)[idx]
        build = build_relax_module(one_node_graph(op, sample), target)
        prims = [(gv.name_hint, f) for gv, f in build.mod.functions.items() if isinstance(f, tirx.PrimFunc)]
        for gv_name, f in prims:
            body = f.without_attr("global_symbol")
            key = tvm_ffi.structural_hash(body)
            if key not in names:
                names[key] = f"{op}_{idx}_{gv_name}".replace(".", "_")
                funcs[names[key]] = f
            if len(prims) == 1:  # (view ops compile to no kernel: Relax reshapes)
                single.append((op, idx, names[key]))
    return funcs, single


@pytest.mark.slow
def test_every_op_kernel_for_cuda(op_kernels):
    """One test (the kernels are scheduled once per process, ~30 s): every distinct kernel is bound
    to blocks and threads, its numerics on the CPU with the thread loops serialized match the
    reference, and the module of all of them compiles with nvcc for sm_80 and sm_90."""
    funcs, single = op_kernels
    assert len(funcs) > 300  # every op, deduplicated
    _check_bound(funcs)
    _check_emulated_numerics(funcs, single)
    for arch in ARCHS:
        _check_nvcc(funcs, arch)


def _check_bound(funcs):
    unbound = []
    for name, f in funcs.items():
        text = f.script()
        if '"blockIdx.x"' not in text or '"threadIdx.x"' not in text:
            if not _is_empty_output(f):  # an empty output launches nothing
                unbound.append(name)
    assert not unbound, f"kernels not bound to blocks and threads: {unbound}"


def _check_emulated_numerics(funcs, single):
    """The CUDA-scheduled kernels, thread loops serialized (graphc.testing.gpu_emulation), on the CPU."""
    from graphc.testing.gpu_emulation import serialize

    assert len(single) > 500
    used = sorted({k for _, _, k in single})
    lib = tirx.build(tvm.IRModule({k: serialize(funcs[k]).with_attr("global_symbol", k) for k in used}), resolve("x86").tvm_target())
    failures = []
    for op, idx, k in single:
        sample = samples_of(op)[idx]
        g = one_node_graph(op, sample)
        expected = graphc.run_graph(g, *sample.inputs)
        outs = [tvm.runtime.tensor(np.zeros(v.shape, v.type.np_dtype)) for v in g.outputs]
        lib[k](*[tvm.runtime.tensor(np.asarray(a)) for a in sample.inputs], *outs)
        for i, (o, e) in enumerate(zip(outs, expected)):
            try:
                assert_close(o.numpy(), np.asarray(e), rtol=sample.rtol, atol=sample.atol, what=f"{op}-{idx} output {i}")
            except AssertionError as err:
                failures.append(str(err)[:300])
    assert not failures, "\n".join(failures)


def _check_nvcc(funcs, arch):
    mod = tvm.IRModule({name: f.with_attr("global_symbol", name) for name, f in funcs.items()})
    lib = tirx.build(mod, resolve("cuda", arch=arch).tvm_target())
    (source,) = cuda_sources(lib)
    missing = [name for name, f in funcs.items() if not _is_empty_output(f) and f"{name}_kernel(" not in source]
    assert not missing, f"no CUDA kernel generated for {missing}"
    assert compile_fatbin(source, arch)[:4] == FATBIN_MAGIC, arch


def _is_empty_output(func) -> bool:
    return int(np.prod([int(d) for d in func.params[-1].shape])) == 0


# ---------------------------------------------------------------------------------------
# the test models, through graphc.compile (relax.build + nvcc) and the artifact export
# ---------------------------------------------------------------------------------------
def _seed(name):
    from graphc.examples import seeds

    if name == "cnn":
        fn, shape = seeds.graphc_cnn(seeds.state_dict_numpy(seeds.torch_cnn(0))), seeds.CNN_INPUT
    else:
        fn, shape = seeds.graphc_mlp(seeds.state_dict_numpy(seeds.torch_mlp(0))), seeds.MLP_INPUT
    return graphc.trace(fn, seeds.random_input(shape))


def _attention_block():
    from graphc.examples import attention

    module = attention.torch_attention(heads=4, head_dim=32)
    return graphc.from_torch(module, (attention.attention_input(seq=80, heads=4, head_dim=32),))


def _hf(name):
    from graphc.examples import hf_models

    module, inputs = hf_models.build(name, small=True)
    return graphc.from_torch(module, tuple(inputs.values()))


MODELS = {
    "cnn": lambda: _seed("cnn"),
    "mlp": lambda: _seed("mlp"),
    "attention": _attention_block,
    "bert": lambda: _hf("bert"),
    "gpt2": lambda: _hf("gpt2"),
    "resnet": lambda: _hf("resnet"),
}
# the fused kernels each model must have, with the start of their schedule note
EXPECTED = {
    "cnn": {"fused[conv_bias_relu_pool]": "conv2d+pool:", "fused[dense_epilogue]": "dense: tiled"},
    "mlp": {"fused[dense_epilogue]": "dense: tiled"},
    "attention": {"fused[attention]": "attention: flash, CUDA", "fused[dense_epilogue]": "dense: tiled"},
    "bert": {"fused[attention]": "attention: flash, CUDA", "fused[dense_epilogue]": "dense: tiled"},
    "gpt2": {"fused[attention]": "attention: flash, CUDA", "fused[matmul_epilogue]": "matmul: tiled"},
    "resnet": {"fused[conv_epilogue]": "conv2d: direct"},
}
_GRAPHS: dict = {}


def _graph(name):
    if name not in _GRAPHS:
        _GRAPHS[name] = MODELS[name]()
    return _GRAPHS[name]


def _params(name):
    heavy = name in ("bert", "gpt2", "resnet")
    return [pytest.param(name, arch, marks=[pytest.mark.slow] if heavy else []) for arch in ARCHS]


@pytest.mark.parametrize("name,arch", [p for n in MODELS for p in _params(n)])
def test_model_compiles_for_cuda_with_graphcs_fused_kernels(name, arch):
    compiled = graphc.compile(_graph(name), target=resolve("cuda", arch=arch), log=lambda *a: None)
    kernels = compiled.build.kernels
    (source,) = cuda_sources(compiled.executable.mod)
    for k in kernels:  # every kernel is in the CUDA source, its work spread over threads
        assert "threadIdx.x" in _kernel_source(source, k.name), k.name
    for label, note in EXPECTED[name].items():
        mine = [k for k in kernels if k.label == label and any(n.startswith(note) for n in k.notes)]
        assert mine, f"{name}: no {label} kernel scheduled as {note!r}: {[(k.label, k.notes) for k in kernels]}"
        for k in mine:  # (a one-row dense, BERT's pooler, is a matrix-vector product: a cross-thread reduction)
            assert "__shared__" in _kernel_source(source, k.name), f"{k.name} uses no shared memory"
    art = compiled.artifact()  # the export: nvcc's fatbins replace the CUDA source
    assert art.target["kind"] == "cuda" and art.target["arch"] == arch
    assert FATBIN_MAGIC in art.lib and b"__global__" not in art.lib


def test_conv_pool_kernel_writes_only_the_pooled_output():
    g = _graph("cnn")
    compiled = graphc.compile(g, target=resolve("cuda", arch="sm_80"), log=lambda *a: None)
    (source,) = cuda_sources(compiled.executable.mod)
    convs = [k for k in compiled.build.kernels if k.label == "fused[conv_bias_relu_pool]"]
    assert len(convs) == 2
    for k in convs:
        text = _kernel_source(source, k.name)
        # x, weight, bias, pooled output: no full-resolution activation buffer is passed in
        assert text.split("{")[0].count("float* __restrict__") == 4, text.split("{")[0]
        assert re.search(r"__shared__ (alignas\(\d+\) )?float \w+\[\d+\]", text), "the conv tile is not in shared memory"
        assert "__syncthreads()" in text  # conv tile complete before the pooling reads it
        assert "max(" in text  # the max pool, in the same kernel


def test_attention_kernel_never_materializes_the_scores():
    g = _graph("attention")
    compiled = graphc.compile(g, target=resolve("cuda", arch="sm_90"), log=lambda *a: None)
    (source,) = cuda_sources(compiled.executable.mod)
    (k,) = [k for k in compiled.build.kernels if k.label == "fused[attention]"]
    text = _kernel_source(source, k.name)
    assert text.split("{")[0].count("float* __restrict__") == 4  # q, kT, v, out: no score buffer
    shared = re.findall(r"__shared__ (?:alignas\(\d+\) )?float \w+\[(\d+)\]", text)
    assert len(shared) == 2 and all(int(n) <= 16 * 32 for n in shared), shared  # a K and a V tile
    local = [int(n) for n in re.findall(r"^\s+(?:alignas\(\d+\) )?float \w+\[(\d+)\];", text, re.M)]
    assert local and max(local) <= 32, local  # per-thread registers: a q row, an accumulator row, tile scores
    assert text.count("__syncthreads()") == 2  # tiles loaded before use, used before overwritten


# ---------------------------------------------------------------------------------------
# whole models scheduled for CUDA, run on the CPU with their thread loops serialized
# ---------------------------------------------------------------------------------------
def _residual_block():
    """conv + bias + residual add + relu (a conv_epilogue), a strided conv and a 1x1 conv: ResNet's
    kernels at a size the emulation runs in seconds (the full ResNet takes a minute)."""
    rng = np.random.default_rng(0)
    w = [graphc.param(f"w{i}", (rng.standard_normal(s) * 0.2).astype(np.float32)) for i, s in
         enumerate([(8, 8, 3, 3), (16, 8, 3, 3), (16, 16, 1, 1)])]
    b = [graphc.param(f"b{i}", rng.standard_normal(c).astype(np.float32)) for i, c in enumerate([8, 16, 16])]

    def block(x):
        from graphc import nn as gnn

        y = gnn.relu(gnn.conv2d(x, w[0], b[0], padding=1) + x)
        y = gnn.relu(gnn.conv2d(y, w[1], b[1], stride=2, padding=1))
        return gnn.conv2d(y, w[2], b[2])

    return graphc.trace(block, rng.standard_normal((2, 8, 14, 14)).astype(np.float32))


def _random_inputs(graph):
    rng = np.random.default_rng(0)
    out = []
    for v in graph.inputs:
        if v.dtype == "f32":
            out.append(rng.standard_normal(v.shape).astype(np.float32))
        elif "mask" in v.name:
            out.append(np.ones(v.shape, v.type.np_dtype))
        else:  # token ids
            out.append(rng.integers(0, 100, v.shape).astype(v.type.np_dtype))
    return out


@pytest.mark.parametrize("name", ["mlp", "cnn", "attention", "residual", pytest.param("bert", marks=pytest.mark.slow),
                                  pytest.param("gpt2", marks=pytest.mark.slow)])
def test_model_scheduled_for_cuda_matches_the_reference_emulated(name):
    from tvm import relax

    from graphc.passes.pipeline import optimize
    from graphc.testing.gpu_emulation import emulated_module

    source = _residual_block() if name == "residual" else _graph(name)
    graph, _ = optimize(source, 2, log=lambda *a: None)
    build = build_relax_module(graph, resolve("cuda", arch="sm_90"))
    if name == "residual":
        assert [k.label for k in build.kernels].count("fused[conv_epilogue]") == 3
        assert all(n.startswith("conv2d: direct") for k in build.kernels for n in k.notes), [k.notes for k in build.kernels]
    vm = relax.VirtualMachine(relax.build(emulated_module(build), resolve("x86").tvm_target()), tvm.cpu())
    inputs = _random_inputs(graph)
    actual = vm["main"](*[tvm.runtime.tensor(a) for a in inputs], *[tvm.runtime.tensor(p) for p in build.param_values])
    for i, (a, e) in enumerate(zip(actual, graphc.run_graph(source, *inputs))):
        assert_close(a.numpy(), e, rtol=1e-4, atol=1e-4, what=f"{name} output {i}")


# ---------------------------------------------------------------------------------------
# the flash-attention template's numerics, emulated on the CPU
# ---------------------------------------------------------------------------------------
def _emulated_attention(q, k, v, mask, scale, causal):
    from graphc.codegen.kernels.attention_cpu import AttentionShapes
    from graphc.codegen.kernels.attention_cuda import flash_attention_cuda
    from graphc.ops.registry import REGISTRY

    expected = REGISTRY["scaled_dot_product_attention"].ref(q, k, v, *mask, scale=scale, causal=causal, softcap=0.0)
    kt = np.ascontiguousarray(np.swapaxes(k, -1, -2))
    sh = AttentionShapes(q.shape, kt.shape, v.shape, mask[0].shape if mask else None,
                         ("bool" if mask[0].dtype == bool else "f32") if mask else None, expected.shape)
    func = flash_attention_cuda(sh, scale if scale is not None else 1 / math.sqrt(q.shape[-1]), causal, emulate=True)
    lib = tirx.build(tvm.IRModule({"main": func.with_attr("global_symbol", "main")}), resolve("x86").tvm_target())
    dev = tvm.cpu()
    out = tvm.runtime.tensor(np.zeros(expected.shape, np.float32), dev)
    lib["main"](*[tvm.runtime.tensor(a, dev) for a in (q, kt, v, *mask)], out)
    return out.numpy(), expected


@pytest.mark.parametrize("inputs,scale,causal", list(flash_attention_cases()))
def test_flash_attention_cuda_template_numerics_emulated(inputs, scale, causal):
    q, k, v, *mask = inputs
    actual, expected = _emulated_attention(q, k, v, mask, scale, causal)
    np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=2e-6)


# ---------------------------------------------------------------------------------------
# toolchain and device errors
# ---------------------------------------------------------------------------------------
def test_missing_nvcc_says_what_to_install(monkeypatch):
    import graphc.targets as targets

    monkeypatch.delenv(targets.NVCC_ENV, raising=False)
    monkeypatch.setattr(targets.os.path, "exists", lambda p: False)
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(TargetError, match="nvcc, which is not installed: install the NVIDIA CUDA Toolkit"):
        resolve("cuda", arch="sm_80")


def test_unknown_arch_lists_the_supported_ones():
    with pytest.raises(TargetError, match="sm_80, sm_86, sm_89, sm_90"):
        resolve("cuda", arch="sm_70")


def _has_cuda_device() -> bool:
    from graphc.runtime.devices import check_cuda_device

    try:
        check_cuda_device("sm_80")
        return True
    except TargetError:
        return False


@pytest.mark.skipif(_has_cuda_device(), reason="this machine has a CUDA GPU: the artifact would load")
def test_cuda_artifact_without_a_gpu_is_a_clear_error(tmp_path):
    compiled = graphc.compile(_graph("mlp"), target=resolve("cuda", arch="sm_80"), log=lambda *a: None)
    path = compiled.save(str(tmp_path / "mlp.gca"))
    with pytest.raises(TargetError, match="NVIDIA GPU|no CUDA device"):
        graphc.runtime.load(path)


@pytest.mark.skipif(_has_cuda_device(), reason="this machine has a CUDA GPU: the artifact would run")
def test_cli_compiles_onnx_for_cuda_and_run_says_there_is_no_gpu(tmp_path, capsys):
    from graphc.cli import main
    from graphc.examples import seeds

    x = seeds.random_input(seeds.MLP_INPUT, seed=3)
    path = seeds.export_onnx(seeds.torch_mlp(seed=0), x, str(tmp_path / "mlp.onnx"))
    art = str(tmp_path / "mlp.gca")
    assert main(["compile", path, "--target", "cuda", "--arch", "sm_80", "-o", art]) == 0
    assert "for cuda (sm_80" in capsys.readouterr().out
    assert main(["inspect", art]) == 0
    assert "cuda" in capsys.readouterr().out
    np.save(tmp_path / "x.npy", x)
    assert main(["run", art, "--input", f"x={tmp_path / 'x.npy'}", "--device", "cuda:0"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("graphc: error:") and "NVIDIA" in err and "Traceback" not in err
