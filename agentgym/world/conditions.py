"""Evaluate `Condition`s and value references against a record.

A value is a literal or a reference: `{"$arg": name}` (a call argument), `{"$field": name}` (a field
of the record at hand), `{"$now": true}` (the world clock). `evaluate` compares in canonical form
(`agentgym.world.normalize`); ordered comparisons between values of different kinds are false,
never an exception. Operators live in a registry, `OPERATORS`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from agentgym.spec.tool import Condition
from agentgym.world.normalize import canonical, get_path, same


class Context:
    """What references resolve against."""

    __slots__ = ("args", "now", "record")

    def __init__(
        self, args: Mapping[str, Any] | None = None, record: Mapping[str, Any] | None = None, now: str = ""
    ) -> None:
        self.args = args or {}
        self.record = record or {}
        self.now = now


def resolve(value: Any, ctx: Context) -> Any:
    """The value a literal-or-reference stands for."""
    if isinstance(value, dict) and len(value) == 1:
        ((k, v),) = value.items()
        if k == "$arg":
            return ctx.args.get(v)
        if k == "$field":
            return get_path(ctx.record, v)
        if k == "$now":
            return ctx.now
    return value


def _ordered(f: Callable[[Any, Any], bool]) -> Callable[[Any, Any], bool]:
    def op(a: Any, b: Any) -> bool:
        if a is None or b is None or type(a) is bool or type(b) is bool:
            return False
        if isinstance(a, (int, float)) != isinstance(b, (int, float)):
            return False
        try:
            return f(a, b)
        except TypeError:
            return False

    return op


def _contains(a: Any, b: Any) -> bool:
    if isinstance(a, list):
        return any(same(x, b) for x in a)
    if isinstance(a, str) and isinstance(b, str):
        return b in a
    return False


def _icontains(a: Any, b: Any) -> bool:
    if isinstance(a, list):
        return any(isinstance(x, str) and isinstance(b, str) and b.casefold() in x.casefold() for x in a)
    return isinstance(a, str) and isinstance(b, str) and b.casefold() in a.casefold()


def _in(a: Any, b: Any) -> bool:
    return isinstance(b, list) and any(same(a, x) for x in b)


OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    "eq": same,
    "ne": lambda a, b: not same(a, b),
    "gt": _ordered(lambda a, b: a > b),
    "gte": _ordered(lambda a, b: a >= b),
    "lt": _ordered(lambda a, b: a < b),
    "lte": _ordered(lambda a, b: a <= b),
    "in": _in,
    "not_in": lambda a, b: not _in(a, b),
    "contains": _contains,
    "not_contains": lambda a, b: not _contains(a, b),
    "icontains": _icontains,
    "exists": lambda a, b: a is not None,
    "missing": lambda a, b: a is None,
}


def compare(op: str, left: Any, right: Any) -> bool:
    """`left <op> right` in canonical form."""
    return OPERATORS[op](canonical(left), canonical(right))


def _is_ref(value: Any) -> bool:
    return isinstance(value, dict) and len(value) == 1 and next(iter(value)) in ("$arg", "$field", "$now")


Compiled = Callable[[Mapping[str, Any], Context], bool]
_COMPILED: dict[int, tuple[Condition, Compiled]] = {}


def compile_condition(cond: Condition) -> Compiled:
    """`cond` as a fast predicate (literal right-hand sides canonicalised once); cached per object."""
    hit = _COMPILED.get(id(cond))
    if hit is not None and hit[0] is cond:
        return hit[1]
    op, field = OPERATORS[cond.op], cond.field
    dotted = "." in field
    if _is_ref(cond.value):
        ref = cond.value

        def pred(record: Mapping[str, Any], ctx: Context) -> bool:
            left = get_path(record, field) if dotted else record.get(field)
            return op(canonical(left), canonical(resolve(ref, Context(ctx.args, record, ctx.now))))
    else:
        right = canonical(cond.value)

        def pred(record: Mapping[str, Any], ctx: Context) -> bool:
            return op(canonical(get_path(record, field) if dotted else record.get(field)), right)

    if len(_COMPILED) > 200_000:
        _COMPILED.clear()
    _COMPILED[id(cond)] = (cond, pred)  # holding cond keeps its id from being reused
    return pred


def evaluate(cond: Condition, record: Mapping[str, Any], ctx: Context) -> bool:
    """Whether `record` satisfies `cond` (references resolved against `ctx`, record = `record`)."""
    return compile_condition(cond)(record, ctx)


def matches_all(conds: tuple[Condition, ...], record: Mapping[str, Any], ctx: Context) -> bool:
    """Whether `record` satisfies every condition."""
    for c in conds:  # noqa: SIM110  (a plain loop: this is the grader's hot path)
        if not compile_condition(c)(record, ctx):
            return False
    return True
