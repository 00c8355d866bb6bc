"""Print and parse graphc IR text. One grammar, two directions; print(parse(print(g))) == print(g).

    graph @cnn(%x: f32[64,1,28,28]) {
      %w0 = const f32[32,1,3,3] #3fa2c1d4e5f6
      %0 = const f32[] 2.0
      %1: f32[64,32,28,28] = conv2d(%x, %w0) {dilation=[1,1], groups=1, pad=[1,1,1,1], stride=[1,1]}
      %2: f32[64,16,28,28], %3: f32[64,16,28,28] = split(%1) {axis=1, sections=[16,16]} loc("/split")
      %4: f32[64,16,28,28] = fused[elementwise](%2, %3) {
        graph @body(%a: f32[64,16,28,28], %b: f32[64,16,28,28]) {
          %0: f32[64,16,28,28] = add(%a, %b)
          return %0
        }
      }
      return %4 as logits
    }

Values: graph inputs and named constants (parameters) keep their names; node
results and unnamed constants are numbered in order so diffs stay clean. Names that are not plain identifiers are
quoted (``%"input:0"``). Constants with at most 16 elements are printed inline;
larger ones print their content hash and the parser takes them from a pool
(``graph.constants()``).
"""
from __future__ import annotations

import json
import math
import re
from typing import Any

import numpy as np

from . import dtypes
from .errors import ParseError
from .ir import Graph, GraphBuilder, Node, TensorType, Value

INLINE_CONST_MAX = 16
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]*$|^[0-9]+$")
_AUTO_NUMBER = re.compile(r"^[0-9]+$")


# ---------------------------------------------------------------------------------------
# printing
# ---------------------------------------------------------------------------------------
def _fmt_name(name: str) -> str:
    return "%" + (name if _IDENT.match(name) else json.dumps(name))


def _fmt_scalar(v: Any) -> str:
    if isinstance(v, (bool, np.bool_)):
        return "true" if v else "false"
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        f = float(v)
        if math.isnan(f):
            return "nan"
        if math.isinf(f):
            return "inf" if f > 0 else "-inf"
        return repr(f)
    raise TypeError(f"not a scalar: {v!r}")


def format_attr(v: Any) -> str:
    if v is None:
        return "none"
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(format_attr(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k}={format_attr(v[k])}" for k in sorted(v)) + "}"
    return _fmt_scalar(v)


def _fmt_attrs(attrs: dict) -> str:
    if not attrs:
        return ""
    return " {" + ", ".join(f"{k}={format_attr(attrs[k])}" for k in sorted(attrs)) + "}"


def _fmt_const_data(node: Node) -> str:
    arr = node.data
    if arr.size > INLINE_CONST_MAX:
        return "#" + node.data_hash()
    flat = [_fmt_scalar(x) for x in arr.reshape(-1).tolist()] if arr.dtype.kind != "V" else []
    if arr.ndim == 0:
        return flat[0]
    return "[" + ", ".join(flat) + "]"


class _Namer:
    """Assigns printed names: inputs and constants keep theirs, results are numbered."""

    def __init__(self, graph: Graph):
        self.names: dict[Value, str] = {}
        taken: set[str] = set()
        for v in graph.inputs:
            self.names[v] = self._unique(v.name or "in", taken)
        for node in graph.nodes:  # named constants (parameters) keep their names
            if node.op == "const":
                v = node.outputs[0]
                if v.name and not _AUTO_NUMBER.match(v.name):
                    self.names[v] = self._unique(v.name, taken)
        counter = 0  # everything else, unnamed constants included, is numbered in order
        for node in graph.nodes:
            for v in node.outputs:
                if v in self.names:
                    continue
                while str(counter) in taken:
                    counter += 1
                self.names[v] = str(counter)
                taken.add(str(counter))
                counter += 1

    @staticmethod
    def _unique(name: str, taken: set[str]) -> str:
        base, i = name, 1
        while name in taken:
            name = f"{base}_{i}"
            i += 1
        taken.add(name)
        return name

    def __call__(self, v: Value) -> str:
        return _fmt_name(self.names[v])


def print_graph(graph: Graph, indent: int = 0) -> str:
    pad = "  " * indent
    name = _Namer(graph)
    lines = []
    args = ", ".join(f"{name(v)}: {v.type}" for v in graph.inputs)
    lines.append(f"{pad}graph @{graph.name}({args}) {{")
    for node in graph.nodes:
        lines.append(_print_node(node, name, indent + 1))
    rets = []
    for i, v in enumerate(graph.outputs):
        r = name(v)
        if graph.output_names is not None:
            out_name = graph.output_names[i]
            r += " as " + (out_name if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", out_name) else json.dumps(out_name))
        rets.append(r)
    lines.append(f"{pad}  return {', '.join(rets)}")
    lines.append(f"{pad}}}")
    return "\n".join(lines)


def _print_node(node: Node, name: _Namer, indent: int) -> str:
    pad = "  " * indent
    loc = f" loc({json.dumps(node.loc)})" if node.loc else ""
    if node.op == "const":
        return f"{pad}{name(node.outputs[0])} = const {node.outputs[0].type} {_fmt_const_data(node)}{loc}"
    results = ", ".join(f"{name(v)}: {v.type}" for v in node.outputs)
    args = ", ".join(name(v) for v in node.inputs)
    if node.op == "fused":
        attrs = {k: v for k, v in node.attrs.items() if k != "kind"}
        head = f"{pad}{results} = fused[{node.attrs.get('kind', '')}]({args}){_fmt_attrs(attrs)}{loc} {{"
        return "\n".join([head, print_graph(node.body, indent + 1), f"{pad}}}"])
    return f"{pad}{results} = {node.op}({args}){_fmt_attrs(node.attrs)}{loc}"


# ---------------------------------------------------------------------------------------
# parsing
# ---------------------------------------------------------------------------------------
_TOKEN = re.compile(
    r"""
    (?P<ws>[ \t\r\n]+|//[^\n]*)
  | (?P<str>"(?:[^"\\]|\\.)*")
  | (?P<hash>\#[0-9a-fA-F]+)
  | (?P<var>%(?:[A-Za-z0-9_.\-]+|"(?:[^"\\]|\\.)*"))
  | (?P<gname>@[A-Za-z_][A-Za-z0-9_.\-]*)
  | (?P<num>-?(?:inf|nan)\b|-?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?)
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<punct>[{}()\[\],=:])
    """,
    re.VERBOSE,
)


class _Tokens:
    def __init__(self, text: str):
        self.toks: list[tuple[str, str, int, int]] = []
        pos, line, line_start = 0, 1, 0
        while pos < len(text):
            m = _TOKEN.match(text, pos)
            if not m:
                raise ParseError(f"unexpected character {text[pos]!r}", line, pos - line_start + 1)
            kind = m.lastgroup
            val = m.group()
            if kind != "ws":
                self.toks.append((kind, val, line, pos - line_start + 1))
            nl = val.count("\n")
            if nl:
                line += nl
                line_start = pos + val.rindex("\n") + 1
            pos = m.end()
        self.i = 0

    def peek(self, k: int = 0):
        j = self.i + k
        return self.toks[j] if j < len(self.toks) else ("eof", "", self.toks[-1][2] if self.toks else 1, 0)

    def next(self):
        t = self.peek()
        self.i += 1
        return t

    def error(self, msg: str, tok=None):
        tok = tok or self.peek()
        return ParseError(f"{msg}, got {tok[1]!r}" if tok[0] != "eof" else f"{msg}, got end of input", tok[2], tok[3])

    def expect(self, value: str | None = None, kind: str | None = None):
        t = self.peek()
        if (value is not None and t[1] != value) or (kind is not None and t[0] != kind):
            raise self.error(f"expected {value or kind}")
        return self.next()

    def accept(self, value: str) -> bool:
        if self.peek()[1] == value and self.peek()[0] in ("punct", "ident"):
            self.i += 1
            return True
        return False


def _unquote_var(tok: str) -> str:
    body = tok[1:]
    return json.loads(body) if body.startswith('"') else body


def _parse_number(s: str) -> int | float:
    if s in ("inf", "-inf", "nan", "-nan"):
        return float(s)
    if re.fullmatch(r"-?\d+", s):
        return int(s)
    return float(s)


def _parse_type(t: _Tokens) -> TensorType:
    tok = t.expect(kind="ident")
    if tok[1] not in dtypes.DTYPES:
        raise ParseError(f"unknown dtype {tok[1]!r}", tok[2], tok[3])
    t.expect("[")
    shape = []
    while t.peek()[1] != "]":
        num = t.expect(kind="num")
        shape.append(int(num[1]))
        if not t.accept(","):
            break
    t.expect("]")
    return TensorType(tok[1], tuple(shape))


def _parse_attr_value(t: _Tokens):
    kind, val, line, col = t.peek()
    if kind == "str":
        t.next()
        return json.loads(val)
    if kind == "num":
        t.next()
        return _parse_number(val)
    if kind == "ident" and val in ("true", "false", "none", "inf", "nan"):
        t.next()
        return {"true": True, "false": False, "none": None, "inf": math.inf, "nan": math.nan}[val]
    if val == "[":
        t.next()
        items = []
        while t.peek()[1] != "]":
            items.append(_parse_attr_value(t))
            if not t.accept(","):
                break
        t.expect("]")
        return tuple(items)
    if val == "{":
        return _parse_attr_dict(t)
    raise t.error("expected an attribute value")


def _parse_attr_dict(t: _Tokens) -> dict:
    t.expect("{")
    attrs = {}
    while t.peek()[1] != "}":
        key = t.expect(kind="ident")[1]
        t.expect("=")
        attrs[key] = _parse_attr_value(t)
        if not t.accept(","):
            break
    t.expect("}")
    return attrs


def parse_graph(text: str, constants: dict[str, np.ndarray] | None = None) -> Graph:
    """Parse IR text. Large constants print as ``#hash``; pass ``constants`` (hash -> array)."""
    t = _Tokens(text)
    g = _parse_graph(t, constants or {})
    if t.peek()[0] != "eof":
        raise t.error("expected end of input")
    return g


def _parse_graph(t: _Tokens, constants: dict[str, np.ndarray]) -> Graph:
    t.expect("graph")
    gname = t.expect(kind="gname")[1][1:]
    b = GraphBuilder(gname)
    env: dict[str, Value] = {}

    def define(tok, value: Value):
        name = _unquote_var(tok[1])
        if name in env:
            raise ParseError(f"value %{name} defined twice", tok[2], tok[3])
        env[name] = value

    def use():
        tok = t.expect(kind="var")
        name = _unquote_var(tok[1])
        if name not in env:
            raise ParseError(f"use of undefined value %{name}", tok[2], tok[3])
        return env[name]

    t.expect("(")
    while t.peek()[1] != ")":
        tok = t.expect(kind="var")
        t.expect(":")
        v = b.input(_unquote_var(tok[1]), _parse_type(t))
        define(tok, v)
        if not t.accept(","):
            break
    t.expect(")")
    t.expect("{")
    while True:
        if t.peek()[1] == "return":
            break
        _parse_statement(t, b, constants, define, use)
    t.expect("return")
    outputs, out_names = [], []
    while True:
        outputs.append(use())
        if t.accept("as"):
            tok = t.next()
            if tok[0] not in ("ident", "str"):
                raise t.error("expected an output name after `as`", tok)
            out_names.append(json.loads(tok[1]) if tok[0] == "str" else tok[1])
        if not t.accept(","):
            break
    t.expect("}")
    if out_names and len(out_names) != len(outputs):
        raise t.error("either every returned value is named with `as` or none is")
    return b.build(outputs, out_names or None, prune_dead=False)


def _parse_loc(t: _Tokens) -> str | None:
    if t.peek()[1] == "loc" and t.peek()[0] == "ident":
        t.next()
        t.expect("(")
        s = json.loads(t.expect(kind="str")[1])
        t.expect(")")
        return s
    return None


def _parse_statement(t: _Tokens, b: GraphBuilder, constants, define, use) -> None:
    results = []
    first = t.expect(kind="var")
    if t.peek()[1] == "=":  # `%c = const TYPE DATA`
        t.expect("=")
        t.expect("const")
        ty = _parse_type(t)
        text_hash = t.peek()[1][1:] if t.peek()[0] == "hash" else None
        arr = _parse_const_data(t, ty, constants)
        loc = _parse_loc(t)
        name = _unquote_var(first[1])
        v = b.const(arr, name=None if _AUTO_NUMBER.match(name) else name, share=False)
        v.node.loc = loc
        if arr.size > INLINE_CONST_MAX:  # read from the pool by its hash: no need to hash it again
            v.node._hash = text_hash
        define(first, v)
        return
    tok = first
    while True:
        t.expect(":")
        results.append((tok, _parse_type(t)))
        if not t.accept(","):
            break
        tok = t.expect(kind="var")
    t.expect("=")
    op_tok = t.expect(kind="ident")
    op = op_tok[1]
    kind = None
    if op == "fused":
        t.expect("[")
        kind = t.expect(kind="ident")[1]
        t.expect("]")
    t.expect("(")
    args = []
    while t.peek()[1] != ")":
        args.append(use())
        if not t.accept(","):
            break
    t.expect(")")
    attrs = {}
    if t.peek()[1] == "{" and not (t.peek(1)[1] == "graph"):
        attrs = _parse_attr_dict(t)
    loc = _parse_loc(t)
    body = None
    if op == "fused":
        attrs = {"kind": kind, **attrs}
        t.expect("{")
        body = _parse_graph(t, constants)
        t.expect("}")
    try:
        outs = b.emit(op, args, attrs, body=body, loc=loc)
    except Exception as e:
        from .errors import GraphcError

        if isinstance(e, GraphcError):
            raise ParseError(str(e), op_tok[2], op_tok[3]) from None
        raise
    if len(outs) != len(results):
        raise ParseError(f"{op} produces {len(outs)} results, the text binds {len(results)}", op_tok[2], op_tok[3])
    for (rtok, rty), v in zip(results, outs):
        if v.type != rty:
            raise ParseError(
                f"{op}: declared type {rty} of {rtok[1]} differs from the inferred {v.type}", rtok[2], rtok[3]
            )
        define(rtok, v)


def _parse_const_data(t: _Tokens, ty: TensorType, constants: dict[str, np.ndarray]) -> np.ndarray:
    tok = t.peek()
    if tok[0] == "hash":
        t.next()
        h = tok[1][1:]
        if h not in constants:
            raise ParseError(f"constant #{h} is not in the constant pool passed to the parser", tok[2], tok[3])
        arr = constants[h]
        if TensorType.of(arr) != ty:
            raise ParseError(f"constant #{h} is {TensorType.of(arr)}, declared {ty}", tok[2], tok[3])
        return arr
    if tok[1] == "[":
        vals = _parse_attr_value(t)
    else:
        vals = _parse_attr_value(t)
    arr = np.array(vals, dtype=ty.np_dtype).reshape(ty.shape)
    return arr
