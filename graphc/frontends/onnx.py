"""ONNX frontend: ``from_onnx(path_or_model, input_shapes=None, input_values=None) -> graphc.ir.Graph``.

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

Subgraph attributes (If / Loop / Scan bodies) are converted inline, into the same graph,
by their op's converter through `NodeContext.subgraph`, with ONNX's lexical scoping.

Inputs that must be known at import time (a Reshape's shape...) but come from graph
inputs raise `NonConstantInputError` naming those inputs; ``input_values`` binds graph
inputs to values (a specialization), which `graphc.SpecializingModel` does automatically.
value_info entries are checked against graphc's types as the nodes are converted.

The converters themselves live in `graphc.frontends.onnx_ops`.
"""
from __future__ import annotations

import math
import os
from collections import ChainMap
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from .. import dtypes
from ..errors import FrontendError, GraphcError, NonConstantInputError, UnsupportedOpError
from ..ir import Graph, GraphBuilder, TensorType, Value, current_builder
from ..tensor import Tensor

DEFAULT_DOMAINS = ("", "ai.onnx")
MIN_OPSET = 1

# ONNX TensorProto.DataType -> graphc dtype (the others have no graphc equivalent)
_ONNX_DTYPES = {
    1: "f32", 10: "f16", 16: "bf16", 11: "f64", 7: "i64", 6: "i32", 5: "i16", 3: "i8",
    13: "u64", 12: "u32", 4: "u16", 2: "u8", 9: "bool",
}
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
# (domain, op type) graphc does not convert on purpose -> why; the unsupported-op error says it
UNSUPPORTED_REASONS: dict[tuple[str, str], str] = {}


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


def graph_inputs_of(t: Tensor | Value) -> list[str]:
    """Names of the graph inputs a tensor's value depends on (in graph input order)."""
    seen: set[Value] = set()
    found: set[str] = set()
    stack = [t.value if isinstance(t, Tensor) else t]
    while stack:
        v = stack.pop()
        if v in seen:
            continue
        seen.add(v)
        if v.node is None:
            found.add(v.name)
        else:
            stack.extend(v.node.inputs)
    b = current_builder()
    return [v.name for v in b.inputs if v.name in found]


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
    ``ctx.subgraph(attr, inputs)``: convert a graph attribute (If / Loop / Scan body) inline.
    """

    def __init__(self, importer: "Importer", node, index: int, inputs: Sequence[Any], prefix: str = ""):
        self.importer = importer
        self.node = node
        self.op_type: str = node.op_type
        self.domain: str = _norm_domain(node.domain)
        self.opset: int = importer.opsets.get(self.domain, 1)
        self.name: str = prefix + (node.name or f"{node.op_type}#{index}")
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
            sources = graph_inputs_of(self.input(i))
            raise NonConstantInputError(
                f"{self.importer.where}: {self.describe()}: input {i}{label} {self.input_name(i)!r} must be a constant "
                f"(an initializer or computable from constants and static shapes at import time), but it depends on "
                f"graph input(s) {', '.join(repr(n) for n in sources)}: give their values with "
                f"from_onnx(..., input_values={{...}}), or use graphc.SpecializingModel",
                sources,
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

    # -- subgraphs (If / Loop / Scan bodies) -----------------------------------------------
    def subgraph(self, name: str, inputs: Sequence[Tensor | np.ndarray] = ()) -> list[Any]:
        """Convert the graph attribute `name` (``then_branch``, ``body``...) inline; return its outputs.

        The body's nodes are emitted into the graph being built, right here, so they are
        ordinary graphc nodes: ops on constants fold as usual (an If whose condition is a
        constant can convert just the branch taken and return its outputs). Rules:

        * ``inputs`` bind the body's formal inputs (``GraphProto.input``) in order: one per
          formal input, each a `Tensor` (or a numpy array / number, made a constant). A
          formal input's declared element type and static dims are checked.
        * Scoping is ONNX's: the body reads outer values by name (every value the
          enclosing graphs defined before this node, the enclosing body's too); the names
          the body defines (inputs, initializers, node outputs) are local to this call and
          invisible to the outer graph afterwards.
        * Returns one entry per body output (``GraphProto.output`` order): a `Tensor`, or
          whatever non-tensor value a converter produced for it (e.g. a sequence).
        * Each call converts the body afresh, so a converter may call it once per loop
          iteration to unroll a Loop or Scan with a static trip count.
        * Locations (and error messages) of the body's nodes read
          ``<this node>/<attribute>/<body node>``.

        Example (an If with a constant condition)::

            cond = bool(ctx.const(0, "cond").reshape(-1)[0])
            return ctx.subgraph("then_branch" if cond else "else_branch")
        """
        from onnx import GraphProto

        body = self.attrs.get(name)
        if not isinstance(body, GraphProto):
            raise self.error(f"has no graph attribute {name!r}")
        return self.importer.convert_subgraph(body, list(inputs), f"{self.name}/{name}/", self)

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
    """(ModelProto with local functions inlined, where-label for messages, base dir for external data)."""
    model, where, base_dir = _load(path_or_model)
    _check_text_fields(model.graph, where)
    if model.functions:
        try:
            import onnx.inliner

            model = onnx.inliner.inline_local_functions(model)
        except Exception as e:
            raise FrontendError(f"{where}: cannot inline the model's local functions ({type(e).__name__}: {e})") from None
    return model, where, base_dir


def _load(path_or_model) -> tuple[Any, str, str]:
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


def _check_text_fields(graph, where: str) -> None:
    """Names must be text: protobuf hands back bytes for a name that is not valid UTF-8
    (a corrupted file), which would otherwise surface as a TypeError deep in the importer."""
    fields = [("graph name", graph.name)]
    fields += [(f"input {i}", v.name) for i, v in enumerate(graph.input)]
    fields += [(f"output {i}", v.name) for i, v in enumerate(graph.output)]
    fields += [(f"initializer {i}", t.name) for i, t in enumerate(graph.initializer)]
    fields += [(f"value_info {i}", v.name) for i, v in enumerate(graph.value_info)]
    for i, node in enumerate(graph.node):
        fields += [(f"node {i} name", node.name), (f"node {i} op type", node.op_type), (f"node {i} domain", node.domain)]
        fields += [(f"node {i} input", n) for n in node.input] + [(f"node {i} output", n) for n in node.output]
        for a in node.attribute:
            fields.append((f"node {i} attribute name", a.name))
            if a.HasField("g"):
                _check_text_fields(a.g, where)
            for g in a.graphs:
                _check_text_fields(g, where)
    for what, value in fields:
        if not isinstance(value, str):
            raise FrontendError(f"{where}: corrupted ONNX model: the {what} is not valid UTF-8 text ({bytes(value)[:40]!r})")


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
    def __init__(
        self,
        model,
        where: str,
        base_dir: str,
        input_shapes: Mapping[str, Any] | None,
        input_values: Mapping[str, Any] | None = None,
    ):
        self.model = model
        self.where = where
        self.base_dir = base_dir
        # name -> shape; for a sequence input a list of shapes; None for an empty optional
        self.input_shapes = dict(input_shapes or {})
        # per ONNX graph output: (name, "tensor" | "sequence" | "none", how many graph outputs it became)
        self.output_layout: list[tuple[str, str, int]] = []
        self.input_values = dict(input_values or {})
        self.opsets: dict[str, int] = {}
        self.builder = FoldingBuilder(_graph_name(model.graph.name))
        # name -> Tensor (or a converter's non-tensor value); subgraphs push a child scope
        self.env: ChainMap[str, Any] = ChainMap()
        self.used_names: set[str] = set()

    # -- entry ----------------------------------------------------------------------------
    def check(self) -> None:
        """Opsets, op support and the ONNX checker: everything that does not depend on input shapes or values."""
        self._read_opsets()
        self._check_supported()
        _check(self.model, self.where)
        for inp in self.model.graph.input:
            if not _is_supported_input_type(inp.type):
                kind = inp.type.WhichOneof("value") or "untyped"
                raise FrontendError(
                    f"{self.where}: input {inp.name!r}: graphc takes tensors, sequences of tensors and optionals of those, not a {kind} input"
                )

    def run(self, check: bool = True) -> Graph:
        """The graphc graph; `check=False` skips `check` (already done for this model) but still reads the opsets."""
        graph = self.model.graph
        if check:
            self.check()
        else:
            self._read_opsets()
        self.used_names = _names_read(graph)
        with self.builder:
            self._make_inputs()
            self._convert_nodes(graph, "")
        outputs, names = [], []
        for o in graph.output:
            value = self._graph_output(o, f"{self.where}: graph output {o.name!r}")
            tensors = _output_tensors(value)
            if tensors is None:
                raise FrontendError(f"{self.where}: graph output {o.name!r} is a {type(value).__name__}, but graphc graphs return tensors only")
            kind = "tensor" if isinstance(value, Tensor) else "sequence" if _is_sequence(value) else "none"
            self.output_layout.append((o.name, kind, len(tensors)))
            outputs.extend(t.value for t in tensors)
            names.extend([o.name] if kind == "tensor" else [f"{o.name}[{i}]" for i in range(len(tensors))])
        if not outputs:
            raise FrontendError(f"{self.where}: the graph has no tensor outputs")
        return self.builder.build(outputs, names)

    def _read_opsets(self) -> None:
        from onnx import defs

        for imp in self.model.opset_import:
            self.opsets[_norm_domain(imp.domain)] = int(imp.version)
        if "" not in self.opsets:
            if any(_norm_domain(n.domain) == "" for n, _ in _walk_nodes(self.model.graph)):
                raise FrontendError(f"{self.where}: the model imports no opset for the default ONNX domain")
            return
        v, newest = self.opsets[""], defs.onnx_opset_version()
        if v > newest:
            raise FrontendError(
                f"{self.where}: ONNX opset {v} is newer than the installed onnx package knows (it knows opsets up to "
                f"{newest}): upgrade onnx, or convert the model down with onnx.version_converter"
            )
        if v < MIN_OPSET:
            raise FrontendError(f"{self.where}: ONNX opset {v} is not supported (graphc imports opsets {MIN_OPSET} to {newest})")

    def _check_supported(self) -> None:
        """Fail once, listing every op type without a converter (subgraph bodies included)."""
        _load_converters()
        missing: dict[tuple[str, str], list[str]] = {}
        for node, label in _walk_nodes(self.model.graph):
            domain = _norm_domain(node.domain)
            if (domain, node.op_type) not in CONVERTERS:
                missing.setdefault((domain, node.op_type), []).append(label)
        if not missing:
            return
        parts = []
        for (domain, op_type), names in missing.items():
            dom = domain or "ai.onnx"
            opset = self.opsets.get(domain)
            opset_s = f"opset {opset}" if opset is not None else "no opset imported"
            shown = ", ".join(names[:8]) + (f", ... ({len(names)} nodes)" if len(names) > 8 else "")
            reason = UNSUPPORTED_REASONS.get((domain, op_type))
            parts.append(f"{op_type} ({dom} {opset_s}; nodes {shown}{'; ' + reason if reason else ''})")
        n = len(missing)
        raise UnsupportedOpError(
            f"{self.where}: {n} unsupported ONNX op type{'s' if n != 1 else ''}: {', '.join(parts)}",
            [f"{domain}.{op_type}" if domain else op_type for domain, op_type in missing],
        )

    # -- inputs and initializers --------------------------------------------------------
    def _make_inputs(self) -> None:
        graph = self.model.graph
        b = self.builder
        input_names = [i.name for i in graph.input]
        for option in ("input_shapes", "input_values"):
            unknown = sorted(set(getattr(self, option)) - set(input_names))
            if unknown:
                raise FrontendError(f"{self.where}: {option} names unknown input(s) {', '.join(unknown)}; the model's inputs are: {', '.join(input_names)}")
        both = sorted(set(self.input_shapes) & set(self.input_values))
        if both:
            raise FrontendError(f"{self.where}: input(s) {', '.join(both)} are in both input_shapes and input_values; give each one only once")
        for t in graph.initializer:
            if t.name in self.input_shapes:
                continue  # an initializer the caller wants as a real input
            self.env[t.name] = Tensor(b.const(tensor_to_array(t, f"{self.where}: initializer {t.name!r}", self.base_dir), name=t.name))
        for t in graph.sparse_initializer:
            name = t.values.name
            self.env[name] = Tensor(b.const(sparse_to_array(t, f"{self.where}: sparse initializer {name!r}", self.base_dir), name=name))
        for inp in graph.input:
            if inp.name in self.input_values:  # specialized: the caller fixed this input's value
                self.env[inp.name] = Tensor(b.const(self._bound_value(inp)))
            elif inp.name in self.env and inp.name not in self.input_shapes:
                continue  # classic exporters list initializers as inputs too: they stay constants
            else:
                self.env[inp.name] = self._graph_input(inp.name, inp.type, f"{self.where}: input {inp.name!r}")

    def _graph_input(self, name: str, type_proto, what: str) -> Any:
        """A graph input as converters see it: a Tensor; for a sequence, a TensorSequence of the graph
        inputs ``name[0]``, ``name[1]``... (input_shapes gives their shapes); for an optional, its
        value, or an empty optional when input_shapes gives None for it."""
        from .onnx_ops.sequence import EmptyOptional, TensorSequence

        kind = type_proto.WhichOneof("value")
        spec = self.input_shapes.get(name)
        if kind == "tensor_type":
            return Tensor(self.builder.input(name, self._input_type(name, type_proto.tensor_type, spec, what)))
        if kind == "optional_type":
            if name in self.input_shapes and spec is None:
                return EmptyOptional(what)
            return self._graph_input(name, type_proto.optional_type.elem_type, what)
        elem = type_proto.sequence_type.elem_type.tensor_type  # (check() let only sequences of tensors through)
        if spec is None:
            raise FrontendError(f"{what}: a sequence input needs its length and element shapes: pass input_shapes={{{name!r}: [shape, ...]}}")
        items = [Tensor(self.builder.input(f"{name}[{i}]", self._input_type(f"{name}[{i}]", elem, s, what))) for i, s in enumerate(spec)]
        return TensorSequence(items, graphc_dtype(elem.elem_type, what))

    def _bound_value(self, inp) -> np.ndarray:
        """The array `input_values` gives for graph input `inp`, in its declared type."""
        what = f"{self.where}: input_values[{inp.name!r}]"
        tt = inp.type.optional_type.elem_type if inp.type.HasField("optional_type") else inp.type
        if not tt.HasField("tensor_type"):
            raise FrontendError(f"{what}: input_values binds tensor inputs only")
        np_dtype = dtypes.to_numpy(graphc_dtype(tt.tensor_type.elem_type, what))
        value = np.asarray(self.input_values[inp.name])
        if value.dtype != np_dtype and not np.can_cast(value.dtype, np_dtype, "same_kind"):
            raise FrontendError(f"{what}: a {value.dtype} array cannot stand for the model's {np_dtype} input")
        problem = _type_mismatch(tt, TensorType(dtypes.from_numpy(np_dtype), value.shape))
        if problem:
            raise FrontendError(f"{what}: {problem}")
        return np.array(value, dtype=np_dtype)

    def _input_type(self, name: str, tensor_type, given: Sequence[int] | None, what: str) -> TensorType:
        """The type of tensor input `name`: its declared type, with the shape `given` in input_shapes (if any)."""
        dtype = graphc_dtype(tensor_type.elem_type, what)
        declared = None
        if tensor_type.HasField("shape"):
            declared = _declared_dims(tensor_type.shape.dim)
        if given is not None:
            shape = tuple(int(d) for d in given)
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
            raise FrontendError(f"{what}: the model declares no shape; pass input_shapes={{{name!r}: (...)}}")
        for i, d in enumerate(declared):
            if not isinstance(d, int):
                label = f"dim {i} ({d!r})" if d else f"dim {i} (unknown)"
                raise FrontendError(
                    f"{what}: {label} of shape {_fmt_dims(declared)} is dynamic; graphc needs static shapes: "
                    f"pass input_shapes={{{name!r}: (...)}}"
                )
        return TensorType(dtype, tuple(declared))

    def _graph_output(self, o, what: str) -> Any:
        """The value of a (sub)graph output, checked against its declared type."""
        if o.name not in self.env:
            raise FrontendError(f"{what} is not produced by any node, input or initializer")
        t = self.env[o.name]
        problem = _type_mismatch(o.type, t.type) if isinstance(t, Tensor) else None
        if problem:
            raise FrontendError(f"{what}: {problem}")
        return t

    # -- nodes ----------------------------------------------------------------------------
    def _convert_nodes(self, graph, prefix: str) -> None:
        """Convert a (sub)graph's nodes in order into the current scope; value_info types are checked."""
        declared = {vi.name: vi.type for vi in graph.value_info}
        for index, node in enumerate(graph.node):
            ctx = self._convert(node, index, prefix)
            for name in node.output:
                t = self.env.maps[0].get(name)
                if name in declared and isinstance(t, Tensor):
                    problem = _type_mismatch(declared[name], t.type)
                    if problem:
                        raise ctx.error(f"output {name!r}: {problem} (from the model's value_info)")

    def convert_subgraph(self, body, inputs: list[Any], prefix: str, owner: NodeContext) -> list[Any]:
        """Convert a subgraph inline, in a child scope (see `NodeContext.subgraph`)."""
        if len(inputs) != len(body.input):
            formals = ", ".join(i.name for i in body.input) or "none"
            raise owner.error(f"subgraph {prefix[:-1]!r} takes {len(body.input)} input(s) ({formals}), given {len(inputs)}")
        outer = self.env
        self.env = outer.new_child()
        try:
            for formal, value in zip(body.input, inputs):
                if isinstance(value, (np.ndarray, np.generic, int, float, bool)):
                    value = owner.constant(value)
                problem = _type_mismatch(formal.type, value.type) if isinstance(value, Tensor) else None
                if problem:
                    raise owner.error(f"subgraph {prefix[:-1]!r} input {formal.name!r}: {problem}")
                self.env[formal.name] = value
            for t in body.initializer:
                self.env[t.name] = Tensor(self.builder.const(tensor_to_array(t, f"{owner.describe()}: initializer {t.name!r}", self.base_dir)))
            self._convert_nodes(body, prefix)
            return [self._graph_output(o, f"{self.where}: {owner.describe()}: subgraph {prefix[:-1]!r} output {o.name!r}") for o in body.output]
        finally:
            self.env = outer

    def _convert(self, node, index: int, prefix: str) -> NodeContext:
        inputs: list[Any] = []
        for name in node.input:
            if name == "":
                inputs.append(None)
            elif name in self.env:
                inputs.append(self.env[name])
            else:
                label = prefix + (node.name or f"{node.op_type}#{index}")
                raise FrontendError(f"{self.where}: node {label!r} ({node.op_type}) reads {name!r}, which nothing defines before it")
        while inputs and inputs[-1] is None:
            inputs.pop()  # trailing optional inputs left out
        ctx = NodeContext(self, node, index, inputs, prefix)
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
            self.env[name] = Tensor(t) if isinstance(t, Value) else t  # non-tensors (sequences) are kept as they are
        return ctx


def _is_supported_input_type(type_proto) -> bool:
    """Tensors, sequences of tensors, and optionals of those."""
    kind = type_proto.WhichOneof("value")
    if kind == "tensor_type":
        return True
    if kind == "sequence_type":
        return type_proto.sequence_type.elem_type.WhichOneof("value") == "tensor_type"
    return kind == "optional_type" and _is_supported_input_type(type_proto.optional_type.elem_type)


def _is_sequence(value) -> bool:
    from .onnx_ops.sequence import TensorSequence

    return isinstance(value, TensorSequence)


def _output_tensors(value) -> list[Tensor] | None:
    """The tensors a graph output value becomes: itself, a sequence's items, none for an empty
    optional; None for anything else."""
    from .onnx_ops.sequence import EmptyOptional

    if isinstance(value, Tensor):
        return [value]
    if _is_sequence(value):
        return list(value.items)
    return [] if isinstance(value, EmptyOptional) else None


def _subgraphs(node) -> list[tuple[str, Any]]:
    """(attribute name, GraphProto) for each graph attribute of a node."""
    from onnx import AttributeProto

    out = []
    for a in node.attribute:
        if a.type == AttributeProto.GRAPH:
            out.append((a.name, a.g))
        elif a.type == AttributeProto.GRAPHS:
            out.extend((a.name, g) for g in a.graphs)
    return out


def _walk_nodes(graph, prefix: str = ""):
    """(node, label) for every node, subgraph bodies included (labels as in error messages)."""
    for index, node in enumerate(graph.node):
        label = prefix + (node.name or f"{node.op_type}#{index}")
        yield node, label
        for attr, body in _subgraphs(node):
            yield from _walk_nodes(body, f"{label}/{attr}/")


def _names_read(graph) -> set[str]:
    """Every value name some node or graph output reads, subgraph bodies included."""
    names = {o.name for o in graph.output}
    for node in graph.node:
        names.update(n for n in node.input if n)
        for _, body in _subgraphs(node):
            names |= _names_read(body)
    return names


def _declared_dims(dims) -> list[int | str | None]:
    """A TensorShapeProto's dims: ints, names of symbolic dims, None for unknown ones."""
    return [d.dim_value if d.WhichOneof("value") == "dim_value" else (d.dim_param or None) for d in dims]


def _type_mismatch(type_proto, t: TensorType) -> str | None:
    """Why a tensor type contradicts a declared ONNX TypeProto (unknown dims match anything), else None."""
    if type_proto.WhichOneof("value") != "tensor_type":
        return None
    tt = type_proto.tensor_type
    if tt.elem_type:
        declared = _ONNX_DTYPES.get(tt.elem_type)
        if declared != t.dtype:
            return f"the model declares element type {onnx_dtype_name(tt.elem_type)}, graphc has {t.dtype}"
    if tt.HasField("shape"):
        dims = tt.shape.dim
        ok = len(dims) == len(t.shape) and all(d.WhichOneof("value") != "dim_value" or d.dim_value == s for d, s in zip(dims, t.shape))
        if not ok:
            declared = _declared_dims(dims)
            return f"the model declares shape {_fmt_dims(declared)}, graphc has {list(t.shape)}"
    return None


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


def from_onnx(
    path_or_model,
    input_shapes: Mapping[str, Any] | None = None,
    input_values: Mapping[str, Any] | None = None,
) -> Graph:
    """Import an ONNX model (a file path, an ``onnx.ModelProto`` or serialized bytes) as a graphc Graph.

    Graph inputs need static shapes; ``input_shapes={"name": (dims...)}`` fixes dynamic
    ones (and turns initializers listed as inputs into real inputs). A sequence input
    becomes the inputs ``name[0]``, ``name[1]``..., its element shapes given as
    ``input_shapes={"name": [(dims...), ...]}``; an optional input is its value, or empty
    with ``input_shapes={"name": None}``. A sequence output becomes the outputs
    ``name[0]``, ``name[1]``...
    ``input_values={"name": array}`` treats those graph inputs as constants with these
    values (they are no longer inputs of the result): a specialization, for inputs that
    decide shapes (a Reshape's shape, Slice's starts, TopK's k...).

    Raises `UnsupportedOpError` listing every op type graphc cannot convert,
    `NonConstantInputError` (carrying ``input_names``) when such a shape-deciding value
    depends on graph inputs that were not given in `input_values`, and `FrontendError`
    for unreadable or invalid models.
    """
    model, where, base_dir = load_model(path_or_model)
    importer = Importer(model, where, base_dir, input_shapes, input_values)
    graph = importer.run()
    empty = [name for name, kind, _ in importer.output_layout if kind == "none"]
    if empty:
        raise FrontendError(
            f"{where}: graph output(s) {', '.join(repr(n) for n in empty)} are empty optionals, which a graphc graph cannot "
            f"return (graphc.SpecializingModel returns them as None)"
        )
    return graph


__all__ = [
    "CONVERTERS",
    "FoldingBuilder",
    "Importer",
    "NodeContext",
    "constant_value",
    "converter",
    "from_onnx",
    "graph_inputs_of",
    "graphc_dtype",
    "load_model",
    "supported_ops",
]
