"""Task blueprints: how one kind of request is drawn, executed and answered on a Sketch.

Each blueprint is a function `(Sketch) -> None` registered with `@blueprint(name, weight)`. It picks
what the agent can do (a collection with the tools it needs, a record in a suitable state), makes
the gold calls through the sketch (so every next call uses what earlier calls returned), states
the user's request (`verbalize.render`), and finishes with a reply that states the facts asked for.
It raises `Reject` when this agent or state cannot support it; the generator then draws another.
The rubric is not written here: `sketch.derive_rubric` reads it off what the calls did.

Kinds, simple to complex: a field by id or unique key; a count; create; update / action / delete
by id — one call each. Find by name then update / act / delete; a related record's field; create
for a parent found by name; list a parent's children; a refused operation reported, not forced;
a detail the user must be asked for — two to four calls. For every child of a parent found by name:
act on each (one is in a state that refuses it: the error is reported, the rest done), or update
each with a value the user must be asked for — five calls or more. Real tools without semantics:
one call, or two, with the arguments the request gives; graded by call pattern and judge.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from agentgym.spec.tool import ToolSpec
from agentgym.taskgen.sketch import CollectionView, Reject, Sketch
from agentgym.taskgen.values import new_value, tool_arguments
from agentgym.taskgen.verbalize import details, humanize, plural, render
from agentgym.taskgen.worldgen import label_field, noun
from agentgym.world.conditions import Context, matches_all

Blueprint = Callable[[Sketch], None]
BLUEPRINTS: dict[str, tuple[float, Blueprint]] = {}
"""Name → (draw weight within its level, function)."""
LEVELS: dict[str, str] = {}
"""Name → the difficulty it aims at (simple, moderate, complex)."""


def blueprint(name: str, weight: float, level: str) -> Callable[[Blueprint], Blueprint]:
    def deco(f: Blueprint) -> Blueprint:
        BLUEPRINTS[name] = (weight, f)
        LEVELS[name] = level
        return f

    return deco


# ---- helpers ------------------------------------------------------------------------------------


def _cols(sk: Sketch, *ops: str, labelled: bool = False) -> list[CollectionView]:
    out = [c for c in sk.view.cols.values() if all(c.tools(op) for op in ops)]
    if labelled:
        out = [c for c in out if label_field(c.entity)]
    return out


def _col(sk: Sketch, *ops: str, labelled: bool = False) -> CollectionView:
    cols = _cols(sk, *ops, labelled=labelled)
    if not cols:
        raise Reject(f"no collection with {ops}", structural=True)
    return sk.rng.choice(cols)


def _records(sk: Sketch, col: CollectionView) -> list[dict[str, Any]]:
    return list(sk.state.iter(col.collection))


def _noun(col: CollectionView) -> str:
    return noun(col.entity)


def _allowed(sk: Sketch, tool: ToolSpec, rec: dict[str, Any], args: dict[str, Any] | None = None) -> bool:
    sem = tool.semantics
    assert sem is not None
    return matches_all(sem.preconditions, rec, Context(args or {}, rec, sk.state.now))


def _name(col: CollectionView, rec: dict[str, Any]) -> str | None:
    f = label_field(col.entity)
    v = rec.get(f) if f else None
    return v if isinstance(v, str) and v.strip() else None


def _ref(col: CollectionView, rec: dict[str, Any]) -> str:
    """How the user names a record: by its label when it has one, in quotes."""
    name = _name(col, rec)
    return f'"{name}"' if name else rec["id"]


def _scalar_fields(col: CollectionView, rec: dict[str, Any], skip: tuple[str, ...] = ()) -> list[str]:
    props = col.entity.record_schema.get("properties", {})
    out = []
    for f, v in rec.items():
        if f in ("id", *skip) or f in col.entity.refs or f in col.entity.trace_fields:
            continue
        schema = props.get(f, {})
        if isinstance(v, bool) or schema.get("format") in ("date-time",):
            continue
        if isinstance(v, int) or (isinstance(v, str) and 0 < len(v) <= 60 and "\n" not in v):
            out.append(f)
    return out


def _find(sk: Sketch, col: CollectionView, rec: dict[str, Any]) -> None:
    """Gold calls that find `rec` by its name: a search that returns it alone, else a list that has it."""
    name = _name(col, rec)
    if name is None:
        raise Reject("record has no name to find it by")
    for tool in col.tools("search"):
        q = tool.semantics.query_arg  # type: ignore[union-attr]
        if q is None:
            continue
        page = sk.call(tool, {q: name})
        if [r["id"] for r in page["items"]] != [rec["id"]]:
            raise Reject("the search is ambiguous")
        return
    for tool in col.tools("list"):
        page = sk.call(tool, {})
        ids = [r["id"] for r in page["items"]]
        if rec["id"] not in ids or page.get("next_cursor"):
            raise Reject("the record is not on the first page")
        if sum(_name(col, r) == name for r in page["items"]) != 1:
            raise Reject("two records share the name")
        return
    raise Reject("no way to find records by name")


def _update_choice(
    sk: Sketch, col: CollectionView, rec: dict[str, Any]
) -> tuple[ToolSpec, str, str, Any] | None:
    """(update tool, argument, field, new value) for a change `rec` allows, or None."""
    props = col.entity.record_schema.get("properties", {})
    pool_by_field: dict[str, list[Any]] = {}
    tools = [t for t in col.tools("update") if _allowed(sk, t, rec)]
    sk.rng.shuffle(tools)
    for tool in tools:
        sem = tool.semantics
        assert sem is not None
        args = [a for a in tool.input_schema.get("properties", {}) if a not in (sem.id_arg,)]
        sk.rng.shuffle(args)
        for arg in args:
            field = sem.field_args.get(arg, arg)
            if field not in props or field in col.entity.unique:
                continue
            schema = tool.input_schema["properties"][arg]
            if field in col.entity.refs:  # re-point at another existing record
                others = [r["id"] for r in sk.state.iter(col.entity.refs[field]) if r["id"] != rec.get(field)]
                if others:
                    return tool, arg, field, sk.rng.choice(sorted(others))
                continue
            if schema.get("format") == "date-time" or schema.get("type") not in (
                "string",
                "integer",
                "number",
            ):
                continue
            if field not in pool_by_field:
                pool_by_field[field] = [r.get(field) for r in _records(sk, col) if field in r]
            value = new_value(schema, rec.get(field), pool_by_field[field], sk.rng, field, _noun(col))
            if value is not None:
                return tool, arg, field, value
    return None


def _updatable(
    sk: Sketch, col: CollectionView, named: bool = False
) -> tuple[dict[str, Any], tuple[ToolSpec, str, str, Any]]:
    """A record (named, when asked) and an update it allows, trying records in random order."""
    recs = [r for r in _records(sk, col) if not named or _name(col, r)]
    sk.rng.shuffle(recs)
    for rec in recs[:6]:
        choice = _update_choice(sk, col, rec)
        if choice is not None:
            return rec, choice
    raise Reject("nothing to update")


def _verb_words(tool: ToolSpec, col: CollectionView) -> list[str]:
    raw = tool.provenance.original_name
    words = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", raw).replace("-", "_").lower().split("_")
    noun_words = set(col.collection.split(".")[-1].split("_")) | set(_noun(col).split())
    noun_words |= {w.rstrip("s") for w in noun_words} | {w + "s" for w in noun_words}
    return [w for w in words if w and w not in noun_words]


def action_phrase(tool: ToolSpec, col: CollectionView) -> tuple[str, str]:
    """('check in', 'checked in'): what an action tool does, as the user would say it."""
    words = _verb_words(tool, col) or ["process"]
    verb = words[0]
    done = verb + "d" if verb.endswith("e") else verb + "ed"
    irregular = {"set": "set", "send": "sent", "pay": "paid", "put": "put", "run": "run", "mark": "marked"}
    done = irregular.get(verb, done)
    return " ".join(words), " ".join([done, *words[1:]])


def _state_words(field: str, value: Any) -> tuple[str, str]:
    """(how a record's state is said, the fact a reply must state): 'it is already archived' for
    a true flag, 'it is not archived' for a false one, 'its status is cancelled' otherwise."""
    name = humanize(field)
    if isinstance(value, bool):
        return (f"it is already {name}" if value else f"it is not {name}"), name
    return f"its {name} is {value}", str(value)


def _extra_args(sk: Sketch, tool: ToolSpec) -> dict[str, Any]:
    sem = tool.semantics
    assert sem is not None
    out = {}
    props = tool.input_schema.get("properties", {})
    for arg in tool.input_schema.get("required", ()):
        if arg == sem.id_arg:
            continue
        value = new_value(props.get(arg, {}), None, [], sk.rng, arg)
        if value is None:
            raise Reject(f"cannot make a value for {arg}")
        out[arg] = value
    return out


def _arg_for(tool: ToolSpec, field: str) -> str | None:
    """The argument of `tool` that sets record field `field`, if any."""
    sem = tool.semantics
    assert sem is not None
    return next(
        (a for a in tool.input_schema.get("properties", {}) if sem.field_args.get(a, a) == field), None
    )


def _say_action(
    sk: Sketch, col: CollectionView, tool: ToolSpec, ref: str, extra: dict[str, Any]
) -> tuple[str, str]:
    """State a request to apply action `tool` to the record `ref`; returns (action, done) phrases."""
    action, done = action_phrase(tool, col)
    slots = {"action": action, "action_done": done, "noun": _noun(col), "ref": ref, "extra": _with(extra)}
    sk.say(render("action", sk.rng, sk.style, **slots), ref, *extra.values())
    return action, done


def _with(extra: dict[str, Any]) -> str:
    return (" with " + details(list(extra.items()))) if extra else ""


def _create_args(sk: Sketch, col: CollectionView, tool: ToolSpec, fixed: dict[str, Any]) -> dict[str, Any]:
    sem = tool.semantics
    assert sem is not None
    props = tool.input_schema.get("properties", {})
    required = list(tool.input_schema.get("required", ()))
    optional = [
        a for a in props if a not in required and a not in fixed and a not in ("created_at", "updated_at")
    ]
    chosen = required + sk.rng.sample(optional, min(len(optional), sk.rng.randint(0, 2)))
    records = _records(sk, col)
    args = dict(fixed)
    for arg in chosen:
        if arg in args:
            continue
        field = sem.field_args.get(arg, arg)
        schema = props[arg]
        if field in col.entity.refs:
            ids = [r["id"] for r in sk.state.iter(col.entity.refs[field])]
            if not ids:
                raise Reject("no record to reference")
            args[arg] = sk.rng.choice(ids)
            continue
        donor = sk.rng.choice(records) if records else {}
        current = donor.get(field)
        if schema.get("format") in ("date", "date-time") and current is not None:
            args[arg] = current
            continue
        pool = [r.get(field) for r in records if field in r]
        value = new_value(
            schema, None if field in ("title", "name") else current, pool, sk.rng, field, _noun(col)
        )
        if value is None:
            if arg in required:
                raise Reject(f"cannot make a value for {arg}")
            continue
        args[arg] = value
    return args


def _pairs(args: dict[str, Any], skip: tuple[str, ...] = ()) -> list[tuple[str, Any]]:
    return [(k, v) for k, v in args.items() if k not in skip]


# ---- simple: one call ---------------------------------------------------------------------------


@blueprint("read_field", 0.6, "simple")
def read_field(sk: Sketch) -> None:
    col = _col(sk, "get")
    tool = sk.rng.choice(col.tools("get"))
    rec = sk.rng.choice(_records(sk, col))
    fields = _scalar_fields(col, rec)
    if not fields:
        raise Reject("no readable field")
    field = sk.rng.choice(fields)
    noun = _noun(col)
    sk.say(render("read_field", sk.rng, sk.style, field=humanize(field), noun=noun, id=rec["id"]), rec["id"])
    sk.call(tool, {tool.semantics.id_arg: rec["id"]})  # type: ignore[union-attr]
    sk.finish(f"The {humanize(field)} of {noun} {rec['id']} is {rec[field]}.", [rec[field]])


@blueprint("read_by_key", 0.6, "simple")
def read_by_key(sk: Sketch) -> None:
    col = _col(sk, "get_by_key")
    tool = sk.rng.choice(col.tools("get_by_key"))
    sem = tool.semantics
    assert sem is not None
    rec = sk.rng.choice([r for r in _records(sk, col) if r.get(sem.key_field)] or [{}])
    if not rec:
        raise Reject("no record with that key")
    fields = _scalar_fields(col, rec, skip=(sem.key_field,))
    if not fields:
        raise Reject("no readable field")
    field = sk.rng.choice(fields)
    key_value = rec[sem.key_field]
    sk.say(
        render(
            "read_by_key",
            sk.rng,
            sk.style,
            field=humanize(field),
            noun=_noun(col),
            key=humanize(sem.key_field),
            key_value=key_value,
        ),
        key_value,
    )
    sk.call(tool, {sem.id_arg: key_value})  # type: ignore[dict-item]
    sk.finish(f"The {humanize(field)} is {rec[field]} (record {rec['id']}).", [rec[field]])


@blueprint("count", 0.8, "simple")
def count(sk: Sketch) -> None:
    col = _col(sk, "count")
    tool = sk.rng.choice(col.tools("count"))
    sem = tool.semantics
    assert sem is not None
    props = tool.input_schema.get("properties", {})
    enum_args = [a for a, f in sem.filters.items() if f.op == "eq" and "enum" in props.get(a, {})]
    if not enum_args:
        raise Reject("no enum filter")
    arg = sk.rng.choice(enum_args)
    value = sk.rng.choice(props[arg]["enum"])
    n = sk.call(tool, {arg: value})["count"]
    if n == 0:
        raise Reject("nothing to count")
    nouns = plural(_noun(col))
    sk.say(
        render("count", sk.rng, sk.style, nouns=nouns, field=humanize(sem.filters[arg].field), value=value),
        value,
    )
    sk.finish(f"There are {n} {nouns} with {humanize(sem.filters[arg].field)} {value}.", [n])


@blueprint("create", 1.0, "simple")
def create(sk: Sketch) -> None:
    col = _col(sk, "create")
    tool = sk.rng.choice(col.tools("create"))
    args = _create_args(sk, col, tool, {})
    if not args:
        raise Reject("nothing to say about the new record")
    noun = _noun(col)
    sk.say(render("create", sk.rng, sk.style, noun=noun, details=details(_pairs(args))), *args.values())
    rec = sk.call(tool, args)
    sk.finish(f"I created the {noun}; its id is {rec['id']}.", [rec["id"]])


@blueprint("update_by_id", 0.8, "simple")
def update_by_id(sk: Sketch) -> None:
    col = _col(sk, "update")
    rec, (tool, arg, field, value) = _updatable(sk, col)
    noun = _noun(col)
    sk.say(
        render("update", sk.rng, sk.style, noun=noun, ref=rec["id"], field=humanize(field), value=value),
        rec["id"],
        value,
    )
    sk.call(tool, {tool.semantics.id_arg: rec["id"], arg: value})  # type: ignore[union-attr]
    sk.finish(f"{noun.capitalize()} {rec['id']} now has {humanize(field)} {value}.", [value])


def _act(sk: Sketch, col: CollectionView, rec: dict[str, Any] | None, find: bool) -> None:
    tools = col.tools("action")
    sk.rng.shuffle(tools)
    candidates = _records(sk, col) if rec is None else [rec]
    for tool in tools:
        ok = [r for r in candidates if _allowed(sk, tool, r) and (not find or _name(col, r))]
        if ok:
            break
    else:
        raise Reject("no action allowed on any record")
    rec = sk.rng.choice(ok)
    extra = _extra_args(sk, tool)
    noun = _noun(col)
    _, done = _say_action(sk, col, tool, _ref(col, rec) if find else rec["id"], extra)
    if find:
        _find(sk, col, rec)
    after = sk.call(tool, {tool.semantics.id_arg: rec["id"], **extra})  # type: ignore[union-attr]
    changed = [f for f in after if after.get(f) != rec.get(f) and f in _scalar_fields(col, after)]
    facts = [rec["id"]] + ([after[changed[0]]] if changed else [])
    state = f" Its {humanize(changed[0])} is now {after[changed[0]]}." if changed else ""
    sk.finish(f"Done: {noun} {rec['id']} is {done}.{state}", facts)


@blueprint("action_by_id", 1.0, "simple")
def action_by_id(sk: Sketch) -> None:
    _act(sk, _col(sk, "action"), None, find=False)


@blueprint("delete_by_id", 0.5, "simple")
def delete_by_id(sk: Sketch) -> None:
    col = _col(sk, "delete")
    tool = sk.rng.choice(col.tools("delete"))
    recs = [r for r in _records(sk, col) if _allowed(sk, tool, r)]
    if not recs:
        raise Reject("nothing deletable")
    rec = sk.rng.choice(recs)
    noun = _noun(col)
    sk.say(render("delete", sk.rng, sk.style, noun=noun, ref=rec["id"]), rec["id"])
    sk.call(tool, {tool.semantics.id_arg: rec["id"]})  # type: ignore[union-attr]
    sk.finish(f"I deleted {noun} {rec['id']}.", [rec["id"]])


# ---- moderate: dependent calls --------------------------------------------------------------------


@blueprint("find_update", 1.2, "moderate")
def find_update(sk: Sketch) -> None:
    col = _col(sk, "update", labelled=True)
    rec, (tool, arg, field, value) = _updatable(sk, col, named=True)
    noun = _noun(col)
    ref = _ref(col, rec)
    sk.say(
        render("update", sk.rng, sk.style, noun=noun, ref=ref, field=humanize(field), value=value), ref, value
    )
    _find(sk, col, rec)
    sk.call(tool, {tool.semantics.id_arg: rec["id"], arg: value})  # type: ignore[union-attr]
    sk.finish(f"Updated {noun} {rec['id']} ({ref}): {humanize(field)} is now {value}.", [value])


@blueprint("find_action", 1.2, "moderate")
def find_action(sk: Sketch) -> None:
    _act(sk, _col(sk, "action", labelled=True), None, find=True)


@blueprint("find_delete", 0.5, "moderate")
def find_delete(sk: Sketch) -> None:
    col = _col(sk, "delete", labelled=True)
    tool = sk.rng.choice(col.tools("delete"))
    recs = [r for r in _records(sk, col) if _name(col, r) and _allowed(sk, tool, r)]
    if not recs:
        raise Reject("nothing deletable")
    rec = sk.rng.choice(recs)
    ref = _ref(col, rec)
    noun = _noun(col)
    sk.say(render("delete", sk.rng, sk.style, noun=noun, ref=ref), ref)
    _find(sk, col, rec)
    sk.call(tool, {tool.semantics.id_arg: rec["id"]})  # type: ignore[union-attr]
    sk.finish(f"I deleted {noun} {ref} ({rec['id']}).", [rec["id"]])


def _parent_views(sk: Sketch, col: CollectionView) -> list[tuple[str, CollectionView]]:
    """(reference field, parent collection view) pairs the agent can read."""
    out = []
    for f, target in col.entity.refs.items():
        pv = sk.view.cols.get(target)
        if pv is not None:
            out.append((f, pv))
    return out


@blueprint("related_read", 0.5, "moderate")
def related_read(sk: Sketch) -> None:
    cols = [c for c in _cols(sk, "get") if any(pv.tools("get") for _, pv in _parent_views(sk, c))]
    if not cols:
        raise Reject("no readable parent", structural=True)
    col = sk.rng.choice(cols)
    f, pv = sk.rng.choice([(f, pv) for f, pv in _parent_views(sk, col) if pv.tools("get")])
    rec = sk.rng.choice([r for r in _records(sk, col) if r.get(f)] or [{}])
    parent = sk.state.get(pv.collection, rec.get(f, "")) if rec else None
    if parent is None:
        raise Reject("dangling reference")
    fields = _scalar_fields(pv, parent)
    if not fields:
        raise Reject("no readable parent field")
    pf = sk.rng.choice(fields)
    noun, pnoun = _noun(col), _noun(pv)
    sk.say(
        render(
            "related_read",
            sk.rng,
            sk.style,
            noun=noun,
            id=rec["id"],
            parent_noun=pnoun,
            parent_field=humanize(pf),
        ),
        rec["id"],
    )
    get = sk.rng.choice(col.tools("get"))
    sk.call(get, {get.semantics.id_arg: rec["id"]})  # type: ignore[union-attr]
    pget = sk.rng.choice(pv.tools("get"))
    sk.call(pget, {pget.semantics.id_arg: parent["id"]})  # type: ignore[union-attr]
    sk.finish(
        f"{noun.capitalize()} {rec['id']} belongs to {pnoun} {parent['id']}, whose {humanize(pf)} is {parent[pf]}.",
        [parent[pf]],
    )


@blueprint("create_for_parent", 1.0, "moderate")
def create_for_parent(sk: Sketch) -> None:
    options = []
    for col in _cols(sk, "create"):
        for f, pv in _parent_views(sk, col):
            if label_field(pv.entity) and (pv.tools("search") or pv.tools("list")):
                for tool in col.tools("create"):
                    arg = _arg_for(tool, f)
                    if arg:
                        options.append((col, pv, tool, arg))
    if not options:
        raise Reject("no create with a findable parent", structural=True)
    col, pv, tool, arg = sk.rng.choice(options)
    parent = sk.rng.choice([r for r in _records(sk, pv) if _name(pv, r)] or [{}])
    if not parent:
        raise Reject("no named parent")
    args = _create_args(sk, col, tool, {arg: parent["id"]})
    pref = _ref(pv, parent)
    noun, pnoun = _noun(col), _noun(pv)
    sk.say(
        render(
            "create_for_parent",
            sk.rng,
            sk.style,
            noun=noun,
            parent_noun=pnoun,
            parent_ref=pref,
            details=details(_pairs(args, (arg,))),
        ),
        pref,
        *[v for k, v in args.items() if k != arg],
    )
    _find(sk, pv, parent)
    rec = sk.call(tool, args)
    sk.finish(f"Created {noun} {rec['id']} for {pnoun} {pref}.", [rec["id"]])


def _children_lister(sk: Sketch, col: CollectionView, ref_field: str) -> tuple[ToolSpec, str] | None:
    for tool in col.tools("list"):
        sem = tool.semantics
        assert sem is not None
        for arg, flt in sem.filters.items():
            if flt.field == ref_field and flt.op == "eq":
                return tool, arg
    return None


def _family(
    sk: Sketch, need_child_ops: tuple[str, ...]
) -> tuple[CollectionView, CollectionView, str, ToolSpec, str]:
    """(child view, parent view, ref field, child lister, its filter arg) with a findable parent."""
    options = []
    for col in _cols(sk, *need_child_ops):
        for f, pv in _parent_views(sk, col):
            lister = _children_lister(sk, col, f)
            if lister and label_field(pv.entity) and (pv.tools("search") or pv.tools("list")):
                options.append((col, pv, f, *lister))
    if not options:
        raise Reject("no parent/children pair to work on", structural=True)
    return sk.rng.choice(options)


@blueprint("list_children", 0.8, "moderate")
def list_children(sk: Sketch) -> None:
    col, pv, f, lister, arg = _family(sk, ())
    parents = [p for p in _records(sk, pv) if _name(pv, p)]
    parent = sk.rng.choice(parents)
    kids = [r for r in _records(sk, col) if r.get(f) == parent["id"]]
    if not 1 <= len(kids) <= 5 or any(_name(col, k) is None for k in kids):
        raise Reject("want one to five named children")
    pref = _ref(pv, parent)
    nouns = plural(_noun(col))
    sk.say(
        render("list_children", sk.rng, sk.style, nouns=nouns, parent_noun=_noun(pv), parent_ref=pref), pref
    )
    _find(sk, pv, parent)
    page = sk.call(lister, {arg: parent["id"]})
    if page.get("next_cursor") or len(page["items"]) != len(kids):
        raise Reject("children span pages")
    names = [_name(col, k) for k in page["items"]]
    sk.finish(f"{pref} has {len(kids)} {nouns}: {'; '.join(names)}.", [len(kids), *names])  # type: ignore[list-item]


@blueprint("refused_action", 0.8, "moderate")
def refused_action(sk: Sketch) -> None:
    col = _col(sk, "action", labelled=True)
    for tool in sk.rng.sample(col.tools("action"), len(col.tools("action"))):
        sem = tool.semantics
        assert sem is not None
        if not sem.preconditions:
            continue
        bad = [r for r in _records(sk, col) if _name(col, r) and not _allowed(sk, tool, r)]
        if bad:
            break
    else:
        raise Reject("no refused action")
    rec = sk.rng.choice(bad)
    field = sem.preconditions[0].field
    status = rec.get(field)
    if status is None:
        raise Reject("precondition on a missing field")
    said = _state_words(field, status)
    extra = _extra_args(sk, tool)
    ref = _ref(col, rec)
    noun = _noun(col)
    action, _ = _say_action(sk, col, tool, ref, extra)
    _find(sk, col, rec)
    sk.call(tool, {sem.id_arg: rec["id"], **extra}, expect_ok=False)
    sk.finish(
        f"I could not {action} {noun} {ref}: {said[0]}, which does not allow it. Nothing was changed.",
        [said[1]],
    )
    sk.tags.append("refusal")


@blueprint("ask_then_update", 0.9, "moderate")
def ask_then_update(sk: Sketch) -> None:
    col = _col(sk, "update", labelled=True)
    rec, (tool, arg, field, value) = _updatable(sk, col, named=True)
    noun, ref = _noun(col), _ref(col, rec)
    hf = humanize(field)
    sk.say(
        sk.rng.choice(
            (
                f"The {hf} of {noun} {ref} needs to change.",
                f"Please fix the {hf} on {noun} {ref}.",
                f"I want to update {ref}'s {hf}.",
            )
        ),
        ref,
    )
    sk.ask(f"What should the new {hf} of {ref} be?", field, value, f"It should be {value}.")
    _find(sk, col, rec)
    sk.call(tool, {tool.semantics.id_arg: rec["id"], arg: value})  # type: ignore[union-attr]
    sk.finish(f"Done: {ref} ({rec['id']}) now has {hf} {value}.", [value])
    sk.tags.append("ask_user")


@blueprint("move_child", 1.5, "moderate")
def move_child(sk: Sketch) -> None:
    """Find a record and its new parent by name, then re-point it: two reads feed one write."""
    options = []
    for col in _cols(sk, "update", labelled=True):
        for f, pv in _parent_views(sk, col):
            if not label_field(pv.entity) or not (pv.tools("search") or pv.tools("list")):
                continue
            for tool in col.tools("update"):
                sem = tool.semantics
                assert sem is not None
                arg = _arg_for(tool, f)
                if arg and arg != sem.id_arg:
                    options.append((col, pv, f, tool, arg))
    if not options:
        raise Reject("no update of a reference to a findable parent", structural=True)
    col, pv, f, tool, arg = sk.rng.choice(options)
    kids = [r for r in _records(sk, col) if _name(col, r) and r.get(f) and _allowed(sk, tool, r)]
    if not kids:
        raise Reject("nothing to move")
    kid = sk.rng.choice(kids)
    parents = [p for p in _records(sk, pv) if _name(pv, p) and p["id"] != kid[f]]
    if not parents:
        raise Reject("no other parent")
    parent = sk.rng.choice(parents)
    ref, pref = _ref(col, kid), _ref(pv, parent)
    noun, pnoun = _noun(col), _noun(pv)
    sk.say(
        sk.rng.choice(
            (
                f"Move the {noun} {ref} to the {pnoun} {pref}.",
                f"{ref} should belong to {pnoun} {pref} from now on.",
                f"Please reassign {noun} {ref} to {pref}.",
            )
        ),
        ref,
        pref,
    )
    _find(sk, col, kid)
    _find(sk, pv, parent)
    sk.call(tool, {tool.semantics.id_arg: kid["id"], arg: parent["id"]})  # type: ignore[union-attr]
    sk.finish(
        f"{noun.capitalize()} {kid['id']} now belongs to {pnoun} {pref} ({parent['id']}).", [parent["id"]]
    )


@blueprint("update_and_act", 1.5, "moderate")
def update_and_act(sk: Sketch) -> None:
    """Find a record by name, change a field, then apply an action the change still allows."""
    col = _col(sk, "update", "action", labelled=True)
    rec, (utool, arg, field, value) = _updatable(sk, col, named=True)
    after = {**rec, field: value}
    tools = [t for t in col.tools("action") if _allowed(sk, t, after) and not _extra_args(sk, t)]
    if not tools:
        raise Reject("no action allowed after the update")
    atool = sk.rng.choice(tools)
    action, done = action_phrase(atool, col)
    noun, ref, hf = _noun(col), _ref(col, rec), humanize(field)
    sk.say(
        sk.rng.choice(
            (
                f"Set the {hf} of {noun} {ref} to {value}, then {action} it.",
                f"Two things for {ref}: its {hf} becomes {value}, and please {action} it.",
                f"Change {ref}'s {hf} to {value} and {action} the {noun} afterwards.",
            )
        ),
        ref,
        value,
    )
    _find(sk, col, rec)
    sk.call(utool, {utool.semantics.id_arg: rec["id"], arg: value})  # type: ignore[union-attr]
    sk.call(atool, {atool.semantics.id_arg: rec["id"]})  # type: ignore[union-attr]
    sk.finish(f"{ref} ({rec['id']}) now has {hf} {value} and is {done}.", [value, rec["id"]])


@blueprint("create_and_act", 1.5, "moderate")
def create_and_act(sk: Sketch) -> None:
    """Create a record for a parent found by name, then act on the new record (its id from the create)."""
    options = []
    for col in _cols(sk, "create", "action"):
        for f, pv in _parent_views(sk, col):
            if label_field(pv.entity) and (pv.tools("search") or pv.tools("list")):
                for tool in col.tools("create"):
                    sem = tool.semantics
                    assert sem is not None
                    arg = _arg_for(tool, f)
                    if arg:
                        options.append((col, pv, tool, arg))
    if not options:
        raise Reject("no create with a findable parent next to an action", structural=True)
    col, pv, tool, arg = sk.rng.choice(options)
    parent = sk.rng.choice([r for r in _records(sk, pv) if _name(pv, r)] or [{}])
    if not parent:
        raise Reject("no named parent")
    args = _create_args(sk, col, tool, {arg: parent["id"]})
    pref, noun, pnoun = _ref(pv, parent), _noun(col), _noun(pv)
    _find(sk, pv, parent)
    rec = sk.call(tool, args)
    acts = [t for t in col.tools("action") if _allowed(sk, t, rec) and not _extra_args(sk, t)]
    if not acts:
        raise Reject("no action allowed on the new record")
    atool = sk.rng.choice(acts)
    action, done = action_phrase(atool, col)
    sk.say(
        sk.rng.choice(
            (
                f"Add a {noun} for {pnoun} {pref} with {details(_pairs(args, (arg,)))}, and {action} it straight away.",
                f"{pref} needs a new {noun} ({details(_pairs(args, (arg,)))}); once it exists, {action} it.",
            )
        ),
        pref,
        *[v for k, v in args.items() if k != arg],
    )
    sk.call(atool, {atool.semantics.id_arg: rec["id"]})  # type: ignore[union-attr]
    sk.finish(f"Created {noun} {rec['id']} for {pnoun} {pref} and {done} it.", [rec["id"]])


# ---- complex: many dependent calls, a question or an error ------------------------------------


def _ensure_children(
    sk: Sketch,
    col: CollectionView,
    f: str,
    parent: dict[str, Any],
    n: int,
    fits: Callable[[dict[str, Any]], bool],
) -> None:
    """Give `parent` at least `n` children that fit, by re-pointing other records at it (before any call)."""
    if sk.steps:
        raise AssertionError("the state is shaped before the gold calls")
    have = [r for r in sk.state.iter(col.collection) if r.get(f) == parent["id"] and fits(r)]
    spare = [r for r in sk.state.iter(col.collection) if r.get(f) != parent["id"] and fits(r)]
    sk.rng.shuffle(spare)
    for r in spare[: max(0, n - len(have))]:
        moved = {**r, f: parent["id"]}
        sk.initial.put(col.collection, moved)
        sk.state.put(col.collection, moved)


def _reset_state(sk: Sketch) -> None:
    sk.state = sk.initial.fork()


def _act_on_all(
    sk: Sketch, tool: ToolSpec, records: list[dict[str, Any]]
) -> tuple[list[dict[str, Any]], str]:
    """Apply action `tool` to every record in one turn (some may refuse); returns the refused
    records and how to say why each was refused."""
    sem = tool.semantics
    assert sem is not None
    results = sk.calls([(tool, {sem.id_arg: r["id"]}) for r in records], expect_ok=None)  # type: ignore[misc]
    failed = [r for r, res in zip(records, results, strict=True) if not isinstance(res, dict)]
    field = sem.preconditions[0].field
    return failed, "; ".join(f"{r['id']} ({_state_words(field, r.get(field))[0]})" for r in failed)


@blueprint("bulk_action", 1.2, "complex")
def bulk_action(sk: Sketch) -> None:
    col, pv, f, lister, arg = _family(sk, ("action",))
    tools = [t for t in col.tools("action") if t.semantics.preconditions]  # type: ignore[union-attr]
    if not tools:
        raise Reject("no action with a precondition", structural=True)
    tool = sk.rng.choice(tools)
    if _extra_args(sk, tool):
        raise Reject("the action needs more arguments", structural=True)
    parent = sk.rng.choice([p for p in _records(sk, pv) if _name(pv, p)] or [{}])
    if not parent:
        raise Reject("no named parent")
    _ensure_children(sk, col, f, parent, 3, lambda r: _allowed(sk, tool, r))
    _ensure_children(sk, col, f, parent, 1, lambda r: not _allowed(sk, tool, r))
    _reset_state(sk)
    kids = [r for r in _records(sk, col) if r.get(f) == parent["id"]]
    ok = [k for k in kids if _allowed(sk, tool, k)]
    refused = [k for k in kids if not _allowed(sk, tool, k)]
    if len(ok) < 3 or not refused or len(kids) > 12:
        raise Reject("want three or more children it applies to and one it does not")
    action, done = action_phrase(tool, col)
    pref = _ref(pv, parent)
    sk.say(
        render(
            "bulk_action",
            sk.rng,
            sk.style,
            action=action,
            noun=_noun(col),
            nouns=plural(_noun(col)),
            parent_noun=_noun(pv),
            parent_ref=pref,
            filter="",
        ),
        pref,
    )
    _find(sk, pv, parent)
    page = sk.call(lister, {arg: parent["id"]})
    if page.get("next_cursor"):
        raise Reject("children span pages")
    failed, bad = _act_on_all(sk, tool, page["items"])
    if {k["id"] for k in failed} != {k["id"] for k in refused}:
        raise Reject("the refused children are not the expected ones")
    sk.finish(
        f"I {done} {len(ok)} {plural(_noun(col))} of {pref}. These could not be {done}: {bad}.",
        [len(ok), *[k["id"] for k in failed]],
    )
    sk.tags.append("recovery")


@blueprint("bulk_filtered_action", 1.0, "complex")
def bulk_filtered_action(sk: Sketch) -> None:
    """Act on every record a list filter selects; one of them refuses (reported, the rest done)."""
    col = _col(sk, "action", "list")
    props = col.entity.record_schema.get("properties", {})
    options = []
    for lister in col.tools("list"):
        sem = lister.semantics
        assert sem is not None
        for arg, flt in sem.filters.items():
            fs = props.get(flt.field, {})
            if (
                flt.op == "eq"
                and flt.field not in col.entity.refs
                and ("enum" in fs or fs.get("type") == "string")
            ):
                for tool in col.tools("action"):
                    tsem = tool.semantics
                    assert tsem is not None
                    if tsem.preconditions and flt.field not in {c.field for c in tsem.preconditions}:
                        options.append((lister, arg, flt.field, tool))
    if not options:
        raise Reject("no list filter next to an action with a precondition", structural=True)
    lister, arg, field, tool = sk.rng.choice(options)
    if _extra_args(sk, tool):
        raise Reject("the action needs more arguments", structural=True)
    values = [r.get(field) for r in _records(sk, col) if isinstance(r.get(field), str)]
    if not values:
        raise Reject("no value to filter by")
    value = sk.rng.choice(values)
    for fits, n in ((lambda r: _allowed(sk, tool, r), 3), (lambda r: not _allowed(sk, tool, r), 1)):
        have = [r for r in sk.state.iter(col.collection) if r.get(field) == value and fits(r)]
        spare = [r for r in sk.state.iter(col.collection) if r.get(field) != value and fits(r)]
        for r in spare[: max(0, n - len(have))]:
            sk.initial.put(col.collection, {**r, field: value})
    _reset_state(sk)
    chosen = [r for r in _records(sk, col) if r.get(field) == value]
    ok = [r for r in chosen if _allowed(sk, tool, r)]
    if len(ok) < 3 or len(ok) == len(chosen) or len(chosen) > 12:
        raise Reject("want three or more records it applies to and one it does not")
    action, done = action_phrase(tool, col)
    nouns = plural(_noun(col))
    hf = humanize(field)
    sk.say(
        sk.rng.choice(
            (
                f"Please {action} every {_noun(col)} whose {hf} is {value}.",
                f"{action[:1].upper() + action[1:]} all {nouns} with {hf} {value}.",
                f"Go through the {nouns} with {hf} {value} and {action} each of them.",
            )
        ),
        value,
    )
    page = sk.call(lister, {arg: value})
    if page.get("next_cursor") or len(page["items"]) != len(chosen):
        raise Reject("the records span pages")
    failed, bad = _act_on_all(sk, tool, page["items"])
    sk.finish(
        f"I {done} {len(ok)} {nouns} with {hf} {value}. These could not be {done}: {bad}.",
        [len(ok), *[r["id"] for r in failed]],
    )
    sk.tags.append("recovery")


@blueprint("bulk_update_ask", 1.0, "complex")
def bulk_update_ask(sk: Sketch) -> None:
    col, pv, f, lister, arg = _family(sk, ("update",))
    parent = sk.rng.choice([p for p in _records(sk, pv) if _name(pv, p)] or [{}])
    if not parent:
        raise Reject("no named parent")
    _, (tool, targ, field, value) = _updatable(sk, col)
    fits = lambda r: _allowed(sk, tool, r) and r.get(field) != value  # noqa: E731
    _ensure_children(sk, col, f, parent, 3, fits)
    _reset_state(sk)
    kids = [r for r in _records(sk, col) if r.get(f) == parent["id"]]
    if len(kids) < 3 or len(kids) > 12 or not all(fits(k) for k in kids):
        raise Reject("want three or more children that all take the update")
    pref = _ref(pv, parent)
    hf = humanize(field)
    nouns = plural(_noun(col))
    sk.say(
        sk.rng.choice(
            (
                f"All {nouns} of {_noun(pv)} {pref} need the same {hf}.",
                f"Please set one {hf} on every {_noun(col)} of {pref}.",
                f"The {nouns} belonging to {pref} should all get a new {hf}.",
            )
        ),
        pref,
    )
    sk.ask(f"Which {hf} should the {nouns} of {pref} get?", field, value, f"Make it {value} for all of them.")
    _find(sk, pv, parent)
    page = sk.call(lister, {arg: parent["id"]})
    if page.get("next_cursor"):
        raise Reject("children span pages")
    sk.calls([(tool, {tool.semantics.id_arg: k["id"], targ: value}) for k in page["items"]])  # type: ignore[union-attr]
    sk.finish(f"All {len(kids)} {nouns} of {pref} now have {hf} {value}.", [len(kids), value])
    sk.tags.append("ask_user")


# ---- real tools: call patterns and a judge -----------------------------------------------------------


def _purpose(tool: ToolSpec) -> str:
    text = tool.description.strip().split("\n")[0].split(". ")[0].split(" - ")[0].rstrip(".")
    text = text[:1].lower() + text[1:]
    return text[:140].rsplit(" ", 1)[0] if len(text) > 140 else text


def _real_args(sk: Sketch, tool: ToolSpec) -> dict[str, Any]:
    args = tool_arguments(tool.input_schema, sk.rng)
    if args is None:
        raise Reject(f"cannot make arguments for {tool.name}")
    return args


@blueprint("real_call", 1.0, "simple")
def real_call(sk: Sketch) -> None:
    if not sk.view.real:
        raise Reject("no real tools", structural=True)
    tool = sk.rng.choice(sk.view.real)
    args = _real_args(sk, tool)
    server = tool.provenance.server.split("_", 1)[-1].replace("-", " ")
    sk.say(
        render("real_call", sk.rng, sk.style, server=server, purpose=_purpose(tool), with_args=_with(args)),
        *args.values(),
    )
    sk.call(tool, args)
    sk.judge.append(
        f"The reply reports what {tool.name} returned for {details(list(args.items())) if args else 'the request'}, "
        "or that it failed, without inventing results."
    )
    sk.finish(f"I called {tool.name}{_with(args)}; here is what it returned.")
    sk.tags.append("real_tool")


@blueprint("real_pair", 0.5, "moderate")
def real_pair(sk: Sketch) -> None:
    if len(sk.view.real) < 2:
        raise Reject("fewer than two real tools", structural=True)
    a, b = sk.rng.sample(sk.view.real, 2)
    args_a, args_b = _real_args(sk, a), _real_args(sk, b)
    server = a.provenance.server.split("_", 1)[-1].replace("-", " ")
    sk.say(
        render(
            "real_pair",
            sk.rng,
            sk.style,
            server=server,
            purpose_a=_purpose(a),
            with_a=_with(args_a),
            purpose_b=_purpose(b),
            with_b=_with(args_b),
        ),
        *args_a.values(),
        *args_b.values(),
    )
    sk.call(a, args_a)
    sk.call(b, args_b)
    sk.judge.append("The reply reports the results of both requested calls, without inventing results.")
    sk.finish(f"I called {a.name} and then {b.name}; here is what they returned.")
    sk.tags.append("real_tool")
