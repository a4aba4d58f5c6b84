"""Catalog: the repository seen as what agents can be made of — domains, their collections, tools by role.

Built from the stored domain dicts (no full validation, so a catalog of 27,000 tools is ready in a
second). For each domain: its source (real = crawl or live), category, description, and its tools;
tools with semantics are grouped by the collection they act on and their operation, so an agent
maker can pick a coherent subset (a way to find records, a way to read one, ways to change them).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from agentgym.repository.store import ToolRepository

REAL_SOURCES = frozenset({"crawl", "live"})
READ_OPS = ("get", "search", "list", "count")
WRITE_OPS = ("create", "update", "action", "delete", "clone")


@dataclass(slots=True)
class CollectionTools:
    """The tools acting on one collection, by operation (`get_by_key` for lookups by a unique field)."""

    collection: str
    noun: str
    by_op: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    parents: tuple[str, ...] = ()
    """Collections this one references."""

    def tools(self, *ops: str) -> list[str]:
        return [t for op in ops for t in self.by_op.get(op, ())]


@dataclass(slots=True)
class DomainEntry:
    name: str
    source: str
    category: str
    description: str
    tools: list[str]
    collections: dict[str, CollectionTools]
    descriptions: dict[str, str]

    @property
    def real(self) -> bool:
        return self.source in REAL_SOURCES

    @property
    def executable(self) -> bool:
        """Has tools the simulator can run."""
        return bool(self.collections)


def noun_of(entity: dict[str, Any]) -> str:
    """'A patient.' → 'patient'; else the collection's last part, singular-ish."""
    desc = (entity.get("description") or "").strip().rstrip(".")
    words = desc.split()
    if 1 < len(words) <= 5 and words[0].lower() in ("a", "an"):
        return " ".join(words[1:]).lower()
    last = entity["collection"].split(".")[-1].replace("_", " ")
    if last.endswith("yses"):
        return last[:-2] + "is"
    if last.endswith("ies"):
        return last[:-3] + "y"
    if last.endswith(("sses", "ches", "shes", "xes")):
        return last[:-2]
    return last[:-1] if last.endswith("s") and not last.endswith("ss") else last


class Catalog:
    """Every domain of a repository, indexed for agent making (see module doc)."""

    def __init__(self, repo: ToolRepository) -> None:
        self.repo = repo
        self.domains: dict[str, DomainEntry] = {}
        for name in repo.domain_names():
            raw = repo.raw_domain(name)
            cols: dict[str, CollectionTools] = {}
            ref_fields: dict[str, set[str]] = {}
            for e in raw.get("entities", ()):
                refs = e.get("refs") or {}
                ref_fields[e["collection"]] = set(refs)
                cols[e["collection"]] = CollectionTools(
                    e["collection"], noun_of(e), parents=tuple(dict.fromkeys(refs.values()))
                )
            descriptions = {}
            for t in raw.get("tools", ()):
                descriptions[t["name"]] = t.get("description", "")
                sem = t.get("semantics")
                if sem and sem.get("collection") in cols:
                    op = sem["operation"]
                    if op == "get" and sem.get("key_field", "id") != "id":
                        op = "get_by_key"
                    if op == "list" and any(
                        f.get("field") in ref_fields[sem["collection"]]
                        for f in (sem.get("filters") or {}).values()
                    ):
                        cols[sem["collection"]].by_op["list_for_parent"].append(t["name"])
                    cols[sem["collection"]].by_op[op].append(t["name"])
            self.domains[name] = DomainEntry(
                name=name,
                source=repo.source_of(name),
                category=raw.get("category", "Others"),
                description=raw.get("description", ""),
                tools=[t["name"] for t in raw.get("tools", ())],
                collections=cols,
                descriptions=descriptions,
            )
        self.by_category: dict[str, list[str]] = defaultdict(list)
        for d in self.domains.values():
            self.by_category[d.category].append(d.name)

    def synthetic(self) -> list[DomainEntry]:
        return [d for d in self.domains.values() if not d.real and d.executable]

    def real(self) -> list[DomainEntry]:
        return [d for d in self.domains.values() if d.real and len(d.tools) >= 1]

    def domain_of(self, tool: str) -> str:
        return self.repo.domain_of(tool)
