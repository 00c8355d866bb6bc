"""graphc as an ONNX backend (``onnx.backend.base.Backend``), for the ONNX backend test suite and ONNX tooling.

    import graphc.onnx_backend as backend
    rep = backend.prepare(model, "CPU")     # import + checks now; compiles for x86 on first run
    outputs = rep.run([x, shape])          # numpy arrays, in the model's output order

`prepare` wraps the model in a `graphc.SpecializingModel`, so inputs that decide
shapes (a Reshape's ``shape``, TopK's ``k``...) may be graph inputs, and dynamic
input dims are fine: each new combination of input shapes and shape-deciding values
compiles (and caches) one specialization.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
from onnx.backend.base import Backend, BackendRep

from .specialize import SpecializingModel


class GraphcBackendRep(BackendRep):
    """A prepared model: `run(inputs)` takes a list (the model's non-initializer inputs in order) or a dict by name."""

    def __init__(self, model: SpecializingModel):
        self.model = model

    def run(self, inputs: Any, **kwargs: Any) -> tuple[np.ndarray, ...]:
        if isinstance(inputs, Mapping):
            return tuple(self.model.run(**inputs))
        if isinstance(inputs, np.ndarray):  # a single input
            inputs = [inputs]
        return tuple(self.model.run(*inputs))


class GraphcBackend(Backend):
    """Compiles for the host CPU (x86) through graphc; `device` must be CPU."""

    target = "x86"

    @classmethod
    def prepare(cls, model, device: str = "CPU", **kwargs: Any) -> GraphcBackendRep:
        """`kwargs` go to `graphc.compile` (``opt_level``...), plus ``max_cache`` for the specializations."""
        cls._check_device(device)
        return GraphcBackendRep(SpecializingModel(model, target=kwargs.pop("target", cls.target), **kwargs))

    @classmethod
    def run_model(cls, model, inputs: Any, device: str = "CPU", **kwargs: Any) -> tuple[np.ndarray, ...]:
        return cls.prepare(model, device, **kwargs).run(inputs)

    @classmethod
    def run_node(
        cls, node, inputs: Any, device: str = "CPU", outputs_info: Sequence[tuple[Any, tuple]] | None = None, **kwargs: Any
    ) -> tuple[np.ndarray, ...]:
        """Run one NodeProto on numpy inputs (a list in the node's input order, or a dict by input name).

        ``opset_version`` (kwarg) selects the default-domain opset (default: the newest the installed onnx knows)."""
        from onnx import defs, helper

        opset = int(kwargs.pop("opset_version", defs.onnx_opset_version()))
        names = [n for n in node.input if n]
        arrays = dict(inputs) if isinstance(inputs, Mapping) else dict(zip(names, inputs))
        graph_inputs = [helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(np.asarray(a).dtype), np.shape(a)) for n, a in arrays.items()]
        graph_outputs = []
        for i, name in enumerate(o for o in node.output if o):
            if outputs_info is not None and i < len(outputs_info):
                dtype, shape = outputs_info[i]
                graph_outputs.append(helper.make_tensor_value_info(name, helper.np_dtype_to_tensor_dtype(np.dtype(dtype)), shape))
            else:
                graph_outputs.append(helper.make_empty_tensor_value_info(name))
        graph = helper.make_graph([node], f"{node.op_type.lower()}_node", graph_inputs, graph_outputs)
        opsets = [helper.make_opsetid("", opset)]
        if node.domain not in ("", "ai.onnx"):
            opsets.append(helper.make_opsetid(node.domain, 1))
        model = helper.make_model(graph, opset_imports=opsets)
        if outputs_info is None:  # ONNX wants typed outputs: let its shape inference type them
            from onnx import shape_inference

            model = shape_inference.infer_shapes(model)
        return cls.prepare(model, device, **kwargs).run(arrays)

    @classmethod
    def supports_device(cls, device: str) -> bool:
        return str(device).upper().split(":")[0] == "CPU"

    @classmethod
    def _check_device(cls, device: str) -> None:
        if not cls.supports_device(device):
            from .errors import TargetError

            raise TargetError(f"the graphc ONNX backend runs on CPU only (x86), not {device!r}")


prepare = GraphcBackend.prepare
run_model = GraphcBackend.run_model
run_node = GraphcBackend.run_node
supports_device = GraphcBackend.supports_device

__all__ = ["GraphcBackend", "GraphcBackendRep", "prepare", "run_model", "run_node", "supports_device"]
