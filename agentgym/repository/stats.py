"""Counts over the tool repository: how many tools, from where, of which kind, how complex.

`repository_stats(repo)` summarises a `ToolRepository`; `tool_stats(rows)` does the same for any
iterable of `(source, raw tool dict)` pairs, so a subset (one source, one category, a sample) is
summarised the same way. Both read the raw dicts as stored (see `ToolRepository.raw_tools`) and
never validate them: 25,000 tools are counted in well under a second. The schema helpers
(`parameter_count`, `required_count`, `nesting_depth`, `parameter_types`) measure one input schema
and are shared with `agentgym.repository.diversity`. Pure functions; nothing is written.

The result is a plain JSON-ready dict (keys in `repository_stats`'s docstring); categories and
domains are the tools' `taxonomy` fields, sources the tools' `provenance.source`, falling back to
the source the repository loaded the domain from.
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

from agentgym.repository.store import SOURCES, ToolRepository

REAL_SOURCES = ("crawl", "live")
"""Tools taken from real MCP servers; starter (hand-written) and synthetic tools are made here."""
HINTS = ("read_only_hint", "destructive_hint", "idempotent_hint", "open_world_hint")
MAX_DEPTH = 32  # a self-similar or absurd schema stops counting here


# ---- one schema -----------------------------------------------------------------------------------


def _properties(schema: Any) -> dict[str, Any]:
    props = schema.get("properties") if isinstance(schema, dict) else None
    return props if isinstance(props, dict) else {}


def parameter_count(schema: Any) -> int:
    """Top-level parameters of an input schema (its `properties`)."""
    return len(_properties(schema))


def required_count(schema: Any) -> int:
    """Required top-level parameters that the schema also declares."""
    req = schema.get("required") if isinstance(schema, dict) else None
    if not isinstance(req, list):
        return 0
    props = _properties(schema)
    return len({r for r in req if isinstance(r, str) and (not props or r in props)})


def nesting_depth(schema: Any, _level: int = 0) -> int:
    """Container levels of a schema: a flat object of scalars is 1, an object with an array of
    strings or an object parameter is 2, an array of objects inside it 3. `anyOf`/`oneOf`/`allOf`
    branches count as the deepest branch; `$ref`s are not followed (they count as a scalar)."""
    if not isinstance(schema, dict) or _level >= MAX_DEPTH:
        return 0
    branches = [
        b for key in ("anyOf", "oneOf", "allOf") for b in schema.get(key) or () if isinstance(b, dict)
    ]
    deepest_branch = max((nesting_depth(b, _level) for b in branches), default=0)
    props = _properties(schema)
    items = schema.get("items")
    t = schema.get("type")
    types = set(t) if isinstance(t, list) else {t}
    own = 0
    if props or "object" in types:
        own = 1 + max((nesting_depth(p, _level + 1) for p in props.values()), default=0)
    if items is not None or "array" in types:
        inner = [items] if isinstance(items, dict) else [i for i in items or () if isinstance(i, dict)]
        own = max(own, 1 + max((nesting_depth(i, _level + 1) for i in inner), default=0))
    return max(own, deepest_branch)


def parameter_type(prop: Any) -> str:
    """The JSON type of one parameter: string, integer, number, boolean, array, object or null;
    `enum` for an untyped enum, `union` for several non-null types or anyOf/oneOf of them, `any`
    when nothing says. A nullable type (`["string", "null"]`) counts as its non-null type."""
    if not isinstance(prop, dict):
        return "any"
    t = prop.get("type")
    if isinstance(t, str):
        return t
    if isinstance(t, list):
        non_null = sorted({x for x in t if isinstance(x, str) and x != "null"})
        return non_null[0] if len(non_null) == 1 else ("null" if not non_null else "union")
    for key in ("anyOf", "oneOf"):
        branches = prop.get(key)
        if isinstance(branches, list) and branches:
            kinds = {parameter_type(b) for b in branches} - {"null"}
            return kinds.pop() if len(kinds) == 1 else "union"
    if "enum" in prop or "const" in prop:
        return "enum"
    if "properties" in prop:
        return "object"
    if "items" in prop:
        return "array"
    return "any"


def parameter_types(schema: Any) -> list[str]:
    """`parameter_type` of each top-level parameter, in schema order."""
    return [parameter_type(p) for p in _properties(schema).values()]


# ---- many tools -----------------------------------------------------------------------------------


def _summary(values: list[int]) -> dict[str, float]:
    if not values:
        return {"mean": 0.0, "median": 0.0, "p90": 0.0, "max": 0}
    ordered = sorted(values)
    return {
        "mean": round(statistics.fmean(ordered), 3),
        "median": float(statistics.median(ordered)),
        "p90": float(ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))]),
        "max": ordered[-1],
    }


def _histogram(values: Iterable[int], cap: int) -> dict[str, int]:
    """Counts of 0..cap-1 and `cap+` (every bucket present, so tables line up)."""
    c = Counter(min(v, cap) for v in values)
    return {(f"{k}+" if k == cap else str(k)): c.get(k, 0) for k in range(cap + 1)}


def _share(part: int, whole: int) -> float:
    return round(part / whole, 4) if whole else 0.0


def _annotated(tool: Mapping[str, Any]) -> dict[str, bool]:
    ann = tool.get("annotations") or {}
    has = {h: isinstance(ann.get(h), bool) for h in HINTS}
    has["title"] = bool(ann.get("title") or tool.get("title"))
    return has


def tool_stats(rows: Iterable[tuple[str, Mapping[str, Any]]]) -> dict[str, Any]:
    """Counts over `(source, raw tool dict)` pairs; the keys are those of `repository_stats`
    except `servers`."""
    by_source: Counter[str] = Counter(dict.fromkeys(SOURCES, 0))
    cat_source: dict[str, Counter[str]] = defaultdict(Counter)
    cat_domains: dict[str, set[str]] = defaultdict(set)
    domains: set[str] = set()
    params: dict[str, list[int]] = defaultdict(list)
    required: dict[str, list[int]] = defaultdict(list)
    depth: dict[str, list[int]] = defaultdict(list)
    types: dict[str, Counter[str]] = defaultdict(Counter)
    known: Counter[str] = Counter()
    operations: Counter[str] = Counter()
    annotations: dict[str, Counter[str]] = defaultdict(Counter)
    with_output = 0
    total = 0
    for source, tool in rows:
        total += 1
        by_source[source] += 1
        tax = tool.get("taxonomy") or {}
        cat, dom = tax.get("category") or "(none)", tax.get("domain") or "(none)"
        cat_source[cat][source] += 1
        cat_domains[cat].add(dom)
        domains.add(dom)
        schema = tool.get("input_schema") or {}
        params[source].append(parameter_count(schema))
        required[source].append(required_count(schema))
        depth[source].append(max(1, nesting_depth(schema)))  # an input schema is an object, even untyped
        types[source].update(parameter_types(schema))
        sem = tool.get("semantics")
        if isinstance(sem, dict):
            known[source] += 1
            operations[sem.get("operation") or "?"] += 1
        with_output += tool.get("output_schema") is not None
        has = _annotated(tool)
        annotations[source]["any_hint"] += any(has[h] for h in HINTS)
        for key, present in has.items():
            annotations[source][key] += present

    def pooled(per_source: dict[str, list[int]]) -> list[int]:
        return [v for vs in per_source.values() for v in vs]

    def schema_block(p: list[int], r: list[int], d: list[int], t: Counter[str]) -> dict[str, Any]:
        return {
            "parameters": {**_summary(p), "histogram": _histogram(p, 10)},
            "required": {**_summary(r), "histogram": _histogram(r, 5)},
            "depth": {**_summary(d), "histogram": _histogram(d, 4)},
            "types": dict(t.most_common()),
        }

    present = [s for s in by_source if by_source[s]]
    all_types = sum(types.values(), Counter())
    n_known = sum(known.values())
    ann_total = sum(annotations.values(), Counter())
    return {
        "total": total,
        "by_source": dict(by_source),
        "real": sum(by_source[s] for s in REAL_SOURCES),
        "synthetic": by_source["synthetic"],
        "categories": len(cat_source),
        "domains": len(domains),
        "by_category": {
            c: {"tools": sum(cat_source[c].values()), "domains": len(cat_domains[c]), **dict(cat_source[c])}
            for c in sorted(cat_source, key=lambda c: (-sum(cat_source[c].values()), c))
        },
        "schema": {
            "all": schema_block(pooled(params), pooled(required), pooled(depth), all_types),
            **{s: schema_block(params[s], required[s], depth[s], types[s]) for s in present},
        },
        "semantics": {
            "known": n_known,
            "unknown": total - n_known,
            "share_known": _share(n_known, total),
            "by_source": {
                s: {"known": known[s], "total": by_source[s], "share_known": _share(known[s], by_source[s])}
                for s in present
            },
            "operations": dict(operations.most_common()),
        },
        "annotations": {
            **{k: ann_total[k] for k in ("any_hint", *HINTS, "title")},
            "share_any_hint": _share(ann_total["any_hint"], total),
            "by_source": {
                s: {
                    "any_hint": annotations[s]["any_hint"],
                    "share": _share(annotations[s]["any_hint"], by_source[s]),
                }
                for s in present
            },
        },
        "output_schema": with_output,
    }


def group_of(source: str) -> str:
    """'real' for crawl and live tools (from real MCP servers); 'synthetic' for the starter world's
    hand-written tools and the generated ones."""
    return "real" if source in REAL_SOURCES else "synthetic"


def tool_source(repo: ToolRepository, domain: str, tool: Mapping[str, Any]) -> str:
    """The tool's `provenance.source`, else the source its domain was loaded from."""
    return (tool.get("provenance") or {}).get("source") or repo.source_of(domain)


def repository_rows(repo: ToolRepository) -> Iterable[tuple[str, dict[str, Any]]]:
    """`(source, raw tool)` for every tool of the repository."""
    for domain, tool in repo.raw_tools():
        yield tool_source(repo, domain, tool), tool


def repository_stats(repo: ToolRepository) -> dict[str, Any]:
    """Summary of a repository, JSON-ready.

    Keys: `total`; `by_source` (tools per source, every source of `SOURCES` present, 0 when
    absent); `real` (starter + crawl + live) and `synthetic`; `servers` (stored domains — MCP
    servers or synthetic domains — per source); `categories` and `domains` (distinct taxonomy
    categories and domains); `by_category` (per category: tools, taxonomy domains, tools per
    source); `schema` (for all tools and per source: parameters, required parameters and nesting
    depth as mean/median/p90/max and a histogram, and the parameter type mix); `semantics` (tools
    the deterministic engine can run — `semantics` present — overall, per source, by operation);
    `annotations` (tools with any MCP hint, per hint, with a title); `output_schema` (tools that
    declare one).
    """
    stats = tool_stats(repository_rows(repo))
    servers = Counter(repo.source_of(d) for d in repo.domain_names())
    stats["servers"] = {s: servers.get(s, 0) for s in SOURCES}
    return stats
