"""Hand-scheduled kernel templates for fused groups that TE cannot express well
(flash attention's online softmax), one module per kernel kind and target.

`template_kernel(node, target)` returns a ready (already scheduled) PrimFunc for a
fused node when a template applies, with a note saying which, or None so codegen
lowers the group through TE and the generic schedule rules.
"""
from __future__ import annotations

import math

from ...ir import Node
from ...targets import Target


def _attention_form(node: Node):
    """(sdpa node) if the body is exactly sdpa(in0, transpose_last2(in1), in2[, in3]), f32, no softcap."""
    body = node.body
    compute = [n for n in body.nodes if n.op != "const"]
    if len(compute) != 2 or [n.op for n in compute] != ["transpose", "scaled_dot_product_attention"]:
        return None
    tr, sdpa = compute
    ins = body.inputs
    perm = tr.attrs["perm"]
    rank = len(perm)
    swap = tuple(range(rank - 2)) + (rank - 1, rank - 2)
    if tr.inputs[0] is not ins[1] or tuple(perm) != swap:
        return None
    if sdpa.inputs[0] is not ins[0] or sdpa.inputs[1] is not tr.outputs[0] or sdpa.inputs[2] is not ins[2]:
        return None
    if len(sdpa.inputs) == 4 and sdpa.inputs[3] is not ins[3]:
        return None
    if sdpa.attrs["softcap"] or any(v.dtype != "f32" for v in ins[:3]) or body.outputs[0] is not sdpa.outputs[0]:
        return None
    if len(sdpa.inputs) == 4 and ins[3].dtype not in ("f32", "bool"):
        return None
    return sdpa


def template_kernel(node: Node, target: Target):
    """(PrimFunc, note) for a fused node a template handles, else None."""
    if node.op == "fused" and node.kind == "attention_backward":  # attention backward: flash, CPU
        from .attention_backward_cpu import attention_backward_template

        return attention_backward_template(node, target)
    if node.op != "fused" or node.kind != "attention" or target.kind not in ("x86", "arm", "cuda"):
        return None
    sdpa = _attention_form(node)
    if sdpa is None:
        return None
    from .attention_cpu import AttentionShapes, flash_attention_cpu

    q, kt, v, *mask = node.inputs
    scale = sdpa.attrs["scale"] if sdpa.attrs["scale"] is not None else 1.0 / math.sqrt(q.shape[-1])
    shapes = AttentionShapes(q.shape, kt.shape, v.shape, mask[0].shape if mask else None, mask[0].dtype if mask else None,
                             node.outputs[0].shape)
    if target.kind == "cuda":
        from .attention_cuda import flash_attention_cuda

        func = flash_attention_cuda(shapes, float(scale), bool(sdpa.attrs["causal"]))
        return None if func is None else (func, "attention: flash, CUDA (K/V tiles in shared memory, online softmax in registers)")
    func = flash_attention_cpu(shapes, float(scale), bool(sdpa.attrs["causal"]), lanes=target.vector_bits // 32)
    return func, "attention: flash (online softmax)"
