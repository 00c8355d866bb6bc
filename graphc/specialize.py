"""`SpecializingModel`: run an ONNX model whose shapes depend on its inputs, compiling on demand.

graphc compiles static shapes. Some ONNX models decide shapes from input *values*
(a Reshape's ``shape``, Expand's shape, Slice's starts, TopK's ``k``, Resize's sizes,
Range / ConstantOfShape arguments, OneHot's depth... fed as graph inputs) or have
dynamic input dims. A `SpecializingModel` compiles one specialization per distinct
combination of

* the input shapes and dtypes (for a sequence input: its length and element shapes;
  for an optional input: whether it holds a value), and
* the values of the inputs that decide shapes,

caches it (LRU, ``max_cache`` entries) and recompiles when they change.

Which inputs decide shapes is found out by importing: the importer raises
`NonConstantInputError` naming the graph inputs a shape-deciding value depends on; those
are bound to the values of the current call (``from_onnx(..., input_values=...)``)
and the import is retried. The learned set is remembered, so later calls key their
cache lookups on those inputs' values.
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Any, Mapping

import numpy as np

from .errors import InputError, NonConstantInputError


class SpecializingModel:
    """An ONNX model compiled per input shapes and shape-deciding input values.

    ``SpecializingModel(model, target="x86", **compile_options)``: `model` is a path,
    an ``onnx.ModelProto`` or serialized bytes; `compile_options` go to
    `graphc.compile` (``opt_level``...). ``run(*inputs, **named) -> list`` takes the
    model's inputs (``input_names``: the graph inputs that are not initializers) by
    position or name: arrays; lists of arrays for sequence inputs; None (or nothing)
    for an empty optional input. An initializer listed as an input may be overridden
    by name. Outputs come in model order: arrays, lists of arrays for sequence
    outputs, None for empty optional outputs.
    """

    def __init__(self, model, target: Any = "x86", *, max_cache: int = 16, **compile_options: Any):
        from .frontends.onnx import Importer, load_model

        self.model, self.where, self.base_dir = load_model(model)
        Importer(self.model, self.where, self.base_dir, None).check()  # unsupported ops fail here, not at the first run
        self.target = target
        self.compile_options = {"log": lambda *a, **k: None, **compile_options}
        self.max_cache = max_cache
        graph = self.model.graph
        initializers = {t.name for t in graph.initializer} | {t.values.name for t in graph.sparse_initializer}
        self.input_names: list[str] = [i.name for i in graph.input if i.name not in initializers]
        self.optional_input_names: list[str] = [i.name for i in graph.input if i.name in initializers]
        self.output_names: list[str] = [o.name for o in graph.output]
        self._input_kinds = {i.name: i.type.WhichOneof("value") for i in graph.input}
        self.value_inputs: set[str] = set()  # inputs found to decide shapes: specialized on their values
        self._cache: OrderedDict[tuple, tuple] = OrderedDict()
        self.compilations = 0  # how many specializations were compiled (cache misses)

    def run(self, *args: Any, **kwargs: Any) -> list[Any]:
        values = self._bind(args, kwargs)
        compiled, session, layout = self._entry(values)
        feeds = _flatten_inputs(values)
        outputs = iter(session.run(**{v.name: feeds[v.name] for v in compiled.graph.inputs}))
        return [_assemble(kind, count, outputs) for _, kind, count in layout]

    def specialization(self, *args: Any, **kwargs: Any):
        """The `CompiledModel` for these inputs (compiled now unless cached); its graph's inputs
        are the model's inputs minus the value-specialized ones, sequences flattened."""
        return self._entry(self._bind(args, kwargs))[0]

    # -- internals --------------------------------------------------------------------------
    def _entry(self, values: Mapping[str, Any]) -> tuple[Any, Any, list]:
        """(CompiledModel, Session, output layout) for these inputs, from the cache or compiled now."""
        key = self._key(values)
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        graph, layout = self._import(values)
        from .compiler import compile as compile_graph

        compiled = compile_graph(graph, target=self.target, **self.compile_options)
        self.compilations += 1
        entry = (compiled, compiled.session(), layout)
        self._cache[self._key(values)] = entry  # (the import may have learned more value inputs)
        while len(self._cache) > self.max_cache:
            self._cache.popitem(last=False)
        return entry

    def _bind(self, args, kwargs) -> dict[str, Any]:
        names = self.input_names
        if len(args) > len(names):
            raise InputError(f"{self.where}: takes {len(names)} input(s) ({', '.join(names)}), got {len(args)} positional")
        given = dict(zip(names, args))
        for name, value in kwargs.items():
            if name not in names and name not in self.optional_input_names:
                raise InputError(f"{self.where}: has no input named {name!r}; its inputs are: {', '.join(names)}")
            if name in given:
                raise InputError(f"{self.where}: input {name!r} given both by position and by name")
            given[name] = value
        for name in names:  # an optional input left out is an empty one
            if name not in given and self._input_kinds[name] == "optional_type":
                given[name] = None
        missing = [n for n in names if n not in given]
        if missing:
            raise InputError(f"{self.where}: missing input(s) {', '.join(missing)} (expects {', '.join(names)})")
        return {n: self._value(n, v) for n, v in given.items()}

    def _value(self, name: str, value: Any) -> Any:
        """An input as an array, a list of arrays (a sequence) or None (an empty optional)."""
        kind = self._input_kinds[name]
        if value is None:
            if kind != "optional_type":
                raise InputError(f"{self.where}: input {name!r} is not optional: None is not a value for it")
            return None
        if isinstance(value, (list, tuple)) and kind != "tensor_type":
            return [np.asarray(v) for v in value]
        return np.asarray(value)

    def _key(self, values: Mapping[str, Any]) -> tuple:
        types = tuple((n, _signature(v)) for n, v in sorted(values.items()))
        specialized = tuple((n, np.ascontiguousarray(values[n]).tobytes()) for n in sorted(self.value_inputs) if n in values)
        return types, specialized

    def _import(self, values: Mapping[str, Any]):
        """(graph, output layout): import with the given shapes, binding the value inputs; learn more
        of them as the importer asks."""
        from .frontends.onnx import Importer

        while True:
            bound = {n: values[n] for n in self.value_inputs if n in values}
            shapes = {n: _shape_spec(v) for n, v in values.items() if n not in bound}
            importer = Importer(self.model, self.where, self.base_dir, shapes, bound)
            try:
                return importer.run(check=False), importer.output_layout
            except NonConstantInputError as e:
                new = [n for n in e.input_names if isinstance(values.get(n), np.ndarray) and n not in self.value_inputs]
                if not new:
                    raise  # (depends on something no call can bind, e.g. a sequence input)
                self.value_inputs.update(new)


def _signature(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, list):
        return tuple(_signature(v) for v in value)
    return value.dtype.str, value.shape


def _shape_spec(value: Any) -> Any:
    """What `input_shapes` says for an input value (see `graphc.from_onnx`)."""
    if value is None:
        return None
    if isinstance(value, list):
        return [v.shape for v in value]
    return value.shape


def _flatten_inputs(values: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """Graph input name -> array: a sequence input is the inputs ``name[i]``; an empty optional none."""
    feeds: dict[str, np.ndarray] = {}
    for name, value in values.items():
        if isinstance(value, list):
            feeds.update((f"{name}[{i}]", v) for i, v in enumerate(value))
        elif value is not None:
            feeds[name] = value
    return feeds


def _assemble(kind: str, count: int, outputs) -> Any:
    """One model output from the graph's flat outputs (see `Importer.output_layout`)."""
    if kind == "tensor":
        return next(outputs)
    if kind == "sequence":
        return [next(outputs) for _ in range(count)]
    return None
