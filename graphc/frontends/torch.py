"""PyTorch frontend: ``from_torch(module, example_inputs) -> graphc.ir.Graph`` through ``torch.export``.

How it works:

1. Export the module in eval mode with ``torch.export.export`` and lower the program to
   core ATen with ``run_decompositions``, except for the ops in `preserved_ops`: graphc
   has one op for each of those (linear, matmul, layer_norm, scaled_dot_product_attention,
   conv2d, silu) that codegen schedules as a whole, and their decompositions (addmm and
   transposes, the attention math with its NaN-safe softmax) would only have to be
   pattern-matched back together.
2. Sort the nodes. A node computed from constants alone (``arange``, ``full``, causal
   masks built from them, slices of non-persistent buffers; ``zeros_like`` & co., which
   only read a shape) is *static*: PyTorch itself evaluates it at import time, so any op
   may appear there. Every other node needs a converter; the importer fails once,
   listing every ATen op without one and where the model calls it.
3. Convert: graph inputs from the forward signature, parameters and persistent buffers
   as constants named by their ``state_dict`` keys (graph inputs with
   ``params_as_inputs=True``), then one converter call per ATen node. Each ATen op
   overload has one converter function, registered with ``@aten("add.Tensor")``; it gets
   an `AtenContext` and the node's arguments in schema order (tensors as graphc
   Tensors) and returns the output tensor(s). Every result is checked against the shape
   and dtype PyTorch recorded for the node.
4. Outputs follow the export's output spec (tuples, dicts and Hugging Face ModelOutputs
   flattened, named by their keys).

Every graphc node records the model's source line (``file.py:42``) in its ``loc``.
The converters themselves live in `graphc.frontends.torch_ops`.
"""
from __future__ import annotations

import operator
import os
import re
import warnings
from typing import Any, Callable, Sequence

import numpy as np

from .. import dtypes
from ..errors import FrontendError, GraphcError, UnsupportedOpError
from ..ir import Graph, TensorType
from ..tensor import Tensor
from .onnx import FoldingBuilder

# torch dtype name -> graphc dtype
_DTYPES = {
    "float32": "f32", "float16": "f16", "bfloat16": "bf16", "float64": "f64",
    "int64": "i64", "int32": "i32", "int16": "i16", "int8": "i8", "uint8": "u8", "bool": "bool",
}

# ATen ops with no effect on values: export's runtime checks
_IGNORED = {"aten._assert_tensor_metadata.default", "aten._assert_scalar.default", "aten.sym_constrain_range_for_size.default"}

# ATen ops whose result depends only on their inputs' shapes and dtypes (static even on dynamic inputs)
_SHAPE_ONLY = {
    "aten.full_like.default", "aten.zeros_like.default", "aten.ones_like.default", "aten.empty_like.default",
    "aten.new_zeros.default", "aten.new_ones.default", "aten.new_full.default", "aten.new_empty.default",
    "aten.new_empty_strided.default", "aten.sym_size.int", "aten.sym_numel.default",
}

# how many source places an unsupported-op error shows per op
_SHOWN_PLACES = 3


# ---------------------------------------------------------------------------------------
# the converter table
# ---------------------------------------------------------------------------------------
Converter = Callable[..., Any]
CONVERTERS: dict[str, Converter] = {}


def aten(*overloads: str):
    """Register a function converting these ATen op overloads (``"add.Tensor"`` means ``aten.add.Tensor``)."""

    def register(fn: Converter) -> Converter:
        for overload in overloads:
            key = f"aten.{overload}"
            if key in CONVERTERS:
                raise ValueError(f"ATen converter for {key} registered twice")
            CONVERTERS[key] = fn
        return fn

    return register


def supported_ops() -> list[str]:
    """ATen op overloads the importer converts (static nodes may use any op)."""
    _load_converters()
    return sorted(CONVERTERS)


def _load_converters() -> None:
    from . import torch_ops  # noqa: F401  (registers the converters)


def preserved_ops() -> list:
    """ATen ops kept whole by ``run_decompositions``: each is one graphc op that codegen schedules as a unit."""
    import torch

    a = torch.ops.aten
    return [a.linear.default, a.matmul.default, a.layer_norm.default, a.scaled_dot_product_attention.default, a.conv2d.default, a.silu.default]


def decomposition_table() -> dict:
    import torch

    table = torch.export.default_decompositions()
    for op in preserved_ops():
        table.pop(op, None)
    return table


def graphc_dtype(torch_dtype, what: str) -> str:
    name = str(torch_dtype).removeprefix("torch.")
    if name not in _DTYPES:
        raise FrontendError(f"{what}: torch dtype {name} is not supported by graphc (supported: {', '.join(_DTYPES)})")
    return _DTYPES[name]


def torch_dtype(graphc_dtype_name: str):
    import torch

    inverse = {v: k for k, v in _DTYPES.items()}
    return getattr(torch, inverse[graphc_dtype_name])


def to_numpy(t) -> np.ndarray:
    """A torch tensor as a numpy array of the matching graphc dtype (bf16 through ml_dtypes)."""
    import torch

    t = t.detach().cpu()
    if t.dtype == torch.bfloat16:
        return t.float().numpy().astype(dtypes.to_numpy("bf16"))
    return np.asarray(t.contiguous().numpy(), order="C")


# ---------------------------------------------------------------------------------------
# source locations
# ---------------------------------------------------------------------------------------
_FRAME = re.compile(r'File "(?P<file>[^"]+)", line (?P<line>\d+), in [^\n]*\n(?P<code>[^\n]*)')


def source_location(stack_trace: str | None) -> tuple[str | None, str | None]:
    """("file.py:42", "the source line") of the innermost frame outside PyTorch itself."""
    if not stack_trace:
        return None, None
    frames = list(_FRAME.finditer(stack_trace))
    if not frames:
        return None, None
    import torch

    torch_dir = os.path.dirname(os.path.abspath(torch.__file__)) + os.sep
    user = [f for f in frames if not os.path.abspath(f["file"]).startswith(torch_dir)]
    frame = (user or frames)[-1]
    return f"{os.path.basename(frame['file'])}:{frame['line']}", frame["code"].strip() or None


# ---------------------------------------------------------------------------------------
# what a converter sees
# ---------------------------------------------------------------------------------------
class AtenContext:
    """One ATen node, as its converter sees it.

    ``ctx.op(name, *tensors, **attrs)``: emit a graphc op located at this node.
    ``ctx.out_type(i)`` / ``ctx.out_dtype``: the type PyTorch computes for output i.
    ``ctx.operand(v, dtype)``: a tensor cast to `dtype`, or a Python number as a constant of it.
    ``ctx.error(msg)``: a FrontendError naming the module, op and source line.
    """

    def __init__(self, importer: "Importer", node):
        self.importer = importer
        self.node = node
        self.op_name = str(node.target)
        self.loc, self.code = source_location(node.meta.get("stack_trace"))

    def describe(self) -> str:
        where = f" at {self.loc}" if self.loc else ""
        code = f" ({self.code})" if self.code else ""
        return f"{self.op_name}{where}{code}"

    def error(self, msg: str) -> FrontendError:
        return FrontendError(f"{self.importer.where}: {self.describe()}: {msg}")

    # -- types ------------------------------------------------------------------------
    def out_type(self, i: int = 0) -> TensorType:
        val = self.node.meta["val"]
        val = val[i] if isinstance(val, (tuple, list)) else val
        return TensorType(graphc_dtype(val.dtype, self.describe()), tuple(int(d) for d in val.shape))

    @property
    def out_dtype(self) -> str:
        return self.out_type(0).dtype

    def dtype(self, torch_dtype_value) -> str:
        return graphc_dtype(torch_dtype_value, self.describe())

    def promoted(self, a, b) -> str:
        """torch.result_type of two operands (tensors or Python numbers; 0-d tensors weigh less, as in torch)."""
        import torch

        def proxy(v):
            return torch.empty((0,) * v.ndim, dtype=torch_dtype(v.dtype)) if isinstance(v, Tensor) else v

        return self.dtype(torch.result_type(proxy(a), proxy(b)))

    # -- emitting ---------------------------------------------------------------------
    def op(self, name: str, *args, **attrs) -> Any:
        from .. import ops

        return getattr(ops, name)(*args, _loc=self.loc, **attrs)

    def constant(self, array, dtype: str | None = None) -> Tensor:
        arr = np.asarray(array, dtype=dtypes.to_numpy(dtype) if dtype else None)
        return Tensor(self.importer.builder.const(arr))

    def cast(self, x: Tensor, dtype: str) -> Tensor:
        return x if x.dtype == dtype else self.op("cast", x, dtype=dtype)

    def operand(self, v, dtype: str) -> Tensor:
        """A converter argument (tensor or Python number) as a tensor of `dtype`."""
        if isinstance(v, Tensor):
            return self.cast(v, dtype)
        if isinstance(v, (bool, int, float)):
            return self.constant(np.array(v).astype(dtypes.to_numpy(dtype)))
        raise self.error(f"expected a tensor or a number, got {type(v).__name__}")


# ---------------------------------------------------------------------------------------
# the importer
# ---------------------------------------------------------------------------------------
class Importer:
    def __init__(self, program, where: str, name: str, input_names: Sequence[str] | None):
        self.program = program
        self.where = where
        self.builder = FoldingBuilder(_graph_name(name))
        self.input_names = list(input_names) if input_names is not None else None
        self.env: dict[Any, Any] = {}  # fx node -> graphc Tensor (or tuple of them, None for outputs not computed)
        self.static: dict[Any, Any] = {}  # fx node -> its torch value, for static nodes
        sig = program.graph_signature
        self.params = {**sig.inputs_to_parameters, **{k: v for k, v in sig.inputs_to_buffers.items() if v in program.state_dict}}
        self.constants = {**sig.inputs_to_lifted_tensor_constants, **{k: v for k, v in sig.inputs_to_buffers.items() if v not in program.state_dict}}

    # -- entry ----------------------------------------------------------------------------
    def run(self) -> Graph:
        self._check_signature()
        nodes = list(self.program.graph.nodes)
        static = self._static_nodes(nodes)
        self._check_supported(nodes, static)
        with self.builder:
            self._make_inputs(nodes)
            for node in nodes:
                if node.op != "call_function" or str(node.target) in _IGNORED:
                    continue
                if node in static:
                    self.static[node] = self._evaluate(node)
                elif node.target is operator.getitem:
                    self.env[node] = self._getitem(node)
                else:
                    self.env[node] = self._convert(node)
        values = self._user_outputs(nodes)
        outputs = [(self._output_value(v), name) for v, name in zip(values, self._output_names(len(values))) if v is not None]
        return self.builder.build([t.value for t, _ in outputs], [name for _, name in outputs])

    def state_dict_names(self) -> set[str]:
        return set(self.params.values())

    def _check_signature(self) -> None:
        sig = self.program.graph_signature
        for spec in sig.output_specs:
            if spec.kind.name != "USER_OUTPUT":
                what = f" {spec.target!r}" if spec.target else ""
                raise FrontendError(
                    f"{self.where}: the forward pass mutates{what} ({spec.kind.name.lower().replace('_', ' ')}); "
                    f"graphc imports pure functions of their inputs"
                )
        for spec in sig.input_specs:
            if spec.kind.name in ("TOKEN", "CUSTOM_OBJ"):
                raise FrontendError(f"{self.where}: the program has a {spec.kind.name.lower().replace('_', ' ')} input {spec.arg.name!r}, which graphc cannot import")

    # -- sorting nodes: static, ignored, converted --------------------------------------
    def _static_nodes(self, nodes) -> set:
        """Nodes computable at import time from constants (and shapes) alone."""
        static = {n for n in nodes if n.op == "placeholder" and n.name in self.constants}
        for node in nodes:
            if node.op != "call_function" or str(node.target) in _IGNORED or _is_random(node):
                continue
            inputs = node.all_input_nodes
            if str(node.target) in _SHAPE_ONLY or all(i in static for i in inputs):
                static.add(node)
        return static

    def _check_supported(self, nodes, static) -> None:
        """Fail once, listing every non-static op without a converter and where the model calls it."""
        _load_converters()
        missing: dict[str, list[str]] = {}
        for node in nodes:
            if node.op != "call_function" or node in static or str(node.target) in _IGNORED:
                continue
            if node.target is operator.getitem or str(node.target) in CONVERTERS:
                continue
            missing.setdefault(_op_label(node), []).append(_place(node))
        if not missing:
            return
        parts = []
        for op, places in missing.items():
            more = f" and {len(places) - _SHOWN_PLACES} more" if len(places) > _SHOWN_PLACES else ""
            parts.append(f"{op} at {', '.join(places[:_SHOWN_PLACES])}{more}")
        n = len(missing)
        raise UnsupportedOpError(f"{self.where}: {n} unsupported ATen op{'s' if n != 1 else ''}: {'; '.join(parts)}")

    # -- inputs, parameters, constants -------------------------------------------------
    def _make_inputs(self, nodes) -> None:
        user = [n for n in nodes if n.op == "placeholder" and n.name in self.program.graph_signature.user_inputs]
        names = self.input_names if self.input_names is not None else [n.name for n in user]
        if len(names) != len(user):
            raise FrontendError(f"{self.where}: input_names gives {len(names)} names for {len(user)} tensor inputs ({', '.join(n.name for n in user)})")
        if len(set(names)) != len(names):
            raise FrontendError(f"{self.where}: input_names {names} repeat a name")
        by_node = dict(zip(user, names))
        state = self.program.state_dict
        for node in nodes:
            if node.op != "placeholder":
                continue
            if node in by_node:
                val = node.meta["val"]
                t = TensorType(graphc_dtype(val.dtype, f"{self.where}: input {by_node[node]!r}"), tuple(val.shape))
                self.env[node] = Tensor(self.builder.input(by_node[node], t))
            elif node.name in self.params:
                key = self.params[node.name]
                self.env[node] = Tensor(self.builder.const(to_numpy(state[key]), name=key))
            elif node.name in self.constants:
                self.static[node] = self.program.constants[self.constants[node.name]]

    def _tensor(self, node) -> Tensor | None:
        """The graphc tensor for an fx node's value (static tensors become constants on first use)."""
        if node in self.env:
            return self.env[node]
        value = self.static[node]
        import torch

        if not isinstance(value, torch.Tensor):
            return value
        name = self.constants.get(node.name)  # a named buffer or lifted constant keeps its name
        self.env[node] = Tensor(self.builder.const(to_numpy(value), name=name))
        return self.env[node]

    # -- nodes ----------------------------------------------------------------------------
    def _evaluate(self, node):
        """Run a static node with PyTorch (shape-only ops see zero tensors of their inputs' types)."""
        import torch
        from torch.fx.node import map_arg

        def real(n):
            if n in self.static:
                return self.static[n]
            val = n.meta["val"]
            return torch.zeros(tuple(val.shape), dtype=val.dtype)

        args = map_arg(node.args, real)
        kwargs = map_arg(node.kwargs, real)
        try:
            return node.target(*args, **kwargs)
        except Exception as e:
            ctx = AtenContext(self, node)
            raise ctx.error(f"evaluating it on constants at import time failed ({type(e).__name__}: {e})") from None

    def _getitem(self, node):
        src, index = node.args
        value = self.env[src][index]
        if value is None:
            ctx = AtenContext(self, src)
            raise ctx.error(f"output {index} is used, but graphc does not compute it")
        return value

    def _convert(self, node):
        ctx = AtenContext(self, node)
        fn = CONVERTERS[str(node.target)]
        args = [self._arg(a) for a in _schema_args(node)]
        try:
            result = fn(ctx, *args)
        except FrontendError:
            raise
        except GraphcError as e:
            raise ctx.error(str(e)) from e
        except (TypeError, ValueError, IndexError, KeyError, ZeroDivisionError) as e:
            raise ctx.error(f"cannot convert ({type(e).__name__}: {e})") from e
        self._check_result(ctx, result)
        return result

    def _arg(self, a):
        """An argument as converters see it: fx nodes as graphc tensors, lists element-wise."""
        import torch.fx

        if isinstance(a, torch.fx.Node):
            return self._tensor(a)
        if isinstance(a, (list, tuple)):
            return type(a)(self._arg(x) for x in a)
        return a

    def _check_result(self, ctx: AtenContext, result) -> None:
        """Each output must have the shape and dtype PyTorch recorded (a mismatch is a converter bug)."""
        outs = list(result) if isinstance(result, (tuple, list)) else [result]
        val = ctx.node.meta.get("val")
        vals = list(val) if isinstance(val, (tuple, list)) else [val]
        if len(outs) != len(vals):
            raise ctx.error(f"graphc computes {len(outs)} outputs, torch {len(vals)}")
        for i, (t, v) in enumerate(zip(outs, vals)):
            if t is None or v is None:
                continue
            expected = ctx.out_type(i)
            if not isinstance(t, Tensor) or t.type != expected:
                got = t.type if isinstance(t, Tensor) else type(t).__name__
                raise ctx.error(f"output {i}: graphc computes {got}, torch computes {expected}")

    # -- outputs ---------------------------------------------------------------------------
    def _user_outputs(self, nodes) -> list:
        (output_node,) = [n for n in nodes if n.op == "output"]
        return list(output_node.args[0])

    def _output_value(self, v) -> Tensor:
        import torch.fx

        if isinstance(v, torch.fx.Node):
            t = self._tensor(v)
            if isinstance(t, Tensor):
                return t
            v = t
        if isinstance(v, (bool, int, float)):  # a constant the export baked into the outputs
            return Tensor(self.builder.const(np.asarray(v)))
        raise FrontendError(f"{self.where}: the model returns a {type(v).__name__} among its outputs; graphc outputs are tensors")

    def _output_names(self, n: int) -> list[str]:
        import torch.utils._pytree as pytree

        spec = self.program.call_spec.out_spec
        leaves = pytree.tree_flatten_with_path(pytree.tree_unflatten(list(range(n)), spec))[0]
        names = [".".join(_key_name(k) for k in path) for path, _ in leaves]
        names = [("output" + name if name[:1].isdigit() else name) or "output" for name in names]
        if len(set(names)) != len(names):  # a dict key with a dot may spell a nested path
            names = [f"output{i}" for i in range(n)]
        return names


def _key_name(key) -> str:
    for attr in ("key", "idx", "name"):
        if hasattr(key, attr):
            return str(getattr(key, attr))
    return str(key)


def _schema_args(node) -> list:
    """The node's arguments in schema order, defaults filled in."""
    schema = node.target._schema
    out = []
    for i, arg in enumerate(schema.arguments):
        if i < len(node.args):
            out.append(node.args[i])
        elif arg.name in node.kwargs:
            out.append(node.kwargs[arg.name])
        elif arg.has_default_value():
            out.append(arg.default_value)
        else:
            out.append(None)
    return out


def _is_random(node) -> bool:
    import torch

    tags = getattr(node.target, "tags", ())
    return torch.Tag.nondeterministic_seeded in tags


def _op_label(node) -> str:
    return str(node.target) if hasattr(node.target, "_schema") else getattr(node.target, "__name__", str(node.target))


def _place(node) -> str:
    loc, code = source_location(node.meta.get("stack_trace"))
    if loc is None:
        return f"node {node.name} (no source location)"
    return f"{loc} ({code})" if code else loc


def _graph_name(name: str) -> str:
    name = re.sub(r"[^A-Za-z0-9_]", "_", name or "")
    return name if name and not name[0].isdigit() else f"torch_{name}" if name else "torch"


# ---------------------------------------------------------------------------------------
# exporting
# ---------------------------------------------------------------------------------------
def _example_args(example_inputs) -> tuple[tuple, dict]:
    """(args, kwargs) for torch.export: a tensor, a tuple/list of them, or a dict of keyword inputs; numpy arrays allowed."""
    import torch

    def to_torch(v):
        return torch.from_numpy(np.ascontiguousarray(v)) if isinstance(v, np.ndarray) else v

    if isinstance(example_inputs, dict):
        return (), {k: to_torch(v) for k, v in example_inputs.items()}
    if isinstance(example_inputs, (tuple, list)):
        return tuple(to_torch(v) for v in example_inputs), {}
    return (to_torch(example_inputs),), {}


def _export_reason(e: Exception) -> str:
    """torch's first line of explanation, and the user code it points at when it says."""
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    reason = f"{type(e).__name__}: {lines[0] if lines else ''}"
    text = str(e)
    marker = "The following call raised this error:"
    if marker in text:
        loc, code = source_location(text[text.index(marker):])
        if loc:
            reason += f" (at {loc}" + (f": {code})" if code else ")")
    return reason


def export(module, example_inputs) -> Any:
    """torch.export.export in eval mode (the module's mode is restored), lowered to core ATen but `preserved_ops`."""
    import torch

    if isinstance(module, torch.export.ExportedProgram):
        program = module
    else:
        if not isinstance(module, torch.nn.Module):
            raise FrontendError(f"from_torch takes a torch.nn.Module or a torch.export.ExportedProgram, not a {type(module).__name__}")
        args, kwargs = _example_args(example_inputs)
        was_training = module.training
        module.eval()
        try:
            program = torch.export.export(module, args, kwargs)
        except Exception as e:
            raise FrontendError(f"torch.export cannot trace {type(module).__name__}: {_export_reason(e)}") from None
        finally:
            module.train(was_training)
    try:
        with warnings.catch_warnings():  # torch's own pytree deprecation noise, not the user's concern
            warnings.filterwarnings("ignore", message=".*LeafSpec.*", category=FutureWarning)
            return program.run_decompositions(decomposition_table())
    except Exception as e:
        raise FrontendError(f"lowering the exported {type(module).__name__} to core ATen failed: {_export_reason(e)}") from None


def from_torch(module, example_inputs=(), *, params_as_inputs: bool = False, input_names: Sequence[str] | None = None) -> Graph:
    """Import a PyTorch module (or a torch.export.ExportedProgram) as a graphc Graph.

    `example_inputs` is a tensor, a tuple of positional inputs, or a dict of keyword
    inputs (numpy arrays are fine); their shapes and dtypes become the graph's input
    types. Inputs are named by the forward signature unless `input_names` is given.
    Parameters and persistent buffers become constants named by their state_dict keys,
    or graph inputs after the others with ``params_as_inputs=True``. Raises
    `UnsupportedOpError` listing every ATen op graphc cannot convert (with source lines),
    `FrontendError` when torch.export cannot trace the module.
    """
    import torch

    program = export(module, example_inputs)
    name = "exported_program" if isinstance(module, torch.export.ExportedProgram) else type(module).__name__
    importer = Importer(program, f"torch module {name}", name, input_names)
    graph = importer.run()
    if params_as_inputs:
        from ..passes.lift_params import lift_params

        graph = lift_params(graph, importer.state_dict_names())
    return graph


__all__ = ["CONVERTERS", "AtenContext", "aten", "export", "from_torch", "supported_ops"]
