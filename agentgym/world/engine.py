"""The deterministic engine: runs tools whose semantics are known, exactly, over a WorldState.

In: a ToolSpec with `semantics`, arguments already validated against its input schema, the
episode's WorldState, and the page shaping the fault injector chose. Out: the structured result (a
record, a page `{"items", "next_cursor"}`, or an ack), or a `ToolFailure` with a typed kind
(not_found, precondition_failed, conflict, invalid_arguments). State changes go through
`WorldState.put/remove`, so they are logged. The engine never raises anything else for a
well-formed tool, never reads the wall clock and never draws random numbers: same state and call,
same result. Operations are a registry (`OPERATIONS`); a new operation is a new function.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from agentgym.schema import validator
from agentgym.spec.tool import Condition, ToolSemantics, ToolSpec
from agentgym.spec.trajectory import ErrorKind
from agentgym.spec.world import EntitySpec
from agentgym.world.conditions import Context, compare, evaluate, resolve
from agentgym.world.normalize import canonical, get_path, same
from agentgym.world.state import WorldState

MAX_PAGE = 100


class ToolFailure(Exception):
    """A tool call that ran and failed for a reason the agent can act on."""

    def __init__(self, kind: ErrorKind, message: str) -> None:
        super().__init__(message)
        self.kind: ErrorKind = kind
        self.message = message


@dataclass(slots=True)
class PageShape:
    """How the fault injector bends a list/search result this call."""

    page_size: int | None = None
    """Force this page size (pagination edge cases)."""
    partial: bool = False
    """Return only the first half of the page, with a cursor for the rest."""
    empty: bool = False
    """Return no items."""


@dataclass(slots=True)
class Call:
    """Everything an operation needs."""

    tool: ToolSpec
    sem: ToolSemantics
    entity: EntitySpec
    args: Mapping[str, Any]
    state: WorldState
    shape: PageShape

    def ctx(self, record: Mapping[str, Any] | None = None) -> Context:
        return Context(self.args, record, self.state.now)


Operation = Callable[[Call], Any]
OPERATIONS: dict[str, Operation] = {}


def operation(name: str) -> Callable[[Operation], Operation]:
    """Register an operation under `name` (a ToolSemantics.operation value)."""

    def deco(f: Operation) -> Operation:
        OPERATIONS[name] = f
        return f

    return deco


class Engine:
    """Runs semantic tools over world states; holds the entity types it knows."""

    def __init__(self, entities: Mapping[str, EntitySpec]) -> None:
        self.entities = dict(entities)

    def run(
        self, tool: ToolSpec, args: Mapping[str, Any], state: WorldState, shape: PageShape | None = None
    ) -> Any:
        sem = tool.semantics
        if sem is None:
            raise ValueError(f"tool {tool.name} has no semantics; the engine cannot run it")
        entity = self.entities.get(sem.collection)
        if entity is None:
            raise ValueError(f"tool {tool.name} acts on unknown collection {sem.collection!r}")
        call = Call(tool, sem, entity, args, state, shape or PageShape())
        if sem.ref_preconditions:
            _check_ref_preconditions(call)
        result = OPERATIONS[sem.operation](call)
        return _shape_result(sem, result)


# ---- helpers shared by operations -------------------------------------------------------------


def _target(call: Call) -> dict[str, Any]:
    rid = call.args.get(call.sem.id_arg or "id")
    if call.sem.key_field != "id":
        key = canonical(rid)
        rec = next(
            (
                r
                for r in call.state.iter(call.sem.collection)
                if same(canonical(r.get(call.sem.key_field)), key)
            ),
            None,
        )
        if rec is None:
            raise ToolFailure("not_found", f"no {_noun(call.entity)} with {call.sem.key_field} {rid!r}")
        return rec
    rec = call.state.get(call.sem.collection, rid) if isinstance(rid, str) else None
    if rec is None:
        raise ToolFailure("not_found", f"no {_noun(call.entity)} with id {rid!r}")
    return rec


def _noun(entity: EntitySpec) -> str:
    return entity.collection.rsplit(".", 1)[-1].rstrip("s") or entity.collection


def _fields_from_args(call: Call) -> dict[str, Any]:
    props = call.entity.record_schema.get("properties", {})
    out: dict[str, Any] = {}
    for arg, val in call.args.items():
        if arg == call.sem.id_arg:
            continue
        field = call.sem.field_args.get(arg, arg)
        if field != "id" and field in props and val is not None:
            out[field] = val
    return out


def _check_preconditions(call: Call, record: Mapping[str, Any]) -> None:
    ctx = call.ctx(record)
    for cond in call.sem.preconditions:
        if not evaluate(cond, record, ctx):
            raise ToolFailure("precondition_failed", _precondition_message(call, cond, record, ctx))


def _check_ref_preconditions(call: Call) -> None:
    for arg, conds in call.sem.ref_preconditions.items():
        rid = call.args.get(arg)
        if rid is None:
            continue
        target = call.entity.refs[call.sem.field_args.get(arg, arg)]
        record = call.state.get(target, rid) if isinstance(rid, str) else None
        if record is None:
            raise ToolFailure("not_found", f"{arg}: no record {rid!r} in {target}")
        ctx = call.ctx(record)
        for cond in conds:
            if not evaluate(cond, record, ctx):
                raise ToolFailure(
                    "precondition_failed",
                    cond.message
                    or f"{arg} {rid!r} requires {cond.field} {cond.op} {resolve(cond.value, ctx)!r}",
                )


def _precondition_message(call: Call, cond: Condition, record: Mapping[str, Any], ctx: Context) -> str:
    if cond.message:
        return cond.message
    want = resolve(cond.value, ctx)
    return (
        f"{_noun(call.entity)} {record.get('id')!r} requires {cond.field} {cond.op} {want!r}, "
        f"but {cond.field} is {get_path(record, cond.field)!r}"
    )


def _validate_record(call: Call, record: dict[str, Any]) -> None:
    reason = validator(call.entity.record_schema).check(record)
    if reason is not None:
        raise ToolFailure(
            "invalid_arguments", f"the resulting {_noun(call.entity)} would be invalid: {reason}"
        )
    ctx = call.ctx(record)
    for cond in call.entity.invariants:
        if not evaluate(cond, record, ctx):
            raise ToolFailure(
                "invalid_arguments",
                cond.message
                or f"the resulting {_noun(call.entity)} would break: {cond.field} {cond.op} {cond.value!r}",
            )
    for field, target in call.entity.refs.items():
        val = record.get(field)
        for v in val if isinstance(val, list) else [val]:
            if v is not None and call.state.get(target, v) is None:
                raise ToolFailure("not_found", f"{field}: no record {v!r} in {target}")
    for field in call.entity.unique:
        val = canonical(record.get(field))
        if val is None:
            continue
        for other in call.state.iter(call.sem.collection):
            if other["id"] != record["id"] and same(canonical(other.get(field)), val):
                raise ToolFailure(
                    "conflict", f"{field} {record.get(field)!r} is already used by {other['id']!r}"
                )


def _shape_result(sem: ToolSemantics, result: Any) -> Any:
    kind = sem.returns
    if kind is None or kind in ("record", "page"):
        return result
    if kind == "id":
        return {"id": result["id"]}
    return {"ok": True, "id": result["id"]}


# ---- operations ------------------------------------------------------------------------------


@operation("create")
def _create(call: Call) -> dict[str, Any]:
    fields = _fields_from_args(call)
    ctx = call.ctx(fields)
    for field, value in call.sem.defaults.items():
        if fields.get(field) is None:
            fields[field] = copy.deepcopy(resolve(value, ctx))
    record = {"id": call.state.next_id(call.sem.collection, call.entity.id_prefix), **fields}
    _validate_record(call, record)
    call.state.put(call.sem.collection, record)
    return record


@operation("get")
def _get(call: Call) -> dict[str, Any]:
    record = _target(call)
    if call.sem.touch:
        ctx = call.ctx(record)
        touched = {**record, **{f: resolve(v, ctx) for f, v in call.sem.touch.items()}}
        if touched != record:
            call.state.put(call.sem.collection, touched)
            record = touched
    return record


def _filtered(call: Call) -> list[dict[str, Any]]:
    sem = call.sem
    active = [
        (f.field, f.op, canonical(call.args[a]))
        for a, f in sem.filters.items()
        if call.args.get(a) is not None
    ]
    out = []
    for rec in call.state.iter(sem.collection):
        if all(compare(op, get_path(rec, field), val) for field, op, val in active):
            out.append(rec)
    return out


def _page(call: Call, records: list[dict[str, Any]]) -> dict[str, Any]:
    sem = call.sem
    if sem.sort:
        field, rev = sem.sort.lstrip("-"), sem.sort.startswith("-")
        present = [r for r in records if get_path(r, field) is not None]
        present.sort(key=lambda r: (*_sort_key(get_path(r, field)), r["id"]), reverse=rev)
        records = present + [r for r in records if get_path(r, field) is None]  # missing values last
    cursor = call.args.get(sem.cursor_arg) if sem.cursor_arg else None
    offset = 0
    if cursor not in (None, ""):
        if not (isinstance(cursor, str) and cursor.isdigit()):
            raise ToolFailure("invalid_arguments", f"cursor {cursor!r} is not one this tool returned")
        offset = int(cursor)
    size = call.args.get(sem.limit_arg) if sem.limit_arg else None
    size = min(int(size) if isinstance(size, int) and size > 0 else sem.page_size, MAX_PAGE)
    if call.shape.page_size:
        size = min(size, call.shape.page_size)
    if call.shape.empty:
        return {"items": [], "next_cursor": None}
    if call.shape.partial and size > 1:
        size = max(1, size // 2)
    items = records[offset : offset + size]
    nxt = offset + size
    return {"items": items, "next_cursor": str(nxt) if nxt < len(records) else None}


def _sort_key(v: Any) -> tuple[int, Any]:
    """Numbers by value before everything else by text (so 9 < 10 < 100)."""
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return (0, v)
    return (1, str(v))


@operation("list")
def _list(call: Call) -> dict[str, Any]:
    return _page(call, _filtered(call))


@operation("search")
def _search(call: Call) -> dict[str, Any]:
    q = call.args.get(call.sem.query_arg) if call.sem.query_arg else None
    tokens = str(q).casefold().split() if q else []
    fields = call.sem.search_fields
    hits = []
    for rec in _filtered(call):
        text = " ".join(str(get_path(rec, f) or "") for f in fields).casefold()
        if all(t in text for t in tokens):
            hits.append(rec)
    return _page(call, hits)


@operation("count")
def _count(call: Call) -> dict[str, Any]:
    return {"count": len(_filtered(call))}


@operation("update")
def _update(call: Call) -> dict[str, Any]:
    record = _target(call)
    _check_preconditions(call, record)
    changes = _fields_from_args(call)
    if not changes:
        raise ToolFailure("invalid_arguments", "nothing to update: give at least one field to change")
    new = _apply_effects(call, record, {**record, **changes})
    _validate_record(call, new)
    if new != record:
        call.state.put(call.sem.collection, new)
    return new


@operation("delete")
def _delete(call: Call) -> dict[str, Any]:
    record = _target(call)
    _check_preconditions(call, record)
    call.state.remove(call.sem.collection, record["id"])
    return {"ok": True, "id": record["id"]}


EFFECTS: dict[str, Callable[[Any, Any], Any]] = {
    "set": lambda old, v: v,
    "append": lambda old, v: [*(old or []), v],
    "remove": lambda old, v: [x for x in (old or []) if not same(canonical(x), canonical(v))],
    "increment": lambda old, v: (old or 0) + v,
}


def _apply_effects(call: Call, record: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """Apply the tool's effects to `new` (references resolve against the record before the call).
    An effect whose value is an argument the caller left out is skipped: optional arguments stay optional."""
    ctx = call.ctx(record)
    for eff in call.sem.effects:
        value = resolve(eff.value, ctx)
        if value is None and isinstance(eff.value, dict) and "$arg" in eff.value:
            continue
        new[eff.field] = EFFECTS[eff.op](new.get(eff.field), value)
    return new


@operation("clone")
def _clone(call: Call) -> dict[str, Any]:
    """A copy of the target under a new id; given fields override, effects reset (e.g. status)."""
    source = _target(call)
    _check_preconditions(call, source)
    fields = {k: copy.deepcopy(v) for k, v in source.items() if k != "id"}
    fields.update(_fields_from_args(call))
    record = _apply_effects(
        call, source, {"id": call.state.next_id(call.sem.collection, call.entity.id_prefix), **fields}
    )
    _validate_record(call, record)
    call.state.put(call.sem.collection, record)
    return record


@operation("action")
def _action(call: Call) -> dict[str, Any]:
    record = _target(call)
    _check_preconditions(call, record)
    new = _apply_effects(call, record, dict(record))
    _validate_record(call, new)
    if new != record:
        call.state.put(call.sem.collection, new)
    return new
