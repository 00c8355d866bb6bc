"""Compile-time weight layouts: constant weights packed into the panels the CPU kernels read.

``linear(x, W)``, ``matmul(x, B)`` with a constant 2-d B (GPT-2's Conv1D, ONNX MatMul
exports) and ``conv2d(x, W)`` (groups = 1) with a constant f32 weight become
``linear_packed(x, Wp)`` / ``conv2d_packed(x, Wp)``, where ``Wp = pack_panels(W)`` is
computed here, once, with the op's reference (constant folding): the kernels never
repack weights at run time. Anchors already inside fused groups (with their epilogues)
are rewritten in place; the group's unpacked weight input goes away with them.

The panel width depends on the target's vector width and on the GEMM's row count
(graphc.codegen.tiles.pick_panel: the register tile the kernel will use), so this
pass runs after the target-independent pipeline, from `graphc.compile`, for targets
scheduled by the CPU rules.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from graphc.codegen.tiles import conv_gemm_panel, conv_panel, pick_panel
from graphc.ir import Graph, Node, TensorType, Value
from graphc.ops.packed import conv_as_gemm
from graphc.ops.registry import get_op
from graphc.verify import verify

from .rewrite import RewriteBuilder, copy_node, map_nodes

CPU_TARGET_KINDS = ("x86", "arm")


@dataclass(frozen=True)
class Packing:
    op: str  # the packed op replacing the node
    array: np.ndarray  # the packed weight
    attrs: dict


def _rows(x: TensorType) -> int:
    return int(np.prod(x.shape[:-1], dtype=np.int64)) if x.rank > 1 else 1


def _pack(w: np.ndarray, panel: int) -> np.ndarray:
    return get_op("pack_panels").ref(w, panel=panel)


def _plan(node: Node, x: TensorType, w: np.ndarray, lanes: int, bits: int) -> Packing | None:
    """How to pack this node's constant weight `w` (x: its data input's type), or None."""
    if w.dtype != np.float32 or x.dtype != "f32":
        return None
    if node.op == "linear":
        n = w.shape[0]
        return Packing("linear_packed", _pack(w, pick_panel(_rows(x), n, lanes, bits)), {"n": n})
    if node.op == "matmul" and w.ndim == 2:
        n = w.shape[1]
        return Packing("linear_packed", _pack(np.ascontiguousarray(w.T), pick_panel(_rows(x), n, lanes, bits)), {"n": n})
    if node.op == "conv2d" and node.attrs["groups"] == 1:
        o = w.shape[0]
        attrs = {k: node.attrs[k] for k in ("stride", "pad", "dilation")}
        pixels = int(np.prod(node.outputs[0].shape[2:]))
        if conv_as_gemm(w.shape[2:], attrs["stride"], attrs["pad"], pixels):  # panels of the GEMM tile's rows
            panel = conv_gemm_panel(pixels, lanes, bits)
        else:  # panels of output-channel vectors
            panel = conv_panel(o, lanes)
        return Packing("conv2d_packed", _pack(w, panel), {"out_channels": o, **attrs})
    return None


def _packed_name(v: Value) -> str | None:
    return f"{v.name}.packed" if v.name else None


def pack_weights(graph: Graph, lanes: int, vector_bits: int) -> Graph:
    """The graph with every packable constant weight packed for `lanes`-wide vectors."""

    def visit(b: RewriteBuilder, node: Node, ins: list[Value]):
        if node.op == "fused":
            return _pack_fused(b, node, ins, lanes, vector_bits)
        if len(node.inputs) != 2 or not node.inputs[1].is_const:
            return None
        plan = _plan(node, node.inputs[0].type, node.inputs[1].node.data, lanes, vector_bits)
        if plan is None:
            return None
        wp = b.const(plan.array, name=_packed_name(node.inputs[1]))
        return b.emit(plan.op, [ins[0], wp], plan.attrs, loc=node.loc)

    return map_nodes(graph, visit)


def _pack_fused(b: RewriteBuilder, node: Node, ins: list[Value], lanes: int, bits: int):
    """A fused node whose body has packable anchors reading constant weights (group inputs)."""
    body = node.body
    outer = dict(zip(body.inputs, node.inputs))
    plans: dict[Node, Packing] = {}
    for bn in body.nodes:
        if len(bn.inputs) == 2 and bn.inputs[1] in outer and outer[bn.inputs[1]].is_const:
            plan = _plan(bn, bn.inputs[0].type, outer[bn.inputs[1]].node.data, lanes, bits)
            if plan is not None:
                plans[bn] = plan
    if not plans:
        return None
    # body inputs read only as the weights being packed go away with them (the unpacked weights)
    packed_slots = {bn.inputs[1] for bn in plans}
    still_read = {v for bn in body.nodes for k, v in enumerate(bn.inputs) if not (bn in plans and k == 1)}
    still_read |= set(body.outputs)
    nb = RewriteBuilder(body.name)
    outer_args: list[Value] = []
    for v, new_outer in zip(body.inputs, ins):
        if v in packed_slots and v not in still_read:
            continue
        nb.vmap[v] = nb.input(f"in{len(outer_args)}", v.type)
        outer_args.append(new_outer)
    with nb:
        for bn in body.nodes:
            plan = plans.get(bn)
            if plan is None:
                outs = copy_node(nb, bn, [nb.vmap[v] for v in bn.inputs])
            else:
                wv = nb.input(f"in{len(outer_args)}", TensorType.of(plan.array))
                outer_args.append(b.const(plan.array, name=_packed_name(outer[bn.inputs[1]])))
                outs = nb.emit(plan.op, [nb.vmap[bn.inputs[0]], wv], plan.attrs, loc=bn.loc)
            nb.vmap.update(zip(bn.outputs, outs))
    new_body = nb.build([nb.vmap[v] for v in body.outputs], body.output_names)
    return b.emit("fused", outer_args, node.attrs, body=new_body, loc=node.loc)


def layout_for_target(graph: Graph, target) -> Graph:
    """`pack_weights` for targets the CPU schedule rules compile; other graphs unchanged."""
    if target.kind not in CPU_TARGET_KINDS:
        return graph
    out = pack_weights(graph, target.vector_bits // 32, target.vector_bits)
    verify(out)
    return out
