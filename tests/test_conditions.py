"""Tests for the step-condition language: parsing, canonical printing, evaluation, errors."""

from __future__ import annotations

import pickle
from collections.abc import Callable, Iterator, Mapping

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ductape_cli.conditions import (
    BOOL_OPS,
    COMPARE_OPS,
    BoolOp,
    Compare,
    ConditionSyntaxError,
    InputRef,
    Literal,
    Node,
    StepRef,
    conjunction,
    disjunction,
    equals_condition,
    evaluate,
    literal_text,
    parse,
    read_values,
    references,
    to_text,
)

A, B, C = InputRef(("a",)), InputRef(("b",)), InputRef(("c",))

# ----------------------------------------------------------------- spec examples

SPEC_EXAMPLES = [
    ("$Step{validate}{available} == true", "$Step{validate}{available} == true"),
    ("$Input{type} == 'premium'", "$Input{type} == 'premium'"),
    (
        "$Step{score}{value} >= 80 && $Input{role} != 'guest'",
        "$Step{score}{value} >= 80 && $Input{role} != 'guest'",
    ),
    (
        "($Input{region} == 'eu') || ($Input{region} == 'uk')",
        "$Input{region} == 'eu' || $Input{region} == 'uk'",
    ),
    ("$Step{validate}{valid} == true", "$Step{validate}{valid} == true"),
    ("$Input{status} != 'draft'", "$Input{status} != 'draft'"),
    ("$Input{count} <= 100", "$Input{count} <= 100"),
]
SCORE = SPEC_EXAMPLES[2][0]


@pytest.mark.parametrize(("text", "canonical"), SPEC_EXAMPLES)
def test_spec_examples_parse_and_print_canonically(text: str, canonical: str) -> None:
    node = parse(text)
    assert to_text(node) == canonical
    assert parse(canonical) == node
    assert to_text(parse(canonical)) == canonical


@pytest.mark.parametrize(
    ("text", "input", "steps", "expected"),
    [
        ("$Step{validate}{available} == true", {}, {"validate": {"available": True}}, True),
        ("$Step{validate}{available} == true", {}, {"validate": {"available": False}}, False),
        ("$Step{validate}{available} == true", {}, {"validate": {"available": 1}}, False),
        ("$Step{validate}{available} == true", {}, {}, False),
        ("$Input{type} == 'premium'", {"type": "premium"}, {}, True),
        ("$Input{type} == 'premium'", {"type": "basic"}, {}, False),
        ("$Input{type} == 'premium'", {}, {}, False),
        (SCORE, {"role": "admin"}, {"score": {"value": 80}}, True),
        (SCORE, {"role": "admin"}, {"score": {"value": 79.5}}, False),
        (SCORE, {"role": "guest"}, {"score": {"value": 95}}, False),
        (SCORE, {}, {"score": {"value": 95}}, True),
        ("($Input{region} == 'eu') || ($Input{region} == 'uk')", {"region": "eu"}, {}, True),
        ("($Input{region} == 'eu') || ($Input{region} == 'uk')", {"region": "uk"}, {}, True),
        ("($Input{region} == 'eu') || ($Input{region} == 'uk')", {"region": "us"}, {}, False),
        ("($Input{region} == 'eu') || ($Input{region} == 'uk')", {}, {}, False),
        ("$Step{validate}{valid} == true", {}, {"validate": {"valid": True}}, True),
        ("$Step{validate}{valid} == true", {}, {"validate": None}, False),
        ("$Input{status} != 'draft'", {"status": "draft"}, {}, False),
        ("$Input{status} != 'draft'", {"status": "published"}, {}, True),
        ("$Input{status} != 'draft'", {}, {}, True),
        ("$Input{count} <= 100", {"count": 100}, {}, True),
        ("$Input{count} <= 100", {"count": 100.5}, {}, False),
        ("$Input{count} <= 100", {"count": "50"}, {}, False),
        ("$Input{count} <= 100", {}, {}, False),
    ],
)
def test_spec_examples_evaluate(text: str, input: object, steps: dict, expected: bool) -> None:
    assert evaluate(parse(text), input, steps) is expected


# ----------------------------------------------------------------- structure and printing


def test_and_binds_tighter_than_or() -> None:
    node = parse("$Input{a} || $Input{b} && $Input{c}")
    assert node == BoolOp("||", (A, BoolOp("&&", (B, C))))
    # (a || b) && c would be false here; a || (b && c) is true.
    assert evaluate(node, {"a": True, "b": True, "c": False}, {}) is True
    grouped = parse("($Input{a} || $Input{b}) && $Input{c}")
    assert grouped == BoolOp("&&", (BoolOp("||", (A, B)), C))
    assert to_text(grouped) == "($Input{a} || $Input{b}) && $Input{c}"
    assert evaluate(grouped, {"a": True, "b": True, "c": False}, {}) is False


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("$Input{a}&&($Input{b}&&$Input{c})", "$Input{a} && $Input{b} && $Input{c}"),
        ("(($Input{a}))", "$Input{a}"),
        ("$Input{a} || ($Input{b} && $Input{c})", "$Input{a} || $Input{b} && $Input{c}"),
        ("($Input{a} == 1) == true", "($Input{a} == 1) == true"),
        ("($Input{a} && $Input{b}) != false", "($Input{a} && $Input{b}) != false"),
        ("$Input{a}===1", "$Input{a} === 1"),
        ("$Input{a}  !==  'x'", "$Input{a} !== 'x'"),
        ("\t$Step{s}\n", "$Step{s}"),
        ('"it\'s"', "'it\\'s'"),
        ("'it\\'s'", "'it\\'s'"),
        ('"say \\"hi\\""', "'say \"hi\"'"),
        ("'back\\\\slash'", "'back\\\\slash'"),
        ("'line\\nbreak'", "'line\\nbreak'"),
        ("-5 < 3.25", "-5 < 3.25"),
        ("1e3 == 1000", "1000.0 == 1000"),
        ("null == false", "null == false"),
        ("$Step{my-step_1.v2:x}{a.b}", "$Step{my-step_1.v2:x}{a.b}"),
    ],
)
def test_canonical_printing(text: str, canonical: str) -> None:
    node = parse(text)
    assert to_text(node) == canonical
    assert parse(canonical) == node


def test_flattening_makes_grouping_of_same_operator_irrelevant() -> None:
    right = parse("$Input{a} && ($Input{b} && $Input{c})")
    assert right == parse("($Input{a} && $Input{b}) && $Input{c}")
    assert BoolOp("||", (A, BoolOp("||", (B, C)))).operands == (A, B, C)


def test_strict_operator_spelling_is_preserved() -> None:
    assert parse("$Input{a} === 1") == Compare("===", A, Literal(1))
    assert parse("$Input{a} === 1") != parse("$Input{a} == 1")
    assert to_text(parse("$Input{a} !== 1")) == "$Input{a} !== 1"


def test_literal_equality_in_ast_is_type_aware() -> None:
    assert parse("true") != parse("1")
    assert parse("1") != parse("1.0")
    assert parse("1") == Literal(1)
    assert parse("-2.5") == Literal(-2.5)
    assert parse("'x'") == parse('"x"')


# ----------------------------------------------------------------- semantics


@pytest.mark.parametrize(
    ("left", "op", "right", "expected"),
    [
        (1, "==", 1.0, True),
        (1, "===", 1.0, True),
        (True, "==", 1, False),
        (False, "==", 0, False),
        ("1", "==", 1, False),
        ("a", "==", "a", True),
        (None, "==", None, True),
        (None, "==", False, False),
        (None, "!=", None, False),
        (True, "!=", 1, True),
        (1, "!=", 2, True),
        (1, "!==", 1, False),
        (2, ">", 1, True),
        (2, ">", 2, False),
        (2, ">=", 2, True),
        (1, "<", 1.5, True),
        (1.5, "<=", 1, False),
        ("b", ">", "a", True),
        ("a", "<=", "a", True),
        ("5", ">", 3, False),
        ("5", "<", 3, False),
        (3, "<", "5", False),
        (None, "<", 1, False),
        (None, ">=", None, False),
        (True, ">", False, False),
        (1, ">", True, False),
    ],
)
def test_each_operator(left: object, op: str, right: object, expected: bool) -> None:
    text = f"{literal_text(left)} {op} {literal_text(right)}"
    assert evaluate(parse(text), {}, {}) is expected
    # Same result when the values come from data instead of literals.
    node = parse(f"$Input{{l}} {op} $Step{{s}}{{r}}")
    assert evaluate(node, {"l": left}, {"s": {"r": right}}) is expected


@pytest.mark.parametrize(
    ("left", "right", "expected"),
    [
        ({"a": [1, 2]}, {"a": [1.0, 2]}, True),
        ([True], [1], False),
        ({"a": 1}, {"a": 1, "b": 2}, False),
        ([1, 2], [2, 1], False),
        ([], [], True),
        ({}, [], False),
    ],
)
def test_structured_values_compare_like_json(left: object, right: object, expected: bool) -> None:
    node = parse("$Input{x} == $Step{s}")
    assert evaluate(node, {"x": left}, {"s": right}) is expected
    assert evaluate(parse("$Input{x} != $Step{s}"), {"x": left}, {"s": right}) is not expected
    assert evaluate(parse("$Input{x} > $Step{s}"), {"x": left}, {"s": right}) is False


@pytest.mark.parametrize(
    ("ref", "input", "steps"),
    [
        ("$Input{missing}", {"a": 1}, {}),
        ("$Input{a.b}", {"a": 1}, {}),
        ("$Input{a.b}", {"a": "text"}, {}),
        ("$Input{a}", "not a dict", {}),
        ("$Input{a}", None, {}),
        ("$Input{items.3}", {"items": [1, 2, 3]}, {}),
        ("$Input{items.x}", {"items": [1, 2, 3]}, {}),
        ("$Input{items.-1}", {"items": [1, 2, 3]}, {}),
        ("$Step{never}", {}, {"other": 1}),
        ("$Step{never}{a.b}", {}, {}),
        ("$Step{s}{a}", {}, {"s": None}),
        ("$Step{s}{a}", {}, {"s": [1, 2]}),
        ("$Step{s}{a.0}", {}, {"s": {"a": {}}}),
    ],
)
def test_missing_paths_read_as_null(ref: str, input: object, steps: dict) -> None:
    assert evaluate(parse(f"{ref} == null"), input, steps) is True
    assert evaluate(parse(ref), input, steps) is False
    assert evaluate(parse(f"{ref} > 0"), input, steps) is False
    assert read_values(parse(ref), input, steps) == {ref: None}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("$Input{items.0.id} == 'x'", True),
        ("$Input{items.1.id} == 'y'", True),
        ("$Input{items.1.tags.0} == 'new'", True),
        ("$Input{meta.owner.name} == 'ann'", True),
        ("$Step{fetch}{rows.0.n} === 2", True),
        ("$Step{fetch}{rows.1} == null", True),
        ("$Step{fetch}{count} > 0", True),
        ("$Step{fetch}", True),
        ("$Step{empty}", False),
        ("$Input{0}", False),
    ],
)
def test_nested_paths_and_list_indices(text: str, expected: bool) -> None:
    input = {
        "items": [{"id": "x"}, {"id": "y", "tags": ["new"]}],
        "meta": {"owner": {"name": "ann"}},
    }
    steps = {"fetch": {"rows": [{"n": 2.0}], "count": 1}, "empty": {}}
    assert evaluate(parse(text), input, steps) is expected


def test_bare_operands_use_truthiness() -> None:
    node = parse("$Input{flag} || $Step{s}{items}")
    assert evaluate(node, {"flag": 0}, {"s": {"items": []}}) is False
    assert evaluate(node, {"flag": "yes"}, {}) is True
    assert evaluate(node, {}, {"s": {"items": [0]}}) is True
    assert evaluate(parse("true"), None, {}) is True
    assert evaluate(parse("null"), None, {}) is False


class _RecordingSteps(Mapping[str, object]):
    """A steps mapping that records which step outputs were looked at."""

    def __init__(self, data: dict[str, object]) -> None:
        self.data = data
        self.seen: list[object] = []

    def __getitem__(self, key: str) -> object:
        self.seen.append(key)
        return self.data[key]

    def __contains__(self, key: object) -> bool:
        self.seen.append(key)
        return key in self.data

    def __iter__(self) -> Iterator[str]:
        return iter(self.data)

    def __len__(self) -> int:
        return len(self.data)


def test_and_or_short_circuit() -> None:
    steps = _RecordingSteps({"a": {"x": 2}, "b": {"x": 1}})
    assert evaluate(parse("$Step{a}{x} == 1 && $Step{b}{x} == 1"), {}, steps) is False
    assert "b" not in steps.seen
    steps.seen.clear()
    assert evaluate(parse("$Step{a}{x} == 2 || $Step{b}{x} == 1"), {}, steps) is True
    assert "b" not in steps.seen


def test_input_with_to_dict() -> None:
    class Payload:
        def to_dict(self) -> dict[str, object]:
            return {"type": "premium", "n": [1]}

    assert evaluate(parse("$Input{type} == 'premium' && $Input{n.0} == 1"), Payload(), {}) is True


# ----------------------------------------------------------------- helpers


def test_references_and_read_values() -> None:
    node = parse(SCORE + " || $Step{score}{value} == 1")
    assert references(node) == ["$Step{score}{value}", "$Input{role}"]
    assert references(parse("1 == 1")) == []
    values = read_values(node, {"role": "admin"}, {"score": {"value": 91}})
    assert values == {"$Step{score}{value}": 91, "$Input{role}": "admin"}
    assert read_values(node, {}, {}) == {"$Step{score}{value}": None, "$Input{role}": None}


def test_conjunction_and_disjunction() -> None:
    x, y = parse("$Input{a} == 1"), parse("$Input{b} || $Input{c}")
    assert conjunction([x]) is x
    assert disjunction([y]) is y
    assert conjunction([]) == Literal(True)
    assert disjunction([]) == Literal(False)
    both = conjunction([x, y])
    assert to_text(both) == "$Input{a} == 1 && ($Input{b} || $Input{c})"
    assert parse(to_text(both)) == both
    either = disjunction([x, y])
    assert to_text(either) == "$Input{a} == 1 || $Input{b} || $Input{c}"
    assert evaluate(both, {"a": 1, "c": True}, {}) is True
    assert evaluate(both, {"a": 2, "c": True}, {}) is False
    assert evaluate(either, {"a": 2, "c": True}, {}) is True


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (True, "true"),
        (False, "false"),
        (None, "null"),
        (3, "3"),
        (-7, "-7"),
        (2.5, "2.5"),
        (1e20, "1e+20"),
        ("a", "'a'"),
        ("it's", "'it\\'s'"),
        ('"q"', "'\"q\"'"),
        ("a\\b", "'a\\\\b'"),
        ("", "''"),
    ],
)
def test_literal_text(value: object, text: str) -> None:
    assert literal_text(value) == text
    assert parse(text) == Literal(value)


@pytest.mark.parametrize(
    ("value", "error"),
    [([1], TypeError), ({}, TypeError), (float("nan"), ValueError), (float("inf"), ValueError)],
)
def test_literal_text_rejects_unprintable_values(value: object, error: type[Exception]) -> None:
    with pytest.raises(error):
        literal_text(value)


def test_equals_condition() -> None:
    assert equals_condition("$Input{type}", "a") == parse("$Input{type} == 'a'")
    assert equals_condition("$Step{s}{v.0}", None) == parse("$Step{s}{v.0} == null")
    assert to_text(equals_condition("$Input{n}", 3)) == "$Input{n} == 3"
    with pytest.raises(ValueError):
        equals_condition("'not a reference'", 1)
    with pytest.raises(ConditionSyntaxError):
        equals_condition("$Input{", 1)


@pytest.mark.parametrize(
    "build",
    [
        lambda: InputRef(()),
        lambda: InputRef(("a b",)),
        lambda: StepRef("bad tag"),
        lambda: StepRef("ok", ("",)),
        lambda: Compare("=", A, B),
        lambda: BoolOp("&&", (A,)),
        lambda: BoolOp("and", (A, B)),
        lambda: Literal([1]),
    ],
)
def test_invalid_nodes_are_refused(build: Callable[[], object]) -> None:
    with pytest.raises((ValueError, TypeError)):
        build()


# ----------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("text", "column", "message"),
    [
        ("$Input{a} == 'abc", 14, "unterminated string"),
        ('$Input{a} == "abc\\"', 14, "unterminated string"),
        ("== 1", 1, "unexpected token '=='"),
        ("$Step{x", 8, "expected '}' but found end of input"),
        ("$Step{x}{a", 11, "expected '.' or '}' but found end of input"),
        ("$Input{a} &&", 13, "unexpected end of input"),
        ("a &&", 1, "unexpected token 'a' (strings need quotes)"),
        ("($Input{a} == 1", 1, "unclosed '('"),
        ("($Input{a} == 1 $Input{b})", 17, "expected ')' but found '$Input{b}'"),
        ("$Input{a} == 1)", 15, "unexpected token ')'"),
        ("$Foo{x}", 1, "unknown reference '$Foo'"),
        ("$", 1, "unknown reference '$'"),
        ("1 == = 2", 6, "unexpected character '='"),
        ("", 1, "empty condition"),
        ("   ", 1, "empty condition"),
        ("$Input{a} == 1 == 2", 16, "cannot be chained"),
        ("($Input{a} == 1 == 2)", 17, "cannot be chained"),
        ("$Input{}", 8, "expected a field name"),
        ("$Input{a..b}", 10, "expected a field name"),
        ("$Input{a b}", 9, "expected '.' or '}'"),
        ("$Input", 7, "expected '{'"),
        ("$Step{}", 7, "expected a step tag"),
        ("'a\\q'", 3, "invalid escape"),
        ("$Input{a} & $Input{b}", 11, "unexpected character '&'"),
        ("!$Input{a}", 1, "unexpected character '!'"),
        ("$Input{a} == 1 $Input{b}", 16, "unexpected token '$Input{b}'"),
        ("$Input{a} == True", 14, "unexpected token 'True'"),
        ("()", 2, "unexpected token ')'"),
        ("$Step{s} == []", 13, "unexpected character '['"),
        ("- 5", 1, "unexpected character '-'"),
        ("1e999 > 1", 1, "out of range"),
        ("9" * 5000, 1, "too long"),
        ("(" * 101 + "1" + ")" * 101, 101, "nested deeper than 100"),
    ],
)
def test_malformed_conditions(text: str, column: int, message: str) -> None:
    with pytest.raises(ConditionSyntaxError) as info:
        parse(text)
    assert info.value.column == column
    assert message in info.value.message
    assert info.value.text == text


def test_nesting_up_to_the_cap_is_fine() -> None:
    assert parse("(" * 100 + "$Input{a}" + ")" * 100) == A


def test_caret_rendering() -> None:
    with pytest.raises(ConditionSyntaxError) as info:
        parse("$Input{a} == 1 && && $Input{b}")
    assert str(info.value) == (
        "unexpected token '&&' at column 19\n"
        "  $Input{a} == 1 && && $Input{b}\n"
        "                    ^"
    )
    with pytest.raises(ConditionSyntaxError) as info:
        parse("\t$Input{a} &&")
    assert str(info.value).splitlines() == [
        "unexpected end of input at column 14",
        "   $Input{a} &&",
        "               ^",
    ]


def test_error_type_and_pickling() -> None:
    err = ConditionSyntaxError("boom", "x y", 3)
    assert isinstance(err, ValueError)
    assert (err.message, err.text, err.column) == ("boom", "x y", 3)
    copy = pickle.loads(pickle.dumps(err))
    assert (copy.message, copy.text, copy.column) == ("boom", "x y", 3)
    assert str(copy) == str(err)


# ----------------------------------------------------------------- properties

CONDITION_ALPHABET = "$StepInput{}.()=!<>&|'\"\\ -0123456789eEtruefalsnb_:\t\n"


@settings(max_examples=200, deadline=None)
@given(st.text() | st.text(alphabet=CONDITION_ALPHABET, max_size=40))
def test_parse_arbitrary_text_raises_only_syntax_errors(text: str) -> None:
    try:
        node = parse(text)
    except ConditionSyntaxError as err:
        assert 1 <= err.column <= len(text) + 1
        assert err.message in str(err)
        return
    assert parse(to_text(node)) == node  # anything that parses survives the round trip


# Names come from small alphabets so generated refs often hit the fixed data below.
_names = st.text(alphabet="ab0_-", min_size=1, max_size=3)
_segments = st.lists(_names, min_size=1, max_size=3).map(tuple)
_finite = st.floats(allow_nan=False, allow_infinity=False)
_strings = st.text() | st.text("'\"\\\n\ta ")  # bias towards characters that need escaping
_literals = st.builds(Literal, st.none() | st.booleans() | st.integers() | _finite | _strings)
_leaves = (
    _literals
    | st.builds(InputRef, _segments)
    | st.builds(StepRef, st.text("s0_.:-", min_size=1, max_size=3), _segments | st.just(()))
)
_nodes: st.SearchStrategy[Node] = st.recursive(
    _leaves,
    lambda children: (
        st.builds(Compare, st.sampled_from(COMPARE_OPS), children, children)
        | st.builds(BoolOp, st.sampled_from(BOOL_OPS), st.tuples(children, children, children))
        | st.builds(BoolOp, st.sampled_from(BOOL_OPS), st.tuples(children, children))
    ),
    max_leaves=6,
)
# Fixed, type-diverse data: generating random JSON per example would double the run time.
_INPUT = {"a": {"b": [1, "x", None], "0": True}, "0": [{"a": 2.5}], "b": "s", "_": {}, "-": -1}
_STEPS = {"s": {"a": 1, "0": ["a"]}, "0": None, "s0": [{"b": False}], ":": "x", "_": 0.0}


@settings(max_examples=200, deadline=None)
@given(_nodes)
def test_random_asts_round_trip_and_evaluate(node: Node) -> None:
    text = to_text(node)
    reparsed = parse(text)
    assert reparsed == node
    assert to_text(reparsed) == text  # printing is idempotent
    assert isinstance(evaluate(node, _INPUT, _STEPS), bool)
    assert list(read_values(node, _INPUT, _STEPS)) == references(node)
