"""ONNX frontend: ``from_onnx(path_or_model, input_shapes=None) -> graphc.ir.Graph``.

How it works:

1. Load the model with ``onnx`` (external data relative to the model file), inline
   local functions, check it with ``onnx.checker``.
2. Scan every node against the converter table and fail once, listing *all*
   unsupported op types (with domain, opset and node names).
3. Make graphc inputs (static shapes only; ``input_shapes`` fixes dynamic dims) and
   named constants for the initializers, then convert the nodes in order. Each ONNX
   op type has one converter function, registered with ``@converter("Conv")``; it gets
   a `NodeContext` (attributes with the ONNX schema's defaults, the opset of the
   node's domain, its inputs, which inputs are constants and their arrays) and returns
   the node's output tensor(s).

Ops are emitted into a `FoldingBuilder`: a graphc op whose inputs are all constants is
evaluated at once with the reference interpreter and becomes a constant, so
shape-computing subgraphs (Shape -> Gather -> Concat -> Reshape, Range,
ConstantOfShape) fold away at import time and later converters can read their values.

The converters themselves live in `graphc.frontends.onnx_ops`.
"""
from __future__ import annotations

import math
import os
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from .. import dtypes
from ..errors import FrontendError, GraphcError, UnsupportedOpError
from ..ir import Graph, GraphBuilder, TensorType, Value
from ..tensor import Tensor

DEFAULT_DOMAINS = ("", "ai.onnx")
MIN_OPSET = 7

# ONNX TensorProto.DataType -> graphc dtype (the others have no graphc equivalent)
_ONNX_DTYPES = {1: "f32", 10: "f16", 16: "bf16", 11: "f64", 7: "i64", 6: "i32", 3: "i8", 2: "u8", 9: "bool"}
_ONNX_DTYPE_NAMES = {
    0: "UNDEFINED", 1: "FLOAT", 2: "UINT8", 3: "INT8", 4: "UINT16", 5: "INT16", 6: "INT32", 7: "INT64", 8: "STRING",
    9: "BOOL", 10: "FLOAT16", 11: "DOUBLE", 12: "UINT32", 13: "UINT64", 14: "COMPLEX64", 15: "COMPLEX128", 16: "BFLOAT16",
    17: "FLOAT8E4M3FN", 18: "FLOAT8E4M3FNUZ", 19: "FLOAT8E5M2", 20: "FLOAT8E5M2FNUZ", 21: "UINT4", 22: "INT4",
    23: "FLOAT4E2M1", 24: "FLOAT8E8M0", 25: "UINT2", 26: "INT2",
}

# Folding a constant subgraph into one huge array is not worth it: leave big ones to the passes.
FOLD_MAX_ELEMENTS = 1 << 24


def onnx_dtype_name(code: int) -> str:
    return _ONNX_DTYPE_NAMES.get(code, f"type #{code}")


def graphc_dtype(code: int, what: str) -> str:
    """graphc dtype for an ONNX element type; `what` says where it was met for the error."""
    if code not in _ONNX_DTYPES:
        supported = ", ".join(onnx_dtype_name(c) for c in _ONNX_DTYPES)
        raise FrontendError(f"{what}: ONNX element type {onnx_dtype_name(code)} is not supported by graphc (supported: {supported})")
    return _ONNX_DTYPES[code]


# ---------------------------------------------------------------------------------------
# the converter table
# ---------------------------------------------------------------------------------------
Converter = Callable[["NodeContext"], Any]
CONVERTERS: dict[tuple[str, str], Converter] = {}


def converter(*op_types: str, domain: str = ""):
    """Register a function converting ONNX nodes of these op types (in `domain`)."""

    def register(fn: Converter) -> Converter:
        for op_type in op_types:
            key = (domain, op_type)
            if key in CONVERTERS:
                raise ValueError(f"ONNX converter for {op_type} registered twice")
            CONVERTERS[key] = fn
        return fn

    return register


def _norm_domain(domain: str) -> str:
    return "" if domain in DEFAULT_DOMAINS else domain


def supported_ops() -> list[str]:
    """ONNX op types (default domain) the importer converts."""
    _load_converters()
    return sorted(op for dom, op in CONVERTERS if dom == "")


def _load_converters() -> None:
    from . import onnx_ops  # noqa: F401  (registers the converters)


# ---------------------------------------------------------------------------------------
# constant folding while building
# ---------------------------------------------------------------------------------------
class FoldingBuilder(GraphBuilder):
    """A GraphBuilder that evaluates ops on constant inputs right away (reference interpreter).

    Float ops reading a named constant (a parameter: an initializer) are kept, so that
    parameters keep their names (``lift_params`` turns named constants into inputs);
    the fold_constants pass folds them later. Integer and bool results (shape arithmetic)
    and everything computed from unnamed constants fold here.
    """

    fold = True

    def emit(self, op, inputs, attrs=None, *, body=None, loc=None, output_types=None) -> list[Value]:
        outs = super().emit(op, inputs, attrs, body=body, loc=loc, output_types=output_types)
        node = self.nodes[-1]
        if not (self.fold and inputs and all(v.is_const for v in inputs)):
            return outs
        if sum(o.type.numel for o in outs) > FOLD_MAX_ELEMENTS:
            return outs
        if any(v.name for v in inputs) and any(dtypes.is_float(o.dtype) for o in outs):
            return outs
        from ..runtime.interpreter import eval_node

        arrays = eval_node(node, [v.node.data for v in inputs])
        self.nodes.pop()
        return [self.const(a) for a in arrays]


def constant_value(t: Tensor | Value) -> np.ndarray | None:
    """The value of a tensor computable from constants alone (evaluating kept nodes), else None."""
    v = t.value if isinstance(t, Tensor) else t
    memo: dict[Value, np.ndarray | None] = {}

    def value_of(v: Value) -> np.ndarray | None:
        if v.is_const:
            return v.node.data
        if v.node is None:
            return None  # a graph input
        if v not in memo:
            args = [value_of(i) for i in v.node.inputs]
            if any(a is None for a in args):
                memo[v] = None
            else:
                from ..runtime.interpreter import eval_node

                outs = eval_node(v.node, args)
                memo.update(zip(v.node.outputs, outs))
        return memo[v]

    return value_of(v)


# ---------------------------------------------------------------------------------------
# what a converter sees
# ---------------------------------------------------------------------------------------
_SCHEMA_DEFAULT: Any = object()


def attribute_value(attr, base_dir: str = "") -> Any:
    """Python value of an AttributeProto: strings decoded, tensors as numpy arrays."""
    from onnx import AttributeProto, helper

    value = helper.get_attribute_value(attr)
    if attr.type == AttributeProto.STRING:
        return value.decode("utf-8", "replace")
    if attr.type == AttributeProto.STRINGS:
        return [v.decode("utf-8", "replace") for v in value]
    if attr.type == AttributeProto.TENSOR:
        return tensor_to_array(value, f"attribute {attr.name!r}", base_dir)
    if attr.type == AttributeProto.TENSORS:
        return [tensor_to_array(v, f"attribute {attr.name!r}", base_dir) for v in value]
    if attr.type == AttributeProto.INTS:
        return [int(v) for v in value]
    if attr.type == AttributeProto.FLOATS:
        return [float(v) for v in value]
    return value


def tensor_to_array(tensor, what: str, base_dir: str = "") -> np.ndarray:
    """A TensorProto as a numpy array of a graphc dtype."""
    from onnx import numpy_helper

    graphc_dtype(tensor.data_type, what)
    try:
        array = numpy_helper.to_array(tensor, base_dir=base_dir)
    except Exception as e:  # truncated raw data, missing external file...
        raise FrontendError(f"{what}: cannot read tensor data ({type(e).__name__}: {e})") from None
    return np.asarray(array, order="C")  # (ascontiguousarray would turn 0-d into 1-d)


class NodeContext:
    """One ONNX node, as its converter sees it.

    ``ctx.attr(name)``: the attribute, or the ONNX schema's default for this opset.
    ``ctx.opset``: opset version of the node's domain.
    ``ctx.input(i)`` / ``ctx.has_input(i)``: inputs as graphc Tensors (missing optional
    inputs are absent). ``ctx.is_const(i)`` / ``ctx.const(i, what)``: constant inputs and
    their numpy arrays (``const`` fails naming node, op and input when not constant).
    ``ctx.op(name, *tensors, **attrs)``: emit a graphc op located at this node.
    """

    def __init__(self, importer: "Importer", node, index: int, inputs: Sequence[Tensor | None]):
        self.importer = importer
        self.node = node
        self.op_type: str = node.op_type
        self.domain: str = _norm_domain(node.domain)
        self.opset: int = importer.opsets.get(self.domain, 1)
        self.name: str = node.name or f"{node.op_type}#{index}"
        self.inputs: list[Tensor | None] = list(inputs)
        self.attrs: dict[str, Any] = {a.name: attribute_value(a, importer.base_dir) for a in node.attribute}
        self._schema = None

    # -- identification ---------------------------------------------------------------
    @property
    def loc(self) -> str:
        return self.name

    def describe(self) -> str:
        return f"node {self.name!r} ({self.op_type}, opset {self.opset})"

    def error(self, msg: str) -> FrontendError:
        return FrontendError(f"{self.importer.where}: {self.describe()}: {msg}")

    # -- attributes ---------------------------------------------------------------------
    @property
    def schema(self):
        if self._schema is None:
            from onnx import defs

            try:
                self._schema = defs.get_schema(self.op_type, self.opset, self.domain)
            except Exception:
                self._schema = False
        return self._schema or None

    def attr(self, name: str, default: Any = _SCHEMA_DEFAULT) -> Any:
        """Attribute value; if absent: `default` if given, else the schema's default (None if none)."""
        if name in self.attrs:
            return self.attrs[name]
        if default is not _SCHEMA_DEFAULT:
            return default
        schema = self.schema
        if schema is not None and name in schema.attributes:
            a = schema.attributes[name]
            if a.default_value.type != 0:  # UNDEFINED: no default
                return attribute_value(a.default_value)
            if a.required:
                raise self.error(f"missing required attribute {name!r}")
        return None

    def has_attr(self, name: str) -> bool:
        return name in self.attrs

    # -- inputs ---------------------------------------------------------------------------
    @property
    def num_inputs(self) -> int:
        return len(self.inputs)

    def has_input(self, i: int) -> bool:
        return i < len(self.inputs) and self.inputs[i] is not None

    def input_name(self, i: int) -> str:
        return self.node.input[i] if i < len(self.node.input) else f"#{i}"

    def input(self, i: int) -> Tensor:
        if not self.has_input(i):
            raise self.error(f"needs input {i}")
        return self.inputs[i]

    def is_const(self, i: int) -> bool:
        """Whether input i is known at import time (an initializer, or computed from constants only)."""
        return self.has_input(i) and constant_value(self.inputs[i]) is not None

    def const(self, i: int, what: str = "") -> np.ndarray:
        """The numpy value of input i, which must be known at import time."""
        value = constant_value(self.input(i))
        if value is None:
            label = f" ({what})" if what else ""
            raise self.error(
                f"input {i}{label} {self.input_name(i)!r} must be a constant (an initializer or computable from "
                f"constants and static shapes at import time), but it depends on graph inputs"
            )
        return value

    def ints(self, i: int, what: str = "") -> list[int]:
        return [int(v) for v in np.asarray(self.const(i, what)).reshape(-1)]

    # -- outputs --------------------------------------------------------------------------
    @property
    def num_outputs(self) -> int:
        return len(self.node.output)

    def output_used(self, i: int) -> bool:
        return i < len(self.node.output) and self.node.output[i] != "" and self.node.output[i] in self.importer.used_names

    def reject_used_outputs(self, first: int, why: str = "") -> None:
        for i in range(first, self.num_outputs):
            if self.output_used(i):
                raise self.error(f"output {i} ({self.node.output[i]!r}) is used, but graphc does not compute it{why}")

    # -- emitting -------------------------------------------------------------------------
    def op(self, name: str, *args, **attrs) -> Any:
        from .. import ops

        fn = getattr(ops, name, None)
        if fn is None:
            raise self.error(f"graphc op {name!r} is not available in this build")
        return fn(*args, _loc=self.loc, **attrs)

    def constant(self, array, dtype: str | None = None) -> Tensor:
        arr = np.asarray(array, dtype=dtypes.to_numpy(dtype) if dtype else None)
        return Tensor(self.importer.builder.const(arr))

    def scalar(self, value, like: Tensor) -> Tensor:
        """A 0-d constant with the dtype of `like`."""
        return self.constant(np.array(value, dtype=dtypes.to_numpy(like.dtype)))


# ---------------------------------------------------------------------------------------
# loading
# ---------------------------------------------------------------------------------------
def load_model(path_or_model) -> tuple[Any, str, str]:
    """(ModelProto, where-label for messages, base dir for external data)."""
    import onnx

    if isinstance(path_or_model, onnx.ModelProto):
        label = f"ONNX model {path_or_model.graph.name!r}" if path_or_model.graph.name else "ONNX model"
        return path_or_model, label, ""
    if isinstance(path_or_model, (bytes, bytearray)):
        model = _parse_bytes(bytes(path_or_model), "ONNX model bytes")
        return model, "ONNX model bytes", ""
    if not isinstance(path_or_model, (str, os.PathLike)):
        raise FrontendError(f"from_onnx takes a path or an onnx.ModelProto, not a {type(path_or_model).__name__}")
    path = os.fspath(path_or_model)
    if not os.path.exists(path):
        raise FrontendError(f"{path}: no such file")
    if os.path.isdir(path):
        raise FrontendError(f"{path}: is a directory, not an ONNX file")
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise FrontendError(f"{path}: cannot read ({e.strerror or e})") from None
    if not data:
        raise FrontendError(f"{path}: file is empty (0 bytes), not an ONNX model")
    model = _parse_bytes(data, path)
    base_dir = os.path.dirname(os.path.abspath(path))
    from onnx import external_data_helper

    try:
        external_data_helper.load_external_data_for_model(model, base_dir)  # a no-op without external data
    except Exception as e:
        raise FrontendError(f"{path}: cannot load external tensor data relative to {base_dir} ({type(e).__name__}: {e})") from None
    return model, path, base_dir


def _parse_bytes(data: bytes, label: str):
    import onnx

    model = onnx.ModelProto()
    try:
        model.ParseFromString(data)
    except Exception as e:  # google.protobuf DecodeError and friends
        raise FrontendError(
            f"{label}: not a valid ONNX file ({len(data)} bytes; protobuf parse failed: {e}); the file may be truncated or not ONNX"
        ) from None
    if not model.HasField("graph") and model.ir_version == 0:
        raise FrontendError(f"{label}: not an ONNX model (no graph and no IR version in {len(data)} bytes)")
    return model


def _check(model, where: str) -> None:
    import onnx

    # graph outputs without a shape field are invalid to the checker, but harmless (and common): graphc
    # infers every shape itself. Give them an empty (unknown) shape for the check only.
    shapeless = [o for o in model.graph.output if o.type.HasField("tensor_type") and not o.type.tensor_type.HasField("shape")]
    for o in shapeless:
        o.type.tensor_type.shape.SetInParent()
    try:
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise FrontendError(f"{where}: invalid ONNX model: {first}") from None
    except ValueError as e:  # e.g. a proto over 2 GB: skip the check rather than fail
        if "2GB" not in str(e) and "2 GB" not in str(e):
            raise FrontendError(f"{where}: invalid ONNX model: {e}") from None
    finally:
        for o in shapeless:
            o.type.tensor_type.ClearField("shape")


# ---------------------------------------------------------------------------------------
# the importer
# ---------------------------------------------------------------------------------------
class Importer:
    def __init__(self, model, where: str, base_dir: str, input_shapes: Mapping[str, Sequence[int]] | None):
        self.model = model
        self.where = where
        self.base_dir = base_dir
        self.input_shapes = {k: tuple(int(d) for d in v) for k, v in dict(input_shapes or {}).items()}
        self.opsets: dict[str, int] = {}
        self.builder = FoldingBuilder(_graph_name(model.graph.name))
        self.env: dict[str, Tensor] = {}
        self.used_names: set[str] = set()

    # -- entry ----------------------------------------------------------------------------
    def run(self) -> Graph:
        graph = self.model.graph
        self._read_opsets()
        self._check_supported()
        _check(self.model, self.where)
        self.used_names = {n for node in graph.node for n in node.input if n} | {o.name for o in graph.output}
        with self.builder:
            self._make_inputs()
            for index, node in enumerate(graph.node):
                self._convert(node, index)
        outputs, names = [], []
        for o in graph.output:
            if o.name not in self.env:
                raise FrontendError(f"{self.where}: graph output {o.name!r} is not produced by any node, input or initializer")
            t = self.env[o.name]
            self._check_output_type(o, t)
            outputs.append(t.value)
            names.append(o.name)
        if not outputs:
            raise FrontendError(f"{self.where}: the graph has no outputs")
        return self.builder.build(outputs, names)

    def _read_opsets(self) -> None:
        from onnx import defs

        for imp in self.model.opset_import:
            self.opsets[_norm_domain(imp.domain)] = int(imp.version)
        if "" not in self.opsets:
            if any(_norm_domain(n.domain) == "" for n in self.model.graph.node):
                raise FrontendError(f"{self.where}: the model imports no opset for the default ONNX domain")
            return
        v, newest = self.opsets[""], defs.onnx_opset_version()
        if not MIN_OPSET <= v <= newest:
            raise FrontendError(f"{self.where}: ONNX opset {v} is not supported (graphc imports opsets {MIN_OPSET} to {newest})")

    def _check_supported(self) -> None:
        """Fail once, listing every op type without a converter."""
        _load_converters()
        missing: dict[tuple[str, str], list[str]] = {}
        for index, node in enumerate(self.model.graph.node):
            domain = _norm_domain(node.domain)
            if (domain, node.op_type) not in CONVERTERS:
                missing.setdefault((domain, node.op_type), []).append(node.name or f"{node.op_type}#{index}")
        if not missing:
            return
        parts = []
        for (domain, op_type), names in missing.items():
            dom = domain or "ai.onnx"
            opset = self.opsets.get(domain)
            opset_s = f"opset {opset}" if opset is not None else "no opset imported"
            shown = ", ".join(names[:8]) + (f", ... ({len(names)} nodes)" if len(names) > 8 else "")
            parts.append(f"{op_type} ({dom} {opset_s}; nodes {shown})")
        n = len(missing)
        raise UnsupportedOpError(f"{self.where}: {n} unsupported ONNX op type{'s' if n != 1 else ''}: {', '.join(parts)}")

    # -- inputs and initializers --------------------------------------------------------
    def _make_inputs(self) -> None:
        graph = self.model.graph
        b = self.builder
        input_names = [i.name for i in graph.input]
        unknown = sorted(set(self.input_shapes) - set(input_names))
        if unknown:
            raise FrontendError(f"{self.where}: input_shapes names unknown input(s) {', '.join(unknown)}; the model's inputs are: {', '.join(input_names)}")
        for t in graph.initializer:
            if t.name in self.input_shapes:
                continue  # an initializer the caller wants as a real input
            self.env[t.name] = Tensor(b.const(tensor_to_array(t, f"{self.where}: initializer {t.name!r}", self.base_dir), name=t.name))
        for t in graph.sparse_initializer:
            name = t.values.name
            self.env[name] = Tensor(b.const(sparse_to_array(t, f"{self.where}: sparse initializer {name!r}", self.base_dir), name=name))
        for inp in graph.input:
            if inp.name in self.env and inp.name not in self.input_shapes:
                continue  # classic exporters list initializers as inputs too: they stay constants
            self.env[inp.name] = Tensor(b.input(inp.name, self._input_type(inp)))

    def _input_type(self, inp) -> TensorType:
        what = f"{self.where}: input {inp.name!r}"
        tt = inp.type
        if tt.WhichOneof("value") != "tensor_type":
            raise FrontendError(f"{what}: only tensor inputs are supported, got a {tt.WhichOneof('value') or 'untyped'} input")
        dtype = graphc_dtype(tt.tensor_type.elem_type, what)
        declared = None
        if tt.tensor_type.HasField("shape"):
            declared = [d.dim_value if d.WhichOneof("value") == "dim_value" else (d.dim_param or None) for d in tt.tensor_type.shape.dim]
        if inp.name in self.input_shapes:
            shape = self.input_shapes[inp.name]
            if declared is not None:
                if len(declared) != len(shape):
                    raise FrontendError(f"{what}: input_shapes gives rank {len(shape)} {list(shape)}, the model declares rank {len(declared)} {_fmt_dims(declared)}")
                for i, (d, s) in enumerate(zip(declared, shape)):
                    if isinstance(d, int) and d != s:
                        raise FrontendError(f"{what}: input_shapes gives dim {i} = {s}, the model fixes it to {d}")
            if any(s < 0 for s in shape):
                raise FrontendError(f"{what}: input_shapes has a negative dim {list(shape)}")
            return TensorType(dtype, shape)
        if declared is None:
            raise FrontendError(f"{what}: the model declares no shape; pass input_shapes={{{inp.name!r}: (...)}}")
        for i, d in enumerate(declared):
            if not isinstance(d, int):
                label = f"dim {i} ({d!r})" if d else f"dim {i} (unknown)"
                raise FrontendError(
                    f"{what}: {label} of shape {_fmt_dims(declared)} is dynamic; graphc needs static shapes: "
                    f"pass input_shapes={{{inp.name!r}: (...)}}"
                )
        return TensorType(dtype, tuple(declared))

    def _check_output_type(self, o, t: Tensor) -> None:
        tt = o.type
        if tt.WhichOneof("value") != "tensor_type":
            return
        what = f"{self.where}: graph output {o.name!r}"
        if tt.tensor_type.elem_type:
            declared = graphc_dtype(tt.tensor_type.elem_type, what)
            if declared != t.dtype:
                raise FrontendError(f"{what}: the model declares {declared}, the imported graph computes {t.dtype}")
        if tt.tensor_type.HasField("shape"):
            dims = tt.tensor_type.shape.dim
            ok = len(dims) == len(t.shape) and all(d.WhichOneof("value") != "dim_value" or d.dim_value == s for d, s in zip(dims, t.shape))
            if not ok:
                declared = [d.dim_value if d.WhichOneof("value") == "dim_value" else (d.dim_param or None) for d in dims]
                raise FrontendError(f"{what}: the model declares shape {_fmt_dims(declared)}, the imported graph computes {list(t.shape)}")

    # -- nodes ----------------------------------------------------------------------------
    def _convert(self, node, index: int) -> None:
        inputs: list[Tensor | None] = []
        for name in node.input:
            if name == "":
                inputs.append(None)
            elif name in self.env:
                inputs.append(self.env[name])
            else:
                label = node.name or f"{node.op_type}#{index}"
                raise FrontendError(f"{self.where}: node {label!r} ({node.op_type}) reads {name!r}, which nothing defines before it")
        while inputs and inputs[-1] is None:
            inputs.pop()  # trailing optional inputs left out
        ctx = NodeContext(self, node, index, inputs)
        fn = CONVERTERS[(ctx.domain, node.op_type)]
        try:
            result = fn(ctx)
        except FrontendError:
            raise
        except GraphcError as e:
            raise FrontendError(f"{self.where}: {ctx.describe()}: {e}") from e
        except (TypeError, ValueError, IndexError, KeyError, ZeroDivisionError) as e:
            raise FrontendError(f"{self.where}: {ctx.describe()}: cannot convert ({type(e).__name__}: {e})") from e
        outs = list(result) if isinstance(result, (tuple, list)) else [result]
        for i, name in enumerate(node.output):
            if name == "":
                continue
            if i >= len(outs) or outs[i] is None:
                if ctx.output_used(i):
                    raise ctx.error(f"output {i} ({name!r}) is used, but graphc does not compute it")
                continue
            t = outs[i]
            self.env[name] = t if isinstance(t, Tensor) else Tensor(t)


def _graph_name(name: str) -> str:
    import re

    name = re.sub(r"[^A-Za-z0-9_]", "_", name or "")
    return name if name and not name[0].isdigit() else f"onnx_{name}" if name else "onnx"


def _fmt_dims(dims) -> str:
    return "[" + ", ".join("?" if d is None else str(d) for d in dims) + "]"


def sparse_to_array(sparse, what: str, base_dir: str) -> np.ndarray:
    values = tensor_to_array(sparse.values, what, base_dir)
    indices = tensor_to_array(sparse.indices, what, base_dir).astype(np.int64)
    shape = tuple(int(d) for d in sparse.dims)
    dense = np.zeros(math.prod(shape), dtype=values.dtype)
    if indices.ndim == 2:  # [NNZ, rank] coordinates
        indices = np.ravel_multi_index(tuple(indices.T), shape) if indices.size else indices.reshape(-1)
    dense[indices.reshape(-1)] = values.reshape(-1)
    return dense.reshape(shape)


def from_onnx(path_or_model, input_shapes: Mapping[str, Sequence[int]] | None = None) -> Graph:
    """Import an ONNX model (a file path, an ``onnx.ModelProto`` or serialized bytes) as a graphc Graph.

    Graph inputs need static shapes; ``input_shapes={"name": (dims...)}`` fixes dynamic
    ones (and turns initializers listed as inputs into real inputs). Raises
    `UnsupportedOpError` listing every op type graphc cannot convert, `FrontendError`
    for unreadable or invalid models.
    """
    model, where, base_dir = load_model(path_or_model)
    if model.functions:
        try:
            import onnx.inliner

            model = onnx.inliner.inline_local_functions(model)
        except Exception as e:
            raise FrontendError(f"{where}: cannot inline the model's local functions ({type(e).__name__}: {e})") from None
    return Importer(model, where, base_dir, input_shapes).run()


__all__ = [
    "CONVERTERS",
    "FoldingBuilder",
    "NodeContext",
    "constant_value",
    "converter",
    "from_onnx",
    "graphc_dtype",
    "supported_ops",
]
