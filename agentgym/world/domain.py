"""Domains from data files, and the World that unites them.

A domain file (YAML, in `tools/`) is a `DomainSpec` written for people: tools give only their
original `name`, `description`, `input_schema` and `semantics`; the loader namespaces the name
(`domain__tool`), fills provenance and taxonomy from the file's header, derives MCP annotations from
the semantics, and derives `output_schema` from the entity schema and operation when the file gives
none. The loader refuses a file whose tools reference unknown arguments, collections or fields,
naming the file and tool.

`World` is a set of domains: every tool by name, every entity by collection, the merged seed
state, and the engine that runs them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

from agentgym.paths import tools_dir
from agentgym.schema import check_schema
from agentgym.spec.tool import Provenance, Taxonomy, ToolAnnotations, ToolSemantics, ToolSpec, qualified_name
from agentgym.spec.world import DomainSpec, EntitySpec, WorldSnapshot
from agentgym.world.engine import Engine
from agentgym.yamlfile import load_yaml


class DomainFileError(ValueError):
    """A domain data file is inconsistent."""


def output_schema_for(sem: ToolSemantics, entity: EntitySpec) -> dict[str, Any]:
    """The structured-result schema a semantic tool returns."""
    if sem.operation == "count":
        return {
            "type": "object",
            "properties": {"count": {"type": "integer", "minimum": 0}},
            "required": ["count"],
            "additionalProperties": False,
        }
    returns = sem.returns or {"list": "page", "search": "page", "delete": "ack"}.get(sem.operation, "record")
    if returns == "record":
        return entity.record_schema
    if returns == "page":
        return {
            "type": "object",
            "properties": {
                "items": {"type": "array", "items": entity.record_schema},
                "next_cursor": {"type": ["string", "null"], "description": "Pass back to get the next page."},
            },
            "required": ["items", "next_cursor"],
            "additionalProperties": False,
        }
    if returns == "id":
        return {"type": "object", "properties": {"id": {"type": "string"}}, "required": ["id"]}
    return {
        "type": "object",
        "properties": {"ok": {"const": True}, "id": {"type": "string"}},
        "required": ["ok", "id"],
        "additionalProperties": False,
    }


def annotations_for(sem: ToolSemantics) -> ToolAnnotations:
    read_only = sem.operation in ("get", "list", "search", "count")
    return ToolAnnotations(
        read_only_hint=read_only,
        destructive_hint=sem.operation == "delete",
        idempotent_hint=read_only or sem.operation in ("delete", "update"),
        open_world_hint=False,
    )


def _arg_refs(value: Any) -> list[str]:
    """Argument names a literal-or-reference value reads."""
    if isinstance(value, dict):
        if len(value) == 1 and "$arg" in value:
            return [value["$arg"]]
        return [a for v in value.values() for a in _arg_refs(v)]
    if isinstance(value, list):
        return [a for v in value for a in _arg_refs(v)]
    return []


def _check_tool(where: str, raw: Mapping[str, Any], sem: ToolSemantics, entity: EntitySpec) -> None:
    props = raw["input_schema"].get("properties", {})
    named = [sem.id_arg, sem.query_arg, sem.limit_arg, sem.cursor_arg, *sem.filters, *sem.field_args]
    for value in [
        *(c.value for c in sem.preconditions),
        *(e.value for e in sem.effects),
        *sem.defaults.values(),
        *sem.touch.values(),
    ]:
        named += _arg_refs(value)
    for arg in named:
        if arg is not None and arg not in props:
            raise DomainFileError(f"{where}: semantics names argument {arg!r} missing from input_schema")
    fields = set(entity.record_schema.get("properties", {}))
    used = [f.field.split(".")[0] for f in sem.filters.values()] + [
        c.field.split(".")[0] for c in sem.preconditions
    ]
    used += [e.field for e in sem.effects] + list(sem.defaults) + list(sem.touch) + list(sem.search_fields)
    used += list(sem.field_args.values())
    if sem.key_field != "id":
        used.append(sem.key_field)
    for arg, conds in sem.ref_preconditions.items():
        field = sem.field_args.get(arg, arg)
        if arg not in props or field not in entity.refs:
            raise DomainFileError(f"{where}: ref_preconditions on {arg!r}, which is not a reference argument")
        for c in conds:
            for ref in _arg_refs(c.value):
                if ref not in props:
                    raise DomainFileError(
                        f"{where}: semantics names argument {ref!r} missing from input_schema"
                    )
    if sem.sort:
        used.append(sem.sort.lstrip("-").split(".")[0])
    for f in used:
        if f not in fields:
            raise DomainFileError(f"{where}: semantics names field {f!r} missing from {entity.collection}")
    if sem.operation in ("get", "update", "delete", "action", "clone") and sem.id_arg is None:
        raise DomainFileError(f"{where}: a {sem.operation} tool needs id_arg")
    reason = check_schema(raw["input_schema"])
    if reason:
        raise DomainFileError(f"{where}: invalid input_schema: {reason}")


def domain_from_dict(raw: Mapping[str, Any], origin: str = "<dict>") -> DomainSpec:
    """Build a DomainSpec from the people-friendly form (see module doc)."""
    try:
        name, category = raw["name"], raw["category"]
        entities = [EntitySpec.model_validate(e) for e in raw["entities"]]
        by_col = {e.collection: e for e in entities}
        tools = []
        for t in raw["tools"]:
            where = f"{origin}: domain {name!r}, tool {t.get('name')!r}"
            if not isinstance(t.get("input_schema"), Mapping):
                raise DomainFileError(f"{where}: input_schema must be a JSON Schema object")
            if not isinstance(t.get("description"), str) or not t["description"].strip():
                raise DomainFileError(f"{where}: needs a non-empty description")
            sem = ToolSemantics.model_validate(t["semantics"]) if t.get("semantics") else None
            if sem is not None:
                if sem.collection not in by_col:
                    raise DomainFileError(f"{where}: acts on unknown collection {sem.collection!r}")
                _check_tool(where, t, sem, by_col[sem.collection])
            tools.append(
                ToolSpec(
                    name=qualified_name(name, t["name"]),
                    title=t.get("title"),
                    description=t["description"].strip(),
                    input_schema=t["input_schema"],
                    output_schema=t.get("output_schema")
                    or (output_schema_for(sem, by_col[sem.collection]) if sem else None),
                    annotations=ToolAnnotations.model_validate(t["annotations"])
                    if "annotations" in t
                    else (annotations_for(sem) if sem else ToolAnnotations()),
                    provenance=Provenance(
                        source=raw.get("source", "starter"),
                        server=name,
                        original_name=t["name"],
                        package=raw.get("package"),
                        license=raw.get("license", "MIT"),
                    ),
                    taxonomy=Taxonomy(category=category, domain=name),
                    semantics=sem,
                )
            )
        seed = WorldSnapshot(now=raw.get("now", WorldSnapshot().now), collections=raw.get("seed", {}))
        return DomainSpec(
            name=name,
            category=category,
            description=raw.get("description", ""),
            entities=tuple(entities),
            tools=tuple(tools),
            seed=seed,
        )
    except DomainFileError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise DomainFileError(f"{origin}: {type(e).__name__}: {e}") from e


def load_domain_file(path: str | Path) -> DomainSpec:
    p = Path(path)
    with open(p, encoding="utf-8") as f:
        raw = load_yaml(f)
    return domain_from_dict(raw, str(p))


class World:
    """A set of domains: tools, entities, seed state and the engine over them."""

    def __init__(self, domains: Iterable[DomainSpec]) -> None:
        self.domains: dict[str, DomainSpec] = {}
        self.tools: dict[str, ToolSpec] = {}
        self.entities: dict[str, EntitySpec] = {}
        now = WorldSnapshot().now
        collections: dict[str, list[dict[str, Any]]] = {}
        for d in domains:
            if d.name in self.domains:
                raise DomainFileError(f"domain {d.name!r} defined twice")
            self.domains[d.name] = d
            for t in d.tools:
                if t.name in self.tools:
                    raise DomainFileError(f"tool {t.name!r} defined twice")
                self.tools[t.name] = t
            for e in d.entities:
                if e.collection in self.entities:
                    raise DomainFileError(f"collection {e.collection!r} defined twice")
                self.entities[e.collection] = e
            collections.update(d.seed.collections)
            if self.domains and len(self.domains) > 1 and d.seed.now != now:
                raise DomainFileError(
                    f"domain {d.name!r} has clock {d.seed.now}, others {now}: one world, one clock"
                )
            now = d.seed.now
        self.seed = WorldSnapshot(now=now, collections=collections)
        self.trace_fields = {c: frozenset(e.trace_fields) for c, e in self.entities.items()}
        self.engine = Engine(self.entities)

    @classmethod
    def from_dir(cls, path: str | Path) -> World:
        files = sorted(Path(path).glob("*.yaml"))
        if not files:
            raise DomainFileError(f"no domain files (*.yaml) in {path}")
        return cls(load_domain_file(f) for f in files)


@lru_cache(maxsize=4)
def starter_world() -> World:
    """The hand-written starter world in `tools/starter/` (loaded once per process)."""
    return World.from_dir(tools_dir() / "starter")
