"""Blueprint → DomainSpec: typed entities, tools with exact semantics, seed records, worked examples.

For each entity of a blueprint the builder makes the record schema (archetype attributes + the
blueprint's + `status` for a lifecycle + `<ref>_id` references + `archived` for archivable
entities) and these tools, all runnable on the deterministic engine:

    create, get, list (filters, date range, pagination), search, count, update, delete,
    one action per lifecycle transition (precondition on status), archive / restore,
    list-by-parent for a reference, set-<enum> for one enum attribute.

A domain's *API style* is drawn from its name and the seed — verb vocabulary (create/add/new...),
snake_case, camelCase or kebab-case names, `<entity>_id` or `id` parameters, camelCase
parameters, pagination names — so the repository does not read like one template. Seed records
cover every lifecycle state. Every tool's input schema carries one `examples` entry that succeeds
on the seed world (a test runs them all). Deterministic: same blueprint and seed, same bytes.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import random
import re
import zlib
from dataclasses import dataclass
from typing import Any

from agentgym.repository.synth.archetypes import ARCHETYPES
from agentgym.repository.synth.blueprint import AttributeBlueprint, DomainBlueprint, EntityBlueprint
from agentgym.repository.synth.values import schema_of, value
from agentgym.spec.tool import (
    Condition,
    Effect,
    FilterArg,
    Provenance,
    Taxonomy,
    ToolAnnotations,
    ToolSemantics,
    ToolSpec,
    qualified_name,
)
from agentgym.spec.world import DomainSpec, EntitySpec, WorldSnapshot
from agentgym.world.domain import annotations_for, output_schema_for

SEED_RECORDS = 6
CLONABLE = frozenset({"document", "event", "task", "item", "media", "subscription"})
ARCHIVABLE = frozenset({"document", "item", "place", "asset", "media", "organization", "subscription"})
STAMPS = ("updated_at",)
NOW_DEFAULTS = ("created_at", "sent_at", "updated_at", "published_at")

VERBS: dict[str, tuple[str, ...]] = {
    "create": ("create", "add", "new", "register"),
    "get": ("get", "fetch", "retrieve", "read"),
    "list": ("list", "list", "browse", "enumerate"),
    "search": ("search", "find", "lookup", "query"),
    "count": ("count", "count", "tally"),
    "update": ("update", "edit", "modify", "patch"),
    "delete": ("delete", "remove", "drop", "purge"),
}
CLONE_VERBS = ("clone", "duplicate", "copy")
BUILDER_VERBS = frozenset(
    {v for vs in VERBS.values() for v in vs}
    | set(CLONE_VERBS)
    | {"archive", "restore", "reassign", "tag", "untag"}
)
"""Verbs the builder names its own tools with: a lifecycle verb among them would collide with one."""
PAGING = (
    ("limit", "cursor"),
    ("page_size", "page_token"),
    ("max_results", "next_token"),
    ("limit", "offset_token"),
)


@dataclass(frozen=True)
class Style:
    """How one domain's API spells things."""

    case: str  # snake | camel | kebab (tool names)
    args_camel: bool
    id_plain: bool  # 'id' instead of '<entity>_id'
    verbs: dict[str, str]
    paging: tuple[str, str]


def style_for(domain: str, seed: int) -> Style:
    rng = random.Random(f"style/{seed}/{domain}")
    case = rng.choices(("snake", "camel", "kebab"), weights=(6, 3, 1))[0]
    return Style(
        case=case,
        args_camel=case == "camel" and rng.random() < 0.8,
        id_plain=rng.random() < 0.25,
        verbs={op: rng.choice(vs) for op, vs in VERBS.items()},
        paging=rng.choice(PAGING),
    )


def _camel(snake: str) -> str:
    head, *rest = snake.split("_")
    return head + "".join(p[:1].upper() + p[1:] for p in rest)


def _tool_name(style: Style, *parts: str) -> str:
    words = [w for p in parts for w in p.split("_") if w]
    if style.case == "camel":
        return _camel("_".join(words))
    return ("-" if style.case == "kebab" else "_").join(words)


def _human(name: str) -> str:
    return name.replace("_", " ")


def _a(noun: str) -> str:
    """'a session' / 'an exercise plan'."""
    return ("an " if noun[:1] in "aeiou" else "a ") + noun


def _transition_text(verb: str, article_noun: str, source: tuple[str, ...], target: str) -> str:
    """`Cancel a booking: moves it from booked to cancelled.`; a verb that carries its own object
    or particle (`Assign to client`, `Open entries`) cannot take the noun after it, so the noun
    moves into the clause: `Open entries: moves a contest from upcoming to open.`"""
    states = " or ".join(source)
    if " " in verb:
        return f"{verb}: moves {article_noun} from {states} to {target}."
    return f"{verb} {article_noun}: moves it from {states} to {target}."


class Builder:
    """Builds one domain (see module doc)."""

    def __init__(self, bp: DomainBlueprint, seed: int = 0, source: str = "synthetic") -> None:
        self.bp, self.seed, self.source = bp, seed, source
        self.style = style_for(bp.name, seed)
        self.rng = random.Random(int(hashlib.sha256(f"{seed}/{bp.name}".encode()).hexdigest()[:16], 16))
        self.by_name = {e.name: e for e in bp.entities}
        self.tools: list[ToolSpec] = []
        self.names: set[str] = set()
        self.prefixes: dict[str, str] = {}
        self.seed_rows: dict[str, list[dict[str, Any]]] = {}

    # ---- names ---------------------------------------------------------------------------------

    def col(self, e: EntityBlueprint) -> str:
        return f"{self.bp.name}.{e.plural_name}"

    def arg(self, field: str) -> str:
        return _camel(field) if self.style.args_camel else field

    def id_arg(self, e: EntityBlueprint) -> str:
        return "id" if self.style.id_plain else self.arg(f"{e.name}_id")

    def prefix(self, e: EntityBlueprint) -> str:
        if e.name not in self.prefixes:
            used = set(self.prefixes.values())
            cands = [
                "".join(w[0] for w in e.name.split("_")) + e.name.split("_")[-1][1:3],
                e.name[:4],
                e.name,
            ]
            p = next(c for c in cands if c not in used and len(c) >= 2)
            self.prefixes[e.name] = p
        return self.prefixes[e.name]

    def fields(self, e: EntityBlueprint) -> list[AttributeBlueprint]:
        return [*ARCHETYPES[e.archetype], *e.attributes]

    # ---- entity ---------------------------------------------------------------------------------

    def unique_keys(self, e: EntityBlueprint) -> tuple[str, ...]:
        """The fields no two records of `e` may share: a person's or an account's email and username."""
        if e.archetype not in ("person", "account"):
            return ()
        names = {a.name for a in self.fields(e)}
        return tuple(n for n in ("email", "username") if n in names)

    def entity_spec(self, e: EntityBlueprint) -> EntitySpec:
        props: dict[str, Any] = {"id": {"type": "string"}}
        required = ["id"]
        for a in self.fields(e):
            props[a.name] = schema_of(a)
            if a.required:
                required.append(a.name)
        if e.lifecycle:
            props["status"] = {"type": "string", "enum": list(e.lifecycle.states)}
            required.append("status")
        for r in e.refs:
            props[f"{r}_id"] = {"type": "string", "description": f"Id of the {_human(r)} it belongs to."}
            required.append(f"{r}_id")
        if self.archivable(e):
            props["archived"] = {"type": "boolean"}
            required.append("archived")
        unique = self.unique_keys(e)
        return EntitySpec(
            collection=self.col(e),
            description=e.description or f"A {_human(e.name)}.",
            id_prefix=self.prefix(e),
            record_schema={
                "type": "object",
                "additionalProperties": False,
                "required": required,
                "properties": props,
            },
            unique=unique,
            refs={f"{r}_id": self.col(self.by_name[r]) for r in e.refs},
        )

    def archivable(self, e: EntityBlueprint) -> bool:
        return e.lifecycle is None and e.archetype in ARCHIVABLE

    def draw(self, a: AttributeBlueprint, e: EntityBlueprint, i: int, taken: set[Any] | None = None) -> Any:
        """A value for attribute `a`; one not in `taken` when given (a unique key drawn twice would make
        the seed world, or a worked example, violate the entity's own uniqueness constraint)."""
        for _ in range(20):
            v = value(a, self.rng, entity=e.name, domain=self.bp.name, i=i)
            if not taken or v not in taken:
                return v
        raise ValueError(f"{self.bp.name}: cannot draw a unique {e.name}.{a.name}")

    def taken(self, e: EntityBlueprint, name: str) -> set[Any] | None:
        """The seed records' values of `name` when it is a unique key of `e`, else None."""
        if name not in self.unique_keys(e):
            return None
        return {r.get(name) for r in self.seed_rows[e.name]}

    def seed_records(self, e: EntityBlueprint) -> list[dict[str, Any]]:
        rows = []
        unique = set(self.unique_keys(e))
        used: dict[str, set[Any]] = {k: set() for k in unique}
        for i in range(SEED_RECORDS):
            rec: dict[str, Any] = {"id": f"{self.prefix(e)}_{i + 1:04d}"}
            for a in self.fields(e):
                if a.required or i == 0 or self.rng.random() < 0.8:
                    rec[a.name] = self.draw(a, e, i, used.get(a.name))
                    if a.name in unique:
                        used[a.name].add(rec[a.name])
            if e.lifecycle:
                rec["status"] = e.lifecycle.states[i % len(e.lifecycle.states)]
            for r in e.refs:
                rec[f"{r}_id"] = self.rng.choice(self.seed_rows[r])["id"]
            if self.archivable(e):
                rec["archived"] = i % 4 == 3
            _order_times(rec)
            rows.append(rec)
        return rows

    # ---- tools ----------------------------------------------------------------------------------

    def add_tool(
        self,
        name: str,
        description: str,
        params: dict[str, Any],
        required: list[str],
        sem: ToolSemantics,
        entity: EntitySpec,
        example: dict[str, Any],
        title: str,
    ) -> None:
        if name in self.names:
            return
        self.names.add(name)
        description = f"{description} {self.context(entity, name)}"
        schema: dict[str, Any] = {"type": "object", "additionalProperties": False, "properties": params}
        if required:
            schema["required"] = required
        schema["examples"] = [example]
        self.tools.append(
            ToolSpec(
                name=qualified_name(self.bp.name, name),
                title=title,
                description=description,
                input_schema=schema,
                output_schema=output_schema_for(sem, entity),
                annotations=ToolAnnotations(**{**annotations_for(sem).model_dump(), "title": title}),
                provenance=Provenance(
                    source=self.source,
                    server=self.bp.name,
                    original_name=name,
                    package=f"agentgym-synth/{self.seed}",
                    license="MIT",
                ),
                taxonomy=Taxonomy(category=self.bp.category, domain=self.bp.name),
                semantics=sem,
            )
        )

    def entity_tools(self, e: EntityBlueprint, spec: EntitySpec) -> None:
        s, v = self.style, self.style.verbs
        noun, plural, h = e.name, e.plural_name, _human(e.name)
        col, idarg = self.col(e), self.id_arg(e)
        rows = self.seed_rows[e.name]
        first = rows[0]
        id_param = {"type": "string", "description": f"Id of the {h} (e.g. {first['id']})."}
        attrs = [a for a in self.fields(e)]
        field_args = {self.arg(a.name): a.name for a in attrs if self.arg(a.name) != a.name}
        ref_args = {self.arg(f"{r}_id"): f"{r}_id" for r in e.refs}
        field_args.update({k: f for k, f in ref_args.items() if k != f})
        terminal = self._terminal(e)
        stamps = tuple(
            Effect(op="set", field=f, value={"$now": True})
            for f in STAMPS
            if f in spec.record_schema["properties"]
        )

        # create
        params = {self.arg(a.name): schema_of(a) for a in attrs}
        params.update(
            {
                k: {"type": "string", "description": f"Id of the {_human(f[:-3])}."}
                for k, f in ref_args.items()
            }
        )
        req = [self.arg(a.name) for a in attrs if a.required] + list(ref_args)
        defaults: dict[str, Any] = {
            f: {"$now": True} for f in NOW_DEFAULTS if f in spec.record_schema["properties"]
        }
        if e.lifecycle:
            defaults["status"] = e.lifecycle.states[0]
        if self.archivable(e):
            defaults["archived"] = False
        example = {
            self.arg(a.name): self.draw(a, e, 97, self.taken(e, a.name))
            for a in attrs
            if a.required or self.rng.random() < 0.5
        }
        example.update({k: first[f] for k, f in ref_args.items()})
        _order_times(example, self.arg)
        self.add_tool(
            _tool_name(s, v["create"], noun),
            f"{self._cap(v['create'])} {_a(h)} in {self._dname()}. Required: {', '.join(req) or 'nothing'}. "
            f"Returns the stored {h} with its new id.",
            params,
            req,
            ToolSemantics(operation="create", collection=col, field_args=field_args, defaults=defaults),
            spec,
            example,
            f"{self._cap(v['create'])} {h}",
        )
        # get
        self.add_tool(
            _tool_name(s, v["get"], noun),
            f"{self._cap(v['get'])} one {h} by id, with all its fields.",
            {idarg: id_param},
            [idarg],
            ToolSemantics(operation="get", collection=col, id_arg=idarg),
            spec,
            {idarg: first["id"]},
            f"{self._cap(v['get'])} {h}",
        )
        # list and count
        filters, fparams, fexample = self._filters(e, rows)
        lim, cur = (self.arg(p) for p in self.style.paging)
        sort = self._sort(e)
        page = {
            lim: {"type": "integer", "minimum": 1, "maximum": 100, "description": "Page size (default 20)."},
            cur: {"type": "string", "description": "Token from the previous page's next_cursor."},
        }
        self.add_tool(
            _tool_name(s, v["list"], plural),
            f"{self._cap(v['list'])} {_human(plural)}"
            + (f", filtered by {', '.join(fparams)}" if fparams else "")
            + (f"; ordered by {sort.lstrip('-')}" if sort else "")
            + ". Paginated: pass next_cursor back as "
            f"{cur}.",
            {**fparams, **page},
            [],
            ToolSemantics(
                operation="list", collection=col, filters=filters, sort=sort, limit_arg=lim, cursor_arg=cur
            ),
            spec,
            fexample,
            f"{self._cap(v['list'])} {_human(plural)}",
        )
        self.add_tool(
            _tool_name(s, v["count"], plural),
            f"Count {_human(plural)}" + (f" matching {', '.join(fparams)}" if fparams else "") + ".",
            dict(fparams),
            [],
            ToolSemantics(operation="count", collection=col, filters=filters),
            spec,
            fexample,
            f"Count {_human(plural)}",
        )
        # search
        sfields = tuple(a.name for a in attrs if a.type in ("string", "text", "tags"))
        if sfields:
            word = self._search_word(first, sfields)
            self.add_tool(
                _tool_name(s, v["search"], plural),
                f"{self._cap(v['search'])} {_human(plural)} whose {', '.join(_human(f) for f in sfields[:4])} "
                "contain every word of the query (case-insensitive).",
                {"query": {"type": "string", "minLength": 1}, lim: page[lim]},
                ["query"],
                ToolSemantics(
                    operation="search",
                    collection=col,
                    query_arg="query",
                    search_fields=sfields,
                    limit_arg=lim,
                    sort=sort,
                ),
                spec,
                {"query": word},
                f"Search {_human(plural)}",
            )
        # update
        editable = [a for a in attrs if not a.required or a.type not in ("datetime",)]
        uparams = {idarg: id_param, **{self.arg(a.name): schema_of(a) for a in editable}}
        pre = self._editable(e, terminal)
        target = next((r for r in rows if self._ok(r, e, terminal)), first)
        change = editable[-1] if editable else attrs[0]
        self.add_tool(
            _tool_name(s, v["update"], noun),
            f"{self._cap(v['update'])} fields of {_a(h)}; only the fields given change."
            + (" Archived records cannot be changed." if self.archivable(e) else "")
            + (f" Not allowed once it is {' or '.join(terminal)}." if terminal else ""),
            uparams,
            [idarg],
            ToolSemantics(
                operation="update",
                collection=col,
                id_arg=idarg,
                field_args=field_args,
                preconditions=pre,
                effects=stamps,
            ),
            spec,
            {
                idarg: target["id"],
                self.arg(change.name): self.draw(change, e, 98, self.taken(e, change.name)),
            },
            f"{self._cap(v['update'])} {h}",
        )
        # delete
        self.add_tool(
            _tool_name(s, v["delete"], noun),
            f"Permanently {v['delete']} {_a(h)}.",
            {idarg: id_param},
            [idarg],
            ToolSemantics(operation="delete", collection=col, id_arg=idarg),
            spec,
            {idarg: rows[-1]["id"]},
            f"{self._cap(v['delete'])} {h}",
        )
        # lifecycle transitions
        if e.lifecycle:
            for t in e.lifecycle.transitions:
                rec = next(r for r in rows if r["status"] in t.source)
                self.add_tool(
                    _tool_name(s, t.verb, noun),
                    _transition_text(self._cap(_human(t.verb)), _a(h), t.source, t.target),
                    {idarg: id_param},
                    [idarg],
                    ToolSemantics(
                        operation="action",
                        collection=col,
                        id_arg=idarg,
                        preconditions=(
                            Condition(
                                field="status",
                                op="in",
                                value=list(t.source),
                                message=f"only {_a(h)} that is {' or '.join(t.source)} can be {t.target}",
                            ),
                        ),
                        effects=(Effect(op="set", field="status", value=t.target), *stamps),
                    ),
                    spec,
                    {idarg: rec["id"]},
                    f"{self._cap(_human(t.verb))} {h}",
                )
        # archive / restore
        if self.archivable(e):
            live = next(r for r in rows if not r["archived"])
            gone = next(r for r in rows if r["archived"])
            for verb, before, after, rec in (("archive", False, True, live), ("restore", True, False, gone)):
                self.add_tool(
                    _tool_name(s, verb, noun),
                    f"{verb.capitalize()} {_a(h)}"
                    + (
                        " (hidden from default views, read-only until restored)."
                        if after
                        else " that was archived."
                    ),
                    {idarg: id_param},
                    [idarg],
                    ToolSemantics(
                        operation="action",
                        collection=col,
                        id_arg=idarg,
                        preconditions=(
                            Condition(
                                field="archived",
                                value=before,
                                message=f"the {h} is {'already ' if after else 'not '}archived",
                            ),
                        ),
                        effects=(Effect(op="set", field="archived", value=after), *stamps),
                    ),
                    spec,
                    {idarg: rec["id"]},
                    f"{verb.capitalize()} {h}",
                )
        # list by parent
        if e.refs:
            r = e.refs[0]
            parg = self.arg(f"{r}_id")
            self.add_tool(
                _tool_name(s, v["list"], plural, "for", r),
                f"{self._cap(v['list'])} the {_human(plural)} of one {_human(r)}.",
                {
                    parg: {"type": "string", "description": f"Id of the {_human(r)}."},
                    lim: page[lim],
                    cur: page[cur],
                },
                [parg],
                ToolSemantics(
                    operation="list",
                    collection=col,
                    filters={parg: FilterArg(field=f"{r}_id")},
                    sort=sort,
                    limit_arg=lim,
                    cursor_arg=cur,
                ),
                spec,
                {parg: first[f"{r}_id"]},
                f"{_human(plural).capitalize()} of {_a(_human(r))}",
            )
        # set each enum attribute
        for enum in (a for a in e.attributes if a.type == "enum"):
            earg = self.arg(enum.name)
            self.add_tool(
                _tool_name(s, "set", noun, enum.name),
                f"Set the {_human(enum.name)} of {_a(h)} ({', '.join(enum.values)}).",
                {idarg: id_param, earg: schema_of(enum)},
                [idarg, earg],
                ToolSemantics(
                    operation="update",
                    collection=col,
                    id_arg=idarg,
                    field_args=field_args,
                    preconditions=pre,
                    effects=stamps,
                ),
                spec,
                {idarg: target["id"], earg: enum.values[-1]},
                f"Set {_human(enum.name)}",
            )
        # look up by a unique key
        for key in spec.unique:
            karg = self.arg(key)
            self.add_tool(
                _tool_name(s, v["get"], noun, "by", key),
                f"{self._cap(v['get'])} {_a(h)} by its {_human(key)}.",
                {karg: {"type": "string", "description": f"The {h}'s {_human(key)}."}},
                [karg],
                ToolSemantics(operation="get", collection=col, id_arg=karg, key_field=key),
                spec,
                {karg: first[key]},
                f"{self._cap(v['get'])} {h} by {_human(key)}",
            )
        # clone (templates: plans, events, tasks, items, documents)
        if e.archetype in CLONABLE:
            label = next(a for a in attrs if a.required and a.type == "string")
            resets = tuple(
                Effect(op="set", field=f, value={"$now": True})
                for f in NOW_DEFAULTS
                if f in spec.record_schema["properties"]
            )
            if e.lifecycle:
                resets += (Effect(op="set", field="status", value=e.lifecycle.states[0]),)
            if self.archivable(e):
                resets += (Effect(op="set", field="archived", value=False),)
            verb = self.rng.choice(CLONE_VERBS)
            self.add_tool(
                _tool_name(s, verb, noun),
                f"{self._cap(verb)} {_a(h)} under a new id, optionally with a new {_human(label.name)}"
                + (f"; the copy starts as {e.lifecycle.states[0]}" if e.lifecycle else "")
                + ".",
                {idarg: id_param, self.arg(label.name): schema_of(label)},
                [idarg],
                ToolSemantics(
                    operation="clone", collection=col, id_arg=idarg, field_args=field_args, effects=resets
                ),
                spec,
                {idarg: first["id"], self.arg(label.name): f"Copy of {first[label.name]}"[:200]},
                f"{self._cap(verb)} {h}",
            )
        # reassign to another parent
        if e.refs:
            r = e.refs[0]
            parg = self.arg(f"{r}_id")
            others = [x["id"] for x in self.seed_rows[r] if x["id"] != target.get(f"{r}_id")]
            self.add_tool(
                _tool_name(s, "reassign", noun),
                f"Move {_a(h)} to another {_human(r)}.",
                {idarg: id_param, parg: {"type": "string", "description": f"Id of the new {_human(r)}."}},
                [idarg, parg],
                ToolSemantics(
                    operation="update",
                    collection=col,
                    id_arg=idarg,
                    field_args=field_args,
                    preconditions=pre,
                    effects=stamps,
                ),
                spec,
                {idarg: target["id"], parg: others[0] if others else target[f"{r}_id"]},
                f"Reassign {h}",
            )
        # tags
        tags = next((a for a in attrs if a.type == "tags"), None)
        if tags is not None:
            targ = self.arg("tag")
            tagged = next((r for r in rows if r.get(tags.name) and self._ok(r, e, terminal)), None)
            cases = [
                ("tag", "append", "not_contains", "the tag is already there", (target["id"], "fresh-tag"))
            ]
            if tagged is not None:
                cases.append(
                    ("untag", "remove", "contains", "no such tag", (tagged["id"], tagged[tags.name][0]))
                )
            for verb, op, cond, msg, (rid, tag) in cases:
                self.add_tool(
                    _tool_name(s, verb, noun),
                    f"{'Add a tag to' if verb == 'tag' else 'Remove a tag from'} {_a(h)}.",
                    {idarg: id_param, targ: {"type": "string", "minLength": 1}},
                    [idarg, targ],
                    ToolSemantics(
                        operation="action",
                        collection=col,
                        id_arg=idarg,
                        preconditions=(
                            *pre,
                            Condition(field=tags.name, op=cond, value={"$arg": targ}, message=msg),
                        ),
                        effects=(Effect(op=op, field=tags.name, value={"$arg": targ}), *stamps),
                    ),
                    spec,
                    {idarg: rid, targ: tag},
                    f"{verb.capitalize()} {h}",
                )

    # ---- helpers ----------------------------------------------------------------------------------

    def context(self, entity: EntitySpec, tool: str) -> str:
        """A sentence saying what the records are or what the service does, so that a tool's
        description speaks of its domain and not only of its operation (real tools do; without it,
        generated tools cluster by operation template in embedding space). Which sentence a tool
        gets is a hash of its name: deterministic, and independent of the seeded draws."""
        bp = next((e for e in self.bp.entities if self.col(e) == entity.collection), None)
        about_entity = bp is not None and bp.description
        if about_entity and zlib.crc32(tool.encode()) % 2 == 0:
            return f"{self._cap(_human(bp.name))}: {bp.description}"
        text = self.bp.description.strip()
        return f"{self._cap(self._dname())} {text[:1].lower()}{text[1:]}"

    def _dname(self) -> str:
        return _human(self.bp.name)

    @staticmethod
    def _cap(s: str) -> str:
        return s[:1].upper() + s[1:]

    @staticmethod
    def _terminal(e: EntityBlueprint) -> tuple[str, ...]:
        if not e.lifecycle:
            return ()
        sources = {s for t in e.lifecycle.transitions for s in t.source}
        return tuple(s for s in e.lifecycle.states[1:] if s not in sources)

    def _editable(self, e: EntityBlueprint, terminal: tuple[str, ...]) -> tuple[Condition, ...]:
        pre = []
        if self.archivable(e):
            pre.append(Condition(field="archived", value=False, message=f"the {_human(e.name)} is archived"))
        if terminal:
            pre.append(
                Condition(
                    field="status",
                    op="not_in",
                    value=list(terminal),
                    message=f"{_a(_human(e.name))} that is {' or '.join(terminal)} can no longer be changed",
                )
            )
        return tuple(pre)

    def _ok(self, rec: dict[str, Any], e: EntityBlueprint, terminal: tuple[str, ...]) -> bool:
        return not rec.get("archived") and rec.get("status") not in terminal

    def _filters(
        self, e: EntityBlueprint, rows: list[dict[str, Any]]
    ) -> tuple[dict[str, FilterArg], dict[str, Any], dict[str, Any]]:
        filters: dict[str, FilterArg] = {}
        params: dict[str, Any] = {}
        example: dict[str, Any] = {}
        first = rows[0]
        if e.lifecycle:
            filters["status"] = FilterArg(field="status")
            params["status"] = {"type": "string", "enum": list(e.lifecycle.states)}
            example.setdefault("status", first["status"])
        for r in e.refs:
            a = self.arg(f"{r}_id")
            filters[a] = FilterArg(field=f"{r}_id")
            params[a] = {"type": "string", "description": f"Only those of this {_human(r)}."}
        for a in self.fields(e):
            if not a.filterable:
                continue
            arg = self.arg(a.name)
            if a.type == "tags":
                arg = self.arg("tag")
                filters[arg] = FilterArg(field=a.name, op="contains")
                params[arg] = {
                    "type": "string",
                    "description": f"Only those with this {_human(a.name)} entry.",
                }
                if first.get(a.name):
                    example.setdefault(arg, first[a.name][0])
            else:
                filters[arg] = FilterArg(field=a.name)
                params[arg] = schema_of(a)
                if a.name in first and not example:
                    example[arg] = first[a.name]
        date = next((a for a in self.fields(e) if a.type in ("date", "datetime")), None)
        if date is not None:
            lo, hi = self.arg(f"{date.name}_from"), self.arg(f"{date.name}_to")
            filters[lo] = FilterArg(field=date.name, op="gte")
            filters[hi] = FilterArg(field=date.name, op="lt")
            fmt = schema_of(date)
            params[lo] = {**fmt, "description": f"Only those with {_human(date.name)} at or after this."}
            params[hi] = {**fmt, "description": f"Only those with {_human(date.name)} before this."}
        if self.archivable(e):
            filters[self.arg("archived")] = FilterArg(field="archived")
            params[self.arg("archived")] = {
                "type": "boolean",
                "description": "Archived (true) or active (false) only.",
            }
        return filters, params, example

    def _sort(self, e: EntityBlueprint) -> str | None:
        f = self.fields(e)
        date = next((a.name for a in f if a.type in ("datetime", "date")), None)
        if date:
            return "-" + date if self.rng.random() < 0.5 else date
        return next((a.name for a in f if a.name in ("name", "title", "full_name", "username", "plan")), None)

    @staticmethod
    def _search_word(rec: dict[str, Any], fields: tuple[str, ...]) -> str:
        for f in fields:
            v = rec.get(f)
            text = " ".join(v) if isinstance(v, list) else v
            if isinstance(text, str):
                words = [w for w in re.findall(r"[A-Za-z]{4,}", text)]
                if words:
                    return words[0].lower()
        return "a"

    # ---- domain -------------------------------------------------------------------------------------

    def build(self) -> DomainSpec:
        order = _topological(self.bp.entities)
        specs = {}
        for e in order:
            specs[e.name] = self.entity_spec(e)
            self.seed_rows[e.name] = self.seed_records(e)
        for e in order:
            self.entity_tools(e, specs[e.name])
        return DomainSpec(
            name=self.bp.name,
            category=self.bp.category,
            description=self.bp.description,
            entities=tuple(specs[e.name] for e in order),
            tools=tuple(self.tools),
            seed=WorldSnapshot(collections={self.col(e): self.seed_rows[e.name] for e in order}),
        )


def _order_times(rec: dict[str, Any], arg: Any = lambda f: f) -> None:
    """An event ends after it starts: set ends_at 1-3 hours after starts_at when both are present."""
    start, end = arg("starts_at"), arg("ends_at")
    if isinstance(rec.get(start), str) and end in rec:
        t = _dt.datetime.strptime(rec[start], "%Y-%m-%dT%H:%M:%SZ")
        rec[end] = (t + _dt.timedelta(hours=1 + len(rec[start]) % 3)).strftime("%Y-%m-%dT%H:%M:%SZ")


def _topological(entities: tuple[EntityBlueprint, ...]) -> list[EntityBlueprint]:
    """Parents before children (references never form cycles that block seeding: cycles are broken)."""
    out: list[EntityBlueprint] = []
    done: set[str] = set()
    by = {e.name: e for e in entities}

    def visit(e: EntityBlueprint, stack: frozenset[str]) -> None:
        if e.name in done:
            return
        for r in e.refs:
            if r not in stack:
                visit(by[r], stack | {e.name})
        done.add(e.name)
        out.append(e)

    for e in entities:
        visit(e, frozenset())
    return out


def build_domain(bp: DomainBlueprint, seed: int = 0, source: str = "synthetic") -> DomainSpec:
    """The executable domain for a blueprint (see module doc)."""
    return Builder(bp, seed, source).build()
