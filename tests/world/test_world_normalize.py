"""agentgym.world.normalize and agentgym.world.conditions."""

from __future__ import annotations

import math
import typing

import pytest

from agentgym.spec.tool import Condition
from agentgym.world.conditions import OPERATORS, Context, compare, evaluate, matches_all, resolve
from agentgym.world.normalize import canonical, canonical_text, get_path

# ---- canonical -------------------------------------------------------------------------------


def test_integral_float_becomes_int() -> None:
    assert canonical(3.0) == 3
    assert type(canonical(3.0)) is int
    assert type(canonical(-0.0)) is int and canonical(-0.0) == 0
    assert type(canonical(1e15)) is int and canonical(1e15) == 10**15
    assert type(canonical(7)) is int


def test_float_rounded_to_nine_significant_digits() -> None:
    assert canonical(0.1 + 0.2) == 0.3
    assert 0.1 + 0.2 != 0.3  # the premise
    assert canonical(1 / 3) == 0.333333333
    assert canonical(2.5) == 2.5
    assert canonical(123.4567891234) == 123.456789
    assert canonical(1e-12) == 1e-12


def test_non_finite_floats_pass_through() -> None:
    assert canonical(math.inf) == math.inf
    assert canonical(-math.inf) == -math.inf
    assert math.isnan(canonical(math.nan))


def test_bools_and_none_unchanged() -> None:
    assert canonical(True) is True
    assert canonical(False) is False
    assert canonical(None) is None


def test_strings_nfc_and_stripped() -> None:
    decomposed = "  Cafe\u0301\n"
    assert canonical(decomposed) == "Caf\u00e9"
    assert canonical("\tx y\t") == "x y"  # inner whitespace kept
    assert canonical("ABC") == "ABC"  # case kept


def test_dicts_drop_none_sort_keys_and_recurse() -> None:
    value = {"b": 1.0, "a": None, "c": {"z": None, "e": " x ", "d": [2.0, None, {"k": None, "j": 0.5}]}}
    out = canonical(value)
    assert out == {"b": 1, "c": {"d": [2, None, {"j": 0.5}], "e": "x"}}
    assert list(out) == ["b", "c"]
    assert list(out["c"]) == ["d", "e"]
    assert type(out["b"]) is int
    assert type(out["c"]["d"][0]) is int
    assert out["c"]["d"][1] is None  # None inside lists is kept


def test_tuples_become_lists() -> None:
    assert canonical((1.0, "a ")) == [1, "a"]
    assert isinstance(canonical((1,)), list)


def test_canonical_does_not_mutate_input() -> None:
    value = {"a": None, "b": [1.0]}
    canonical(value)
    assert value == {"a": None, "b": [1.0]}


# ---- canonical_text --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Hello   World\n", "hello world"),
        ("  MIXED\tCase  ", "mixed case"),
        ("$1,250.50", "1250.5"),  # currency symbols dropped
        ("€5 or £1,000 or ¥20", "5 or 1000 or 20"),
        ("1,250.50", "1250.5"),
        ("1250.5", "1250.5"),
        ("07:30", "7:30"),
        ("10.00", "10"),
        ("0.50", "0.5"),
        ("100", "100"),
        ("0", "0"),
        ("1,000,000 units", "1000000 units"),
        ("12,34", "12,34"),  # not a thousands group
        ("v1.2", "v1.2"),  # digits glued to a word are left alone
        ("Straße", "strasse"),
        ("ＡＢＣ １２", "abc 12"),  # NFKC folds full-width forms
    ],
)
def test_canonical_text(text: str, expected: str) -> None:
    assert canonical_text(text) == expected


def test_canonical_text_equates_number_spellings() -> None:
    assert canonical_text("Total: $1,250.50") == canonical_text("total: $1250.5")
    assert canonical_text("at 07:30") == canonical_text("AT 7:30")
    assert canonical_text("1250") != canonical_text("125")


# ---- get_path ------------------------------------------------------------------------------


def test_get_path() -> None:
    rec = {"a": {"b": {"c": 1}}, "top": 0, "lst": [1, 2], "dotted.key": "x"}
    assert get_path(rec, "a.b.c") == 1
    assert get_path(rec, "a.b") == {"c": 1}
    assert get_path(rec, "top") == 0
    assert get_path(rec, "missing") is None
    assert get_path(rec, "a.x.c") is None
    assert get_path(rec, "a.b.c.d") is None  # 1 is not a mapping
    assert get_path(rec, "lst.0") is None  # lists are not indexed
    assert get_path(rec, "top.x") is None


# ---- conditions ----------------------------------------------------------------------------


def test_operator_registry_matches_condition_ops() -> None:
    ops = typing.get_args(Condition.model_fields["op"].annotation)
    assert set(ops) == set(OPERATORS)


OP_CASES = [
    # (op, left, right, expected)
    ("eq", 1, 1.0, True),
    ("eq", "a", " a ", True),
    ("eq", {"x": 1.0, "y": None}, {"x": 1}, True),
    ("eq", "1", 1, False),
    ("eq", [1, 2], [1, 2.0], True),
    ("eq", [1, 2], [2, 1], False),
    ("eq", 0.1 + 0.2, 0.3, True),
    ("eq", None, None, True),
    ("eq", "A", "a", False),
    ("ne", "1", 1, True),
    ("ne", 2, 2.0, False),
    ("ne", None, 0, True),
    ("gt", 2, 1, True),
    ("gt", 1, 2, False),
    ("gt", 1, 1.0, False),
    ("gt", "b", "a", True),
    ("gt", "2026-03-03T00:00:00Z", "2026-03-02T23:59:59Z", True),
    ("gt", 1, "0", False),
    ("gt", "1", 0, False),
    ("gt", None, 1, False),
    ("gt", 1, None, False),
    ("gt", {"a": 1}, {"a": 0}, False),
    ("gte", 2, 2.0, True),
    ("gte", 1, 2, False),
    ("gte", "a", "a", True),
    ("gte", "a", 1, False),
    ("lt", 1, 2, True),
    ("lt", 2, 1, False),
    ("lt", 1.5, 1.6, True),
    ("lt", "a", "b", True),
    ("lt", 0, "1", False),
    ("lt", None, None, False),
    ("lte", 2, 2, True),
    ("lte", 3, 2, False),
    ("lte", "b", "a", False),
    ("lte", [1], {"a": 1}, False),
    ("in", "a", ["a", "b"], True),
    ("in", "c", ["a", "b"], False),
    ("in", "a", "abc", False),
    ("in", 1.0, [1, 2], True),
    ("in", " a ", ["a"], True),
    ("in", "a", None, False),
    ("not_in", "c", ["a"], True),
    ("not_in", "a", ["a"], False),
    ("not_in", "a", "abc", True),
    ("contains", ["a", "b"], "a", True),
    ("contains", ["a", "b"], "c", False),
    ("contains", "hello", "ell", True),
    ("contains", "hello", "ELL", False),
    ("contains", "x", 1, False),
    ("contains", 5, 5, False),
    ("contains", None, "a", False),
    ("contains", [1, 2], 2.0, True),
    ("contains", {"a": 1}, "a", False),
    ("not_contains", ["a"], "b", True),
    ("not_contains", ["a"], "a", False),
    ("not_contains", None, "a", True),
    ("not_contains", "hello", "ell", False),
    ("icontains", "Hello", "ELL", True),
    ("icontains", ["Foo", "Bar"], "ar", True),
    ("icontains", ["Foo"], "x", False),
    ("icontains", "a", 1, False),
    ("icontains", [1], "1", False),
    ("icontains", None, "a", False),
    ("icontains", "Straße", "STRASSE", True),
    ("exists", 0, None, True),
    ("exists", "", None, True),
    ("exists", None, None, False),
    ("exists", [], 5, True),
    ("exists", {"a": None}, None, True),
    ("missing", None, None, True),
    ("missing", 0, None, False),
    ("missing", False, None, False),
]


@pytest.mark.parametrize(("op", "left", "right", "expected"), OP_CASES)
def test_compare(op: str, left: object, right: object, expected: bool) -> None:
    assert compare(op, left, right) is expected


def test_every_operator_has_cases() -> None:
    assert {c[0] for c in OP_CASES} == set(OPERATORS)
    for op in OPERATORS:
        results = {c[3] for c in OP_CASES if c[0] == op}
        assert results == {True, False}, op


MIXED = [None, 0, 1, 2.5, -3, "a", "", "1", True, False, [1, "a"], [], {"a": 1}, {}, [{"x": 1}]]


@pytest.mark.parametrize("op", sorted(OPERATORS))
def test_mixed_types_never_raise(op: str) -> None:
    for a in MIXED:
        for b in MIXED:
            r = compare(op, a, b)
            assert isinstance(r, bool), (op, a, b)


@pytest.mark.parametrize("op", ["gt", "gte", "lt", "lte"])
def test_ordered_different_kinds_false(op: str) -> None:
    for num in (0, 1, 2.5, -3):
        for other in ("a", "1", "", [1], {"a": 1}, None):
            assert compare(op, num, other) is False, (op, num, other)
            assert compare(op, other, num) is False, (op, other, num)


@pytest.mark.parametrize("op", ["gt", "gte", "lt", "lte"])
def test_ordered_bool_on_the_left_is_false(op: str) -> None:
    for b in (True, False):
        for num in (-1, 0, 1, 2, 0.5):
            assert compare(op, b, num) is False, (op, b, num)


@pytest.mark.parametrize("op", ["gt", "gte", "lt", "lte"])
def test_ordered_number_vs_bool_symmetric_false(op: str) -> None:
    for num in (0, 1, 2):
        for b in (True, False):
            assert compare(op, num, b) is False
            assert compare(op, b, num) is False


def test_eq_distinguishes_bool_from_number() -> None:
    assert compare("eq", 1, True) is False
    assert compare("eq", 0, False) is False
    assert compare("in", 1, [True]) is False


# ---- references ----------------------------------------------------------------------------


def test_resolve_references() -> None:
    ctx = Context(
        args={"email": "a@b.example", "n": 3},
        record={"start": "S", "meta": {"k": "v"}},
        now="2026-03-02T09:00:00Z",
    )
    assert resolve({"$arg": "email"}, ctx) == "a@b.example"
    assert resolve({"$arg": "nope"}, ctx) is None
    assert resolve({"$field": "start"}, ctx) == "S"
    assert resolve({"$field": "meta.k"}, ctx) == "v"
    assert resolve({"$field": "nope"}, ctx) is None
    assert resolve({"$now": True}, ctx) == "2026-03-02T09:00:00Z"
    # not references: literals pass through unchanged
    assert resolve({"$arg": "email", "extra": 1}, ctx) == {"$arg": "email", "extra": 1}
    assert resolve({"$other": "x"}, ctx) == {"$other": "x"}
    assert resolve("$arg", ctx) == "$arg"
    assert resolve([{"$arg": "email"}], ctx) == [{"$arg": "email"}]
    assert resolve(5, ctx) == 5


def test_context_defaults() -> None:
    ctx = Context()
    assert ctx.args == {} and ctx.record == {} and ctx.now == ""
    assert resolve({"$arg": "x"}, ctx) is None


def test_evaluate_with_field_reference_uses_evaluated_record() -> None:
    cond = Condition(field="end", op="gt", value={"$field": "start"})
    other = {"start": "2026-12-31T00:00:00Z"}
    ctx = Context(record=other)  # must be ignored: $field refers to the record evaluated
    assert evaluate(cond, {"start": "2026-03-02T10:00:00Z", "end": "2026-03-02T11:00:00Z"}, ctx) is True
    assert evaluate(cond, {"start": "2026-03-02T10:00:00Z", "end": "2026-03-02T10:00:00Z"}, ctx) is False
    assert evaluate(cond, {"start": "2026-03-02T10:00:00Z"}, ctx) is False  # end missing


def test_evaluate_with_arg_and_now_references() -> None:
    ctx = Context(args={"email": "x@y.example"}, now="2026-03-02T09:00:00Z")
    c_arg = Condition(field="attendees", op="not_contains", value={"$arg": "email"})
    assert evaluate(c_arg, {"attendees": ["a@b.example"]}, ctx) is True
    assert evaluate(c_arg, {"attendees": ["x@y.example"]}, ctx) is False
    c_now = Condition(field="due", op="lt", value={"$now": True})
    assert evaluate(c_now, {"due": "2026-03-01T00:00:00Z"}, ctx) is True
    assert evaluate(c_now, {"due": "2026-03-03T00:00:00Z"}, ctx) is False
    assert evaluate(c_now, {}, ctx) is False


def test_evaluate_dotted_field_and_default_op() -> None:
    cond = Condition(field="owner.name", value=" Ana ")
    assert cond.op == "eq"
    assert evaluate(cond, {"owner": {"name": "Ana"}}, Context()) is True
    assert evaluate(cond, {"owner": {"name": "Bob"}}, Context()) is False
    assert evaluate(cond, {"owner": "Ana"}, Context()) is False


def test_matches_all() -> None:
    conds = (Condition(field="a", op="gte", value=1), Condition(field="b", op="in", value=["x", "y"]))
    assert matches_all((), {}, Context()) is True
    assert matches_all(conds, {"a": 1.0, "b": "x"}, Context()) is True
    assert matches_all(conds, {"a": 0, "b": "x"}, Context()) is False
    assert matches_all(conds, {"a": 5, "b": "z"}, Context()) is False
