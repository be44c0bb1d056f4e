"""Step conditions: a tiny expression language deciding at run time whether a step runs.

Conditions are parsed by a hand-written tokenizer and recursive-descent parser (never
``eval``) into a small immutable AST, so they can be stored, compared, printed back in
a canonical form, and evaluated against the workflow input and earlier step outputs
without ever raising on missing data.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple, TypeAlias, Union

__all__ = [
    "BoolOp",
    "Compare",
    "ConditionSyntaxError",
    "InputRef",
    "Literal",
    "Node",
    "StepRef",
    "conjunction",
    "disjunction",
    "equals_condition",
    "evaluate",
    "literal_text",
    "parse",
    "read_values",
    "references",
    "to_text",
]

COMPARE_OPS = ("===", "!==", "==", "!=", ">=", "<=", ">", "<")  # longest first: maximal munch
BOOL_OPS = ("&&", "||")
_PUNCTUATION = COMPARE_OPS + BOOL_OPS + ("(", ")")
_KINDS = {"&&": "and", "||": "or", "(": "(", ")": ")"}  # token kinds; comparisons are "op"
MAX_DEPTH = 100  # parenthesis nesting cap, keeps the recursive parser far from RecursionError

_TAG = re.compile(r"[A-Za-z0-9_.:-]+")
_SEGMENT = re.compile(r"[A-Za-z0-9_-]+")
_NUMBER = re.compile(r"-?[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?")
_OPEN, _CLOSE, _DOT_OR_CLOSE = re.compile(r"\{"), re.compile(r"\}"), re.compile(r"[.}]")
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_ESCAPES = {"'": "'", '"': '"', "\\": "\\", "n": "\n", "t": "\t", "r": "\r"}
_PRINT_ESCAPES = {"\\": "\\\\", "'": "\\'", "\n": "\\n", "\t": "\\t", "\r": "\\r"}


class ConditionSyntaxError(ValueError):
    """A malformed condition; ``str()`` shows the text with a caret under the 1-based column."""

    def __init__(self, message: str, text: str, column: int) -> None:
        super().__init__(message, text, column)  # full args keep the error picklable
        self.message = message
        self.text = text
        self.column = column

    def __str__(self) -> str:
        # Whitespace control characters would shift the caret, so show them as spaces.
        shown = self.text.translate({ord(c): " " for c in "\t\n\r\x0b\x0c"})
        return f"{self.message} at column {self.column}\n  {shown}\n  {' ' * (self.column - 1)}^"


@dataclass(frozen=True, eq=False)
class Literal:
    """A constant; equality is type-aware so ``true`` != ``1`` and ``1`` != ``1.0`` in the AST."""

    value: None | bool | int | float | str

    def __post_init__(self) -> None:
        literal_text(self.value)  # rejects values that could not be printed back

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Literal):
            return NotImplemented
        return type(self.value) is type(other.value) and self.value == other.value

    def __hash__(self) -> int:
        return hash((type(self.value).__name__, self.value))


def _check_ref(ref: InputRef | StepRef) -> None:
    """Refuse refs that would not print as valid syntax."""
    object.__setattr__(ref, "path", tuple(ref.path))
    bad = [s for s in ref.path if not isinstance(s, str) or not _SEGMENT.fullmatch(s)]
    if bad or (isinstance(ref, InputRef) and not ref.path):
        raise ValueError(f"invalid field path {ref.path!r}")


@dataclass(frozen=True)
class InputRef:
    """``$Input{a.b.0}``: a path into the workflow input."""

    path: tuple[str, ...]

    def __post_init__(self) -> None:
        _check_ref(self)


@dataclass(frozen=True)
class StepRef:
    """``$Step{tag}{a.b}``: a path into a step's output; an empty path means the whole output."""

    tag: str
    path: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.tag, str) or not _TAG.fullmatch(self.tag):
            raise ValueError(f"invalid step tag {self.tag!r}")
        _check_ref(self)


@dataclass(frozen=True)
class Compare:
    """``left op right``; the operator keeps its source spelling (``===`` stays ``===``)."""

    op: str
    left: Node
    right: Node

    def __post_init__(self) -> None:
        if self.op not in COMPARE_OPS:
            raise ValueError(f"unknown comparison operator {self.op!r}")


@dataclass(frozen=True)
class BoolOp:
    """``&&`` / ``||`` over two or more operands.

    Nested same-operator children are flattened on construction, so ``a && (b && c)``
    and ``(a && b) && c`` are the same tree and print identically; flat chains also keep
    recursion depth independent of how many conditions get combined.
    """

    op: str
    operands: tuple[Node, ...]

    def __post_init__(self) -> None:
        if self.op not in BOOL_OPS:
            raise ValueError(f"unknown boolean operator {self.op!r}")
        flat: list[Node] = []
        for operand in self.operands:
            if isinstance(operand, BoolOp) and operand.op == self.op:
                flat.extend(operand.operands)
            else:
                flat.append(operand)
        if len(flat) < 2:
            raise ValueError(f"{self.op} needs at least two operands")
        object.__setattr__(self, "operands", tuple(flat))


Node: TypeAlias = Union[Literal, InputRef, StepRef, Compare, BoolOp]  # noqa: UP007 - mypy reads this alias, not the | form
Ref: TypeAlias = InputRef | StepRef


class _Token(NamedTuple):
    kind: str  # "op", "and", "or", "(", ")", "value", "word", "eof"
    text: str
    pos: int  # 0-based offset into the source
    value: object = None  # parsed Literal / Ref for "value" tokens


def _error(message: str, text: str, pos: int) -> ConditionSyntaxError:
    return ConditionSyntaxError(message, text, pos + 1)


def _found(text: str, pos: int) -> str:
    return "end of input" if pos >= len(text) else repr(text[pos])


def _take(text: str, pos: int, pattern: re.Pattern[str], what: str) -> re.Match[str]:
    m = pattern.match(text, pos)
    if not m:
        raise _error(f"expected {what} but found {_found(text, pos)}", text, pos)
    return m


def _scan_ref(text: str, start: int) -> tuple[Ref, int]:
    """Scan ``$Input{path}`` or ``$Step{tag}`` / ``$Step{tag}{path}`` starting at the ``$``."""
    m = _WORD.match(text, start + 1)
    name = m.group() if m else ""
    if name not in ("Step", "Input"):
        raise _error(f"unknown reference '${name}' (expected $Step or $Input)", text, start)
    pos = start + 1 + len(name)
    tag = ""
    if name == "Step":
        pos = _take(text, pos, _OPEN, "'{'").end()
        tag = _take(text, pos, _TAG, "a step tag").group()
        pos = _take(text, pos + len(tag), _CLOSE, "'}'").end()
    segments: list[str] = []
    if name == "Input" or text.startswith("{", pos):
        pos = _take(text, pos, _OPEN, "'{'").end()
        while True:
            segments.append(_take(text, pos, _SEGMENT, "a field name").group())
            sep = _take(text, pos + len(segments[-1]), _DOT_OR_CLOSE, "'.' or '}'")
            pos = sep.end()
            if sep.group() == "}":
                break
    path = tuple(segments)
    return (StepRef(tag, path) if name == "Step" else InputRef(path)), pos


def _scan_string(text: str, start: int) -> tuple[str, int]:
    quote, pos = text[start], start + 1
    chars: list[str] = []
    while pos < len(text):
        c = text[pos]
        if c == quote:
            return "".join(chars), pos + 1
        if c == "\\":
            esc = text[pos + 1] if pos + 1 < len(text) else ""
            if esc not in _ESCAPES:
                raise _error(f"invalid escape '\\{esc}' in string", text, pos)
            chars.append(_ESCAPES[esc])
            pos += 2
        else:
            chars.append(c)
            pos += 1
    raise _error("unterminated string", text, start)


def _number(text: str, m: re.Match[str]) -> int | float:
    raw = m.group()
    try:
        value: int | float = float(raw) if m.group(1) or m.group(2) else int(raw)
    except ValueError:  # int() refuses very long digit strings
        raise _error("number is too long", text, m.start()) from None
    if isinstance(value, float) and not math.isfinite(value):
        raise _error("number is out of range", text, m.start())
    return value


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    pos = 0
    while pos < len(text):
        c = text[pos]
        if c in " \t\r\n":
            pos += 1
            continue
        start = pos
        op = next((o for o in _PUNCTUATION if text.startswith(o, pos)), None)
        if op is not None:
            tokens.append(_Token(_KINDS.get(op, "op"), op, start))
            pos += len(op)
            continue
        if c == "$":
            value: object
            value, pos = _scan_ref(text, start)
        elif c in "'\"":
            s, pos = _scan_string(text, start)
            value = Literal(s)
        elif (m := _NUMBER.match(text, pos)) is not None:
            value, pos = Literal(_number(text, m)), m.end()
        elif (m := _WORD.match(text, pos)) is not None:
            word, pos = m.group(), m.end()
            if word not in ("true", "false", "null"):
                tokens.append(_Token("word", word, start))
                continue
            value = Literal({"true": True, "false": False, "null": None}[word])
        else:
            raise _error(f"unexpected character {c!r}", text, pos)
        tokens.append(_Token("value", text[start:pos], start, value))
    tokens.append(_Token("eof", "", len(text)))
    return tokens


class _Parser:
    """Grammar: or := and ('||' and)* ; and := cmp ('&&' cmp)* ; cmp := atom (OP atom)? ;
    atom := literal | ref | '(' or ')'."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokenize(text)
        self.index = 0
        self.depth = 0

    def next(self) -> _Token:
        token = self.tokens[self.index]
        if token.kind != "eof":
            self.index += 1
        return token

    def unexpected(self, token: _Token) -> ConditionSyntaxError:
        if token.kind == "eof":
            return _error("unexpected end of input", self.text, token.pos)
        shown = token.text if len(token.text) <= 30 else token.text[:27] + "..."
        hint = " (strings need quotes)" if token.kind == "word" else ""
        return _error(f"unexpected token '{shown}'{hint}", self.text, token.pos)

    def parse(self) -> Node:
        if self.tokens[0].kind == "eof":
            raise _error("empty condition", self.text, 0)
        node = self.parse_bool()
        token = self.tokens[self.index]
        if token.kind != "eof":
            raise self.unexpected(token)
        return node

    def parse_bool(self, level: int = 0) -> Node:
        """Level 0 parses ``||`` chains of level 1, which parses ``&&`` chains of comparisons."""
        kind, op = (("or", "||"), ("and", "&&"))[level]
        parse_operand = self.parse_compare if level else lambda: self.parse_bool(1)
        operands = [parse_operand()]
        while self.tokens[self.index].kind == kind:
            self.next()
            operands.append(parse_operand())
        return operands[0] if len(operands) == 1 else BoolOp(op, tuple(operands))

    def parse_compare(self) -> Node:
        left = self.parse_atom()
        if self.tokens[self.index].kind != "op":
            return left
        op = self.next().text
        node = Compare(op, left, self.parse_atom())
        if self.tokens[self.index].kind == "op":
            pos = self.tokens[self.index].pos
            raise _error("comparisons cannot be chained; add parentheses", self.text, pos)
        return node

    def parse_atom(self) -> Node:
        token = self.next()
        if token.kind == "value":
            return token.value  # type: ignore[return-value]
        if token.kind != "(":
            raise self.unexpected(token)
        if self.depth >= MAX_DEPTH:
            raise _error(f"parentheses nested deeper than {MAX_DEPTH}", self.text, token.pos)
        self.depth += 1
        node = self.parse_bool()
        self.depth -= 1
        close = self.next()
        if close.kind == ")":
            return node
        if close.kind == "eof":
            raise _error("unclosed '('", self.text, token.pos)
        raise _error(f"expected ')' but found '{close.text}'", self.text, close.pos)


def parse(text: str) -> Node:
    """Parse condition text into an AST; raises only ConditionSyntaxError on bad input."""
    return _Parser(text).parse()


def literal_text(value: object) -> str:
    """Render a Python scalar as condition literal text (True -> 'true', 'a' -> "'a'")."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"conditions cannot hold the non-finite number {value!r}")
        return repr(value)  # shortest round-tripping form; exponents are valid syntax
    if isinstance(value, str):
        return "'" + "".join(_PRINT_ESCAPES.get(c, c) for c in value) + "'"
    raise TypeError(f"conditions cannot hold a {type(value).__name__} literal")


def to_text(node: Node) -> str:
    """Canonical text: single spaces around operators, minimal parentheses, '-quoted strings."""
    if isinstance(node, Literal):
        return literal_text(node.value)
    if isinstance(node, InputRef):
        return "$Input{" + ".".join(node.path) + "}"
    if isinstance(node, StepRef):
        path = "{" + ".".join(node.path) + "}" if node.path else ""
        return "$Step{" + node.tag + "}" + path
    if isinstance(node, Compare):
        # Comparisons do not chain, so any compound operand needs parentheses.
        sides = [
            f"({to_text(s)})" if isinstance(s, (Compare, BoolOp)) else to_text(s)
            for s in (node.left, node.right)
        ]
        return f"{sides[0]} {node.op} {sides[1]}"
    if isinstance(node, BoolOp):
        # Operands are never the same operator (flattened), so only || under && needs parens.
        parts = [
            f"({to_text(o)})" if isinstance(o, BoolOp) and node.op == "&&" else to_text(o)
            for o in node.operands
        ]
        return f" {node.op} ".join(parts)
    raise TypeError(f"not a condition node: {node!r}")


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _resolve(value: object, path: tuple[str, ...]) -> object:
    """Walk a path; anything missing along the way reads as None rather than raising."""
    for segment in path:
        if not isinstance(value, (Mapping, list)) and callable(getattr(value, "to_dict", None)):
            value = value.to_dict()  # type: ignore[attr-defined]
        if isinstance(value, Mapping):
            value = value.get(segment)
        elif isinstance(value, (list, tuple)) and segment.isdigit():
            index = int(segment)
            value = value[index] if index < len(value) else None
        else:
            return None
    return value


def _read(ref: Ref, input: object, steps: Mapping[str, object] | None) -> object:
    if isinstance(ref, InputRef):
        return _resolve(input, ref.path)
    if steps is None or ref.tag not in steps:
        return None
    return _resolve(steps[ref.tag], ref.path)


def _json_equal(a: object, b: object) -> bool:
    """JSON-style equality: no bool/number or str/number coercion, but 1 == 1.0."""
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if _is_number(a) or _is_number(b):
        return _is_number(a) and _is_number(b) and a == b
    if isinstance(a, str) or isinstance(b, str):
        return isinstance(a, str) and isinstance(b, str) and a == b
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return a.keys() == b.keys() and all(_json_equal(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_json_equal(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


_ORDER = {">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le}


def _compare(op: str, a: object, b: object) -> bool:
    if op in ("==", "==="):
        return _json_equal(a, b)
    if op in ("!=", "!=="):
        return not _json_equal(a, b)
    if (_is_number(a) and _is_number(b)) or (isinstance(a, str) and isinstance(b, str)):
        return bool(_ORDER[op](a, b))  # type: ignore[arg-type]  # both numbers or both strings, checked above
    return False  # mixed types and null never order


def _value(node: Node, input: object, steps: Mapping[str, object] | None) -> object:
    if isinstance(node, Literal):
        return node.value
    if isinstance(node, (InputRef, StepRef)):
        return _read(node, input, steps)
    if isinstance(node, Compare):
        return _compare(node.op, _value(node.left, input, steps), _value(node.right, input, steps))
    if isinstance(node, BoolOp):
        truths = (bool(_value(o, input, steps)) for o in node.operands)
        return all(truths) if node.op == "&&" else any(truths)  # generators short-circuit
    raise TypeError(f"not a condition node: {node!r}")


def evaluate(node: Node, input: object, steps: Mapping[str, object]) -> bool:
    """Decide the condition; bare operands count by Python truthiness."""
    return bool(_value(node, input, steps))


def _refs(node: Node) -> list[Ref]:
    if isinstance(node, (InputRef, StepRef)):
        return [node]
    children = getattr(node, "operands", ())
    if isinstance(node, Compare):
        children = (node.left, node.right)
    return [r for child in children for r in _refs(child)]


def references(node: Node) -> list[str]:
    """Operand texts the condition reads, in source order, without duplicates."""
    return list(dict.fromkeys(to_text(r) for r in _refs(node)))


def read_values(node: Node, input: object, steps: Mapping[str, object]) -> dict[str, object]:
    """Operand text -> value, for recording why a condition went the way it did.

    Every operand is read, including ones short-circuiting skipped, so the record is
    complete; reading has no side effects.
    """
    return {to_text(r): _read(r, input, steps) for r in _refs(node)}


def _combine(op: str, nodes: Sequence[Node], empty: bool) -> Node:
    nodes = tuple(nodes)
    if not nodes:
        return Literal(empty)
    return nodes[0] if len(nodes) == 1 else BoolOp(op, nodes)


def conjunction(nodes: Sequence[Node]) -> Node:
    """``&&`` of the nodes, for combining override fields; one node is itself, none is true."""
    return _combine("&&", nodes, True)


def disjunction(nodes: Sequence[Node]) -> Node:
    """``||`` of the nodes, for merging scenarios; one node is itself, none is false."""
    return _combine("||", nodes, False)


def equals_condition(operand_text: str, value: object) -> Node:
    """``<operand> == <literal>``, e.g. to pin a scenario to one input value."""
    operand = parse(operand_text)
    if not isinstance(operand, (InputRef, StepRef)):
        raise ValueError(f"expected a $Input or $Step reference, got {operand_text!r}")
    return Compare("==", operand, Literal(value))  # type: ignore[arg-type]  # Literal checks the value itself
