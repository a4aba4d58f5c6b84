"""Storage and loading of the tool repository.

Every source is stored the same way: `tools/<source>/domains.jsonl.gz`, one `DomainSpec` per line
(a real MCP server or a synthetic domain: its entities, its tools, seed records). Real tools whose
effect is not known carry `semantics: null` and no entities; they run on a real backend or the
world model. Sources: `starter` (hand-written YAML in `tools/starter/`), `crawl`, `live`, `synthetic`.

`ToolRepository.load()` reads the lines with orjson and indexes tools by name without validating
them (validation of 20,000 tools would take seconds); `domain(name)` and `tool(name)` validate on
first access and cache. `world(domains)` builds the executable `World` for a set of domains.
"""

from __future__ import annotations

import gzip
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import orjson

from agentgym.jsonutil import dumps
from agentgym.paths import tools_dir
from agentgym.spec.tool import ToolSpec
from agentgym.spec.world import DomainSpec
from agentgym.world.domain import World, load_domain_file

SOURCES = ("starter", "crawl", "live", "synthetic")
FILE = "domains.jsonl.gz"


def save_domains(source: str, domains: Iterable[DomainSpec], root: Path | None = None) -> Path:
    """Write a source's domains atomically (temp file, then rename); returns the path."""
    if source not in SOURCES or source == "starter":
        raise ValueError(f"source must be one of {SOURCES[1:]}, not {source!r}")
    out = (root or tools_dir()) / source / FILE
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    # mtime=0: the same domains give the same bytes, so regenerated data diffs cleanly in git
    with open(tmp, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, compresslevel=6) as f:
        for d in domains:
            f.write(dumps(d.model_dump(mode="json", exclude_defaults=True)) + b"\n")
    os.replace(tmp, out)
    return out


def iter_domain_dicts(path: Path) -> Iterator[dict[str, Any]]:
    with gzip.open(path, "rb") as f:
        for line in f:
            if line.strip():
                yield orjson.loads(line)


class ToolRepository:
    """Every domain and tool of the chosen sources (see module doc)."""

    def __init__(self) -> None:
        self._raw: dict[str, dict[str, Any]] = {}
        self._source: dict[str, str] = {}
        self._domains: dict[str, DomainSpec] = {}
        self._tool_domain: dict[str, str] = {}

    @classmethod
    def load(cls, root: Path | None = None, sources: Iterable[str] = SOURCES) -> ToolRepository:
        repo = cls()
        root = root or tools_dir()
        for source in sources:
            if source == "starter":
                for f in sorted((root / "starter").glob("*.yaml")):
                    d = load_domain_file(f)
                    repo._add(d.model_dump(mode="json"), source, d)
                continue
            path = root / source / FILE
            if path.exists():
                for raw in iter_domain_dicts(path):
                    repo._add(raw, source)
        return repo

    def _add(self, raw: dict[str, Any], source: str, spec: DomainSpec | None = None) -> None:
        name = raw["name"]
        if name in self._raw:
            raise ValueError(f"domain {name!r} appears twice (sources {self._source[name]} and {source})")
        self._raw[name] = raw
        self._source[name] = source
        if spec is not None:
            self._domains[name] = spec
        for t in raw.get("tools", ()):
            if t["name"] in self._tool_domain:
                raise ValueError(
                    f"tool {t['name']!r} appears in domains {self._tool_domain[t['name']]!r} and {name!r}"
                )
            self._tool_domain[t["name"]] = name

    # ---- access ---------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._tool_domain)

    def domain_names(self, source: str | None = None) -> list[str]:
        return [n for n, s in self._source.items() if source is None or s == source]

    def source_of(self, domain: str) -> str:
        return self._source[domain]

    def raw_domain(self, name: str) -> dict[str, Any]:
        """The domain as stored (unvalidated dict; do not mutate)."""
        return self._raw[name]

    def raw_tools(self) -> Iterator[tuple[str, dict[str, Any]]]:
        """(domain name, tool dict) for every tool, unvalidated."""
        for name, raw in self._raw.items():
            for t in raw.get("tools", ()):
                yield name, t

    def domain(self, name: str) -> DomainSpec:
        d = self._domains.get(name)
        if d is None:
            d = self._domains[name] = DomainSpec.model_validate(self._raw[name])
        return d

    def domain_of(self, tool: str) -> str:
        return self._tool_domain[tool]

    def tool(self, name: str) -> ToolSpec:
        dom = self.domain(self._tool_domain[name])
        for t in dom.tools:
            if t.name == name:
                return t
        raise KeyError(name)  # pragma: no cover - the index and the domain agree by construction

    def world(self, domains: Iterable[str]) -> World:
        """The executable world of these domains (their tools, entities and seed records)."""
        return World(self.domain(d) for d in dict.fromkeys(domains))
