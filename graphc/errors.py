"""One exception hierarchy for everything a user can get wrong.

Every error a user can trigger is a `GraphcError`; the message names the place
(file, node, op, input) and what is wrong. Internal invariant failures are
plain assertions and are bugs.
"""
from __future__ import annotations


class GraphcError(Exception):
    """Base class: a readable problem with the user's model, input or command."""


class IRError(GraphcError):
    """Malformed IR: parse errors, SSA violations, type mismatches."""


class ParseError(IRError):
    def __init__(self, msg: str, line: int | None = None, col: int | None = None):
        where = f"line {line}" + (f", col {col}" if col is not None else "") if line is not None else ""
        super().__init__(f"{where}: {msg}" if where else msg)
        self.line, self.col = line, col


class VerifyError(IRError):
    """A graph invariant does not hold (names the node)."""


class TypeInferenceError(IRError):
    """An op rejected its input types or attributes (raised by op records)."""


class UnsupportedOpError(GraphcError):
    """A frontend met ops graphc cannot translate (lists all of them).

    `op_types` holds them as ``"Op"`` (default domain) or ``"domain.Op"``, for tools."""

    def __init__(self, msg: str, op_types=()):
        super().__init__(msg)
        self.op_types: tuple[str, ...] = tuple(op_types)


class FrontendError(GraphcError):
    """A model file or module could not be imported."""


class InputError(GraphcError):
    """Wrong runtime inputs: name, count, shape or dtype."""


class ArtifactError(GraphcError):
    """A compiled artifact is missing, truncated, corrupted or incompatible."""


class CompileError(GraphcError):
    """Code generation failed for a kernel (names the node)."""


class TargetError(GraphcError):
    """Unknown target or a missing toolchain (says what to install)."""


class NonConstantInputError(FrontendError):
    """An importer needed an input's value at import time (a Reshape's shape, Slice's starts,
    TopK's k...) but it depends on graph inputs.

    `input_names` lists those graph inputs: binding them to values with
    ``from_onnx(model, input_values={name: array})`` makes the model importable (a
    specialization for those values); `graphc.SpecializingModel` does that automatically.
    """

    def __init__(self, msg: str, input_names):
        super().__init__(msg)
        self.input_names: tuple[str, ...] = tuple(input_names)
