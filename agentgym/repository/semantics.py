"""Infer what a real tool does to state, and make confident servers executable.

`infer_tool(tool)` reads the verb and the entity noun from the tool's name (a leading server prefix
such as `crm_` or `browser_` is skipped when the next word is a verb), checks the schema for what
the operation needs (an id-like argument for get/update/delete, a query-like one for search), and
weighs the MCP annotations (`readOnlyHint`, `destructiveHint`) for or against. It returns an
`Inference` with an operation, an entity, the argument roles and a confidence in [0, 1].

`infer_domain(domain)` groups a server's tools by entity and keeps an entity only when the server
treats it as a collection of records — it can create them, or it can list them and address one
by id. For kept entities it builds an `EntitySpec` (record schema from the create/update
arguments, permissive beyond `id`), three seed records, and `ToolSemantics` (with the confidence)
for each confident tool on it; every other tool keeps `semantics=None` and is answered by the LLM
world model. `looks_read_only(tool)` is the verb-based guess the world model uses when a tool has
no `readOnlyHint`. Pure functions.
"""

from __future__ import annotations

import random
import re
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from agentgym.repository.synth.blueprint import AttributeBlueprint
from agentgym.repository.synth.values import value
from agentgym.repository.words import plural, singular, words
from agentgym.spec.tool import FilterArg, ToolSemantics, ToolSpec
from agentgym.spec.world import DomainSpec, EntitySpec, WorldSnapshot

THRESHOLD = 0.7
SEED_RECORDS = 3

VERBS: dict[str, str] = {
    **dict.fromkeys(
        ("create", "add", "new", "insert", "register", "make", "post", "save", "store", "upload"), "create"
    ),
    **dict.fromkeys(("get", "fetch", "read", "retrieve", "show", "describe", "view", "load", "info"), "get"),
    **dict.fromkeys(("list", "browse", "enumerate", "all"), "list"),
    **dict.fromkeys(("search", "find", "query", "lookup", "filter"), "search"),
    **dict.fromkeys(("update", "edit", "modify", "patch", "set", "rename", "change", "replace"), "update"),
    **dict.fromkeys(("delete", "remove", "drop", "destroy", "purge", "erase", "trash"), "delete"),
}
READ_VERBS = frozenset(
    {
        "get",
        "fetch",
        "read",
        "retrieve",
        "show",
        "describe",
        "view",
        "list",
        "browse",
        "search",
        "find",
        "query",
        "lookup",
        "check",
        "calculate",
        "compute",
        "analyze",
        "analyse",
        "validate",
        "convert",
        "count",
        "estimate",
        "inspect",
        "explain",
        "summarize",
        "preview",
        "lint",
        "status",
        "info",
        "resolve",
        "compare",
        "scan",
    }
)
PREPOSITIONS = frozenset({"to", "from", "in", "into", "for", "on", "with", "by", "of", "at", "via", "as"})
QUERY_ARGS = ("query", "q", "search", "keyword", "keywords", "term", "text", "search_query", "searchquery")
LIMIT_ARGS = (
    "limit",
    "max_results",
    "maxresults",
    "page_size",
    "pagesize",
    "per_page",
    "perpage",
    "top",
    "count",
    "n",
)
CURSOR_ARGS = ("cursor", "page_token", "pagetoken", "next_token", "nexttoken", "after", "starting_after")


def _norm(arg: str) -> str:
    return re.sub(r"[^a-z0-9]", "", arg.lower())


def id_like(arg: str, entity: str | None = None) -> bool:
    n = _norm(arg)
    if n in ("id", "uuid", "key", "slug"):
        return True
    if entity and n in (_norm(entity) + "id", _norm(entity) + "uuid", _norm(entity) + "key"):
        return True
    return n.endswith("id") and len(n) > 2 and entity is None


@dataclass
class Inference:
    operation: str | None
    entity: str | None
    confidence: float
    id_arg: str | None = None
    query_arg: str | None = None
    limit_arg: str | None = None
    cursor_arg: str | None = None
    reasons: list[str] = field(default_factory=list)


def looks_read_only(tool: ToolSpec) -> bool:
    """The tool's readOnlyHint, or a guess from its first verb when it has none."""
    if tool.annotations.read_only_hint is not None:
        return bool(tool.annotations.read_only_hint)
    ws = words(tool.provenance.original_name)
    return any(w in READ_VERBS for w in ws[:2])


def infer_tool(tool: ToolSpec) -> Inference:
    ws = words(tool.provenance.original_name)
    verb_at = next((i for i, w in enumerate(ws[:2]) if w in VERBS), None)
    if verb_at is None:
        return Inference(None, None, 0.0, reasons=["no CRUD verb in the name"])
    op = VERBS[ws[verb_at]]
    rest = ws[verb_at + 1 :]
    while rest and (rest[0] in VERBS or rest[0] in ("or", "and")):  # create_or_update_x → x
        rest = rest[1:]
    cut = next((k for k, w in enumerate(rest) if w in PREPOSITIONS), len(rest))  # save_doc_to_db → doc
    rest = [w for w in rest[:cut] if w not in ("a", "an", "the", "new", "all", "one", "single")]
    if not rest:
        return Inference(op, None, 0.0, reasons=["no entity noun after the verb"])
    plural = rest[-1].endswith("s") and not rest[-1].endswith("ss")
    entity = "_".join([*rest[:-1], singular(rest[-1])])[:40]
    props = tool.input_schema.get("properties") or {}
    required = set(tool.input_schema.get("required") or [])
    inf = Inference(op, entity, 0.5, reasons=[f"verb {ws[verb_at]!r} → {op}, entity {entity!r}"])
    if op == "get" and plural:
        inf.operation = op = "list"
        inf.reasons.append("plural noun: a list")
    ann = tool.annotations
    if op in ("get", "update", "delete"):
        ids = [a for a in props if id_like(a, entity)] or [a for a in props if id_like(a)]
        ids = [a for a in ids if a in required] or ids
        if len(ids) != 1:
            inf.confidence = 0.2
            inf.reasons.append("no single id-like argument: not addressing one record")
            return inf
        inf.id_arg = ids[0]
        inf.confidence += 0.3
    elif op == "search":
        q = [a for a in props if _norm(a) in QUERY_ARGS]
        if not q:
            inf.confidence = 0.3
            inf.reasons.append("no query argument")
            return inf
        inf.query_arg = q[0]
        inf.confidence += 0.3
    elif op == "create":
        fields = [a for a in props if not id_like(a)]
        if not fields:
            inf.confidence = 0.3
            inf.reasons.append("nothing to create from")
            return inf
        inf.confidence += 0.25
    elif op == "list":
        inf.confidence += 0.2
    for a in props:
        n = _norm(a)
        if (
            op in ("list", "search")
            and n in LIMIT_ARGS
            and (props[a] or {}).get("type") in ("integer", "number", None)
        ):
            inf.limit_arg = a
        if op == "list" and n in CURSOR_ARGS and (props[a] or {}).get("type") in ("string", None):
            inf.cursor_arg = a
    reads = op in ("get", "list", "search")
    if ann.read_only_hint is not None:
        if ann.read_only_hint == reads:
            inf.confidence += 0.15
            inf.reasons.append("annotations agree")
        else:
            inf.confidence -= 0.4
            inf.reasons.append("readOnlyHint contradicts the verb")
    if ann.destructive_hint and op not in ("delete", "update"):
        inf.confidence -= 0.2
    inf.confidence = max(0.0, min(1.0, inf.confidence))
    return inf


_TYPE = {"string": "string", "integer": "integer", "number": "number", "boolean": "boolean", "array": "tags"}


def _seed_value(
    name: str, schema: dict[str, Any], rng: random.Random, entity: str, domain: str, i: int
) -> Any:
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return schema["enum"][i % len(schema["enum"])]
    t = schema.get("type")
    if isinstance(t, list):
        t = next((x for x in t if x != "null"), "string")
    if t == "array" and (schema.get("items") or {}).get("type") not in (None, "string"):
        return []
    if t == "object":
        return {}
    fmt = {"date-time": "datetime", "date": "date", "email": "email", "uri": "url"}.get(
        schema.get("format", "")
    )
    attr = AttributeBlueprint(
        name=re.sub(r"[^a-z0-9_]", "_", name.lower()).strip("_") or "value",
        type=fmt or _TYPE.get(t or "string", "string"),
    )
    v = value(attr, rng, entity=entity, domain=domain, i=i)
    if t == "integer" and isinstance(v, float):
        v = int(v)
    return v


def infer_domain(domain: DomainSpec, threshold: float = THRESHOLD) -> tuple[DomainSpec, dict[str, Inference]]:
    """The domain with entities, seed records and semantics for its confident tools (see module doc)."""
    infs = {t.name: infer_tool(t) for t in domain.tools}
    by_entity: dict[str, list[ToolSpec]] = defaultdict(list)
    for t in domain.tools:
        i = infs[t.name]
        if i.entity and i.confidence >= threshold:
            by_entity[i.entity].append(t)
    entities: dict[str, EntitySpec] = {}
    seed: dict[str, list[dict[str, Any]]] = {}
    rng = random.Random(domain.name)
    for ent, tools in sorted(by_entity.items()):
        ops = {infs[t.name].operation for t in tools}
        if not ("create" in ops or ("list" in ops and ops & {"get", "update", "delete"})):
            for t in tools:
                infs[t.name].confidence = min(infs[t.name].confidence, threshold - 0.01)
                infs[t.name].reasons.append("the server does not treat this noun as a record collection")
            continue
        props: dict[str, Any] = {"id": {"type": "string"}}
        for t in tools:
            if infs[t.name].operation in ("create", "update"):
                for a, sch in (t.input_schema.get("properties") or {}).items():
                    if a != infs[t.name].id_arg and isinstance(sch, dict) and not id_like(a, ent):
                        props.setdefault(
                            a, {k: v for k, v in sch.items() if k not in ("default", "examples")}
                        )
        col = f"{domain.name}.{plural(ent)}"
        entities[ent] = EntitySpec(
            collection=col,
            description=f"{ent.replace('_', ' ')} records of {domain.name} (inferred)",
            id_prefix=re.sub(r"[^a-z0-9]", "", ent)[:6] or "rec",
            record_schema={"type": "object", "required": ["id"], "properties": props},
        )
        seed[col] = [
            {
                "id": f"{entities[ent].id_prefix}_{k + 1:04d}",
                **{a: _seed_value(a, s, rng, ent, domain.name, k) for a, s in props.items() if a != "id"},
            }
            for k in range(SEED_RECORDS)
        ]
    tools = []
    for t in domain.tools:
        i = infs[t.name]
        ent = entities.get(i.entity or "")
        if ent is None or i.confidence < threshold:
            tools.append(t)
            continue
        props = t.input_schema.get("properties") or {}
        fields = set(ent.record_schema["properties"])
        filters = {
            a: FilterArg(field=a)
            for a in props
            if i.operation == "list" and a in fields and a not in (i.limit_arg, i.cursor_arg)
        }
        sfields = tuple(
            f
            for f, s in ent.record_schema["properties"].items()
            if f != "id" and isinstance(s, dict) and s.get("type") == "string"
        )
        sem = ToolSemantics(
            operation=i.operation,
            collection=ent.collection,
            id_arg=i.id_arg,
            filters=filters,
            query_arg=i.query_arg,
            search_fields=sfields if i.operation == "search" else (),
            limit_arg=i.limit_arg,
            cursor_arg=i.cursor_arg,
            confidence=round(i.confidence, 3),
        )
        tools.append(t.model_copy(update={"semantics": sem}))
    out = domain.model_copy(
        update={
            "entities": tuple(entities.values()),
            "tools": tuple(tools),
            "seed": WorldSnapshot(now=domain.seed.now, collections=seed),
        }
    )
    return DomainSpec.model_validate(out.model_dump()), infs
