"""Tunable parameters of the hand-written schedule rules (AutoTVM-style templates).

A rule that chooses a parameter asks ``knob(name, default, candidates)`` instead of using
its default directly. Outside tuning that returns the default, or the value a caller set
with ``configured(values)`` (a tuned kernel's record). ``recording()`` collects the knob
space one schedule consulted, which `graphc.tuning.templates` searches.

Knobs never change a packed weight's layout (the layout pass fixes panel widths before
any schedule runs), only how the schedule walks it. A configured value that is not among
the knob's candidates raises `InvalidKnob`: the rule's fallback (the generic schedule)
takes over, and the tuner skips that configuration.
"""
from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Iterator

_CONFIG: ContextVar[dict[str, Any] | None] = ContextVar("graphc_knob_config", default=None)
_RECORD: ContextVar[dict[str, Knob] | None] = ContextVar("graphc_knob_record", default=None)
_PREFIX: ContextVar[str] = ContextVar("graphc_knob_prefix", default="")


class InvalidKnob(ValueError):
    """A configured knob value the rule cannot use here."""


@dataclass(frozen=True)
class Knob:
    name: str
    default: Any
    candidates: tuple

    def alternatives(self) -> list:
        return [c for c in self.candidates if c != self.default]


def knob(name: str, default, candidates) -> Any:
    """The value of the rule's parameter `name`: the configured one, else `default`."""
    full = _PREFIX.get() + name
    options = tuple(dict.fromkeys([default, *candidates]))  # default first, no duplicates
    record = _RECORD.get()
    if record is not None and full not in record and len(options) > 1:
        record[full] = Knob(full, default, options)
    config = _CONFIG.get()
    if not config or full not in config:
        return default
    value = config[full]
    if value not in options:
        raise InvalidKnob(f"{full}={value!r} is not one of {list(options)}")
    return value


@contextmanager
def configured(values: dict[str, Any] | None) -> Iterator[None]:
    """Schedules built inside use `values` for the knobs they name (others: defaults)."""
    token = _CONFIG.set(dict(values) if values else None)
    try:
        yield
    finally:
        _CONFIG.reset(token)


@contextmanager
def recording() -> Iterator[dict[str, Knob]]:
    """Collects {name: Knob} for every knob consulted inside (first consultation wins)."""
    found: dict[str, Knob] = {}
    token = _RECORD.set(found)
    try:
        yield found
    finally:
        _RECORD.reset(token)


@contextmanager
def scope(prefix: str) -> Iterator[None]:
    """Knob names inside get `prefix` (one kernel with two anchors tunes each separately)."""
    token = _PREFIX.set(prefix)
    try:
        yield
    finally:
        _PREFIX.reset(token)


def describe(values: dict[str, Any]) -> str:
    """'gemm.rows=4, gemm.unroll_k=2' (sorted, for notes and logs)."""
    return ", ".join(f"{k}={values[k]}" for k in sorted(values))
