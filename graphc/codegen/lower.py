"""Lowering one kernel (a single op node or a fused group) to one TIR PrimFunc.

The kernel's graph inputs become TE placeholders; each op's TE lowering (from its
record) is applied in order, so a fused group composes into one TE computation
and one PrimFunc. Scalar constants are folded in as immediates rather than passed
as arguments (the vectorizer then sees a broadcast constant, not a load).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from tvm import te, tirx

from .. import dtypes
from ..errors import CompileError
from ..ir import Graph, Node, Value
from ..ops.registry import get_op
from .policy import is_inline_const


@dataclass
class Kernel:
    """A PrimFunc plus which graph values it reads (in argument order) and writes."""

    func: tirx.PrimFunc
    args: list[Value]  # graph values passed as inputs, in PrimFunc argument order
    outputs: list[Value]  # graph values the kernel writes, in PrimFunc argument order
    label: str  # e.g. "conv2d" or "fused[conv_bias_relu_pool]", for messages and names
    anchors: list[str] = field(default_factory=list)


def _inline_const(value: Value) -> te.Tensor:
    arr = value.node.data
    scalar = arr.reshape(-1)[0].item()
    dtype = dtypes.to_tvm(value.dtype)
    return te.compute(tuple(arr.shape), lambda *i: tirx.const(scalar, dtype), name="const")


def _is_inline_const(v: Value) -> bool:
    return v.is_const and is_inline_const(v.node.data)


def _lower_body(body: Graph, env: dict[Value, te.Tensor], where: str) -> None:
    for node in body.nodes:
        if node.op == "const":
            if not is_inline_const(node.data):
                raise CompileError(f"{where}: constant {node.outputs[0].type} inside a fused body must be hoisted to an input")
            env[node.outputs[0]] = _inline_const(node.outputs[0])
            continue
        if node.op == "fused":
            sub_env = {bv: env[v] for bv, v in zip(node.body.inputs, node.inputs)}
            _lower_body(node.body, sub_env, where)
            for o, bo in zip(node.outputs, node.body.outputs):
                env[o] = sub_env[bo]
            continue
        record = get_op(node.op)
        try:
            result = record.lower(*[env[v] for v in node.inputs], **node.attrs)
        except Exception as e:  # a lowering failure is a graphc bug or an unsupported case: name the node
            raise CompileError(f"{where}: lowering {node.describe()} to TVM failed: {type(e).__name__}: {e}") from e
        outs = list(result) if isinstance(result, (tuple, list)) else [result]
        for o, t in zip(node.outputs, outs):
            if tuple(int(d) for d in t.shape) != o.shape or dtypes.from_tvm(str(t.dtype)) != o.dtype:
                raise CompileError(
                    f"{where}: lowering of {node.describe()} produced {t.dtype}{list(t.shape)}, expected {o.type}"
                )
            env[o] = t


def lower_kernel(node: Node, name: str) -> Kernel:
    """One graph node (op or fused group) -> one PrimFunc named `name`."""
    where = f"kernel {name} ({node.describe()})"
    env: dict[Value, te.Tensor] = {}
    args: list[Value] = []
    placeholders: list[te.Tensor] = []
    if node.op == "fused":
        body = node.body
        inner = list(zip(body.inputs, node.inputs))
        outer_outputs = list(node.outputs)
        inner_outputs = list(body.outputs)
    else:
        body = Graph(node.op, [], [node], node.outputs)
        inner = [(v, v) for v in node.inputs]
        outer_outputs = inner_outputs = list(node.outputs)
    seen: dict[Value, te.Tensor] = {}
    for i, (inner_v, outer_v) in enumerate(inner):
        if _is_inline_const(outer_v):
            env[inner_v] = _inline_const(outer_v)
            continue
        if outer_v in seen:  # the same value passed twice: one argument
            env[inner_v] = seen[outer_v]
            continue
        ph = te.placeholder(outer_v.shape, dtypes.to_tvm(outer_v.dtype), name=f"in{len(placeholders)}")
        seen[outer_v] = ph
        env[inner_v] = ph
        placeholders.append(ph)
        args.append(outer_v)
    _lower_body(body, env, where)
    outs = [env[v] for v in inner_outputs]
    # an output that is just an input (or another output) still needs its own buffer
    fixed = []
    for t in outs:
        if any(t.same_as(p) for p in placeholders) or any(t.same_as(f) for f in fixed) or t.op.name == "const":
            t = te.compute(t.shape, lambda *i, t=t: t(*i), name="copy")
        fixed.append(t)
    try:
        func = te.create_prim_func(placeholders + fixed)
    except Exception as e:
        raise CompileError(f"{where}: building the TIR function failed: {e}") from e
    func = func.with_attr("global_symbol", name)
    anchors = [n.op for n in body.nodes if n.op != "const" and get_op_fusion(n) == "anchor"]
    label = f"fused[{node.kind}]" if node.op == "fused" else node.op
    return Kernel(func, args, outer_outputs, label, anchors)


def get_op_fusion(node: Node) -> str:
    if node.op == "fused":
        return "fused"
    return get_op(node.op).fusion


def constant_value(v: Value) -> np.ndarray | None:
    return v.node.data if v.is_const else None
