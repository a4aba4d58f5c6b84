"""Storage and loading of the tool repository.

Every source is stored the same way: `tools/<source>/domains.jsonl.gz`, one `DomainSpec` per line
(a real MCP server or a synthetic domain: its entities, its tools, seed records). Real tools whose
effect is not known carry `semantics: null` and no entities; they run on a real backend or the
world model. Sources: `starter` (hand-written YAML in `tools/starter/`), `crawl`, `live`, `synthetic`.

Beside each file, `domains.index.json` lists every domain's tools and the SHA-256 of the file it
indexes. `ToolRepository.load()` decompresses the file, keeps each domain's line as bytes and takes
the tool → domain index from the sidecar, so nothing is parsed until it is used (parsing 50 MB of
JSON for 20,000 tools takes over a second); a missing or stale sidecar (another hash) makes it parse
every line instead, never trust a wrong index. `raw_domain(name)` parses on first access;
`domain(name)` and `tool(name)` also validate, and cache. `world(domains)` builds the executable
`World` for a set of domains.
"""

from __future__ import annotations

import gzip
import hashlib
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
INDEX = "domains.index.json"


def save_domains(source: str, domains: Iterable[DomainSpec], root: Path | None = None) -> Path:
    """Write a source's domains and their index atomically (temp files, then rename); returns the path."""
    if source not in SOURCES or source == "starter":
        raise ValueError(f"source must be one of {SOURCES[1:]}, not {source!r}")
    out = (root or tools_dir()) / source / FILE
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    index: dict[str, list[str]] = {}
    # mtime=0: the same domains give the same bytes, so regenerated data diffs cleanly in git
    with open(tmp, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, compresslevel=6) as f:
        for d in domains:
            f.write(dumps(d.model_dump(mode="json", exclude_defaults=True)) + b"\n")
            index[d.name] = [t.name for t in d.tools]
    digest = hashlib.sha256(tmp.read_bytes()).hexdigest()
    idx_tmp = out.with_name(INDEX + ".tmp")
    idx_tmp.write_bytes(dumps({"sha256": digest, "domains": index}) + b"\n")
    os.replace(tmp, out)
    os.replace(idx_tmp, out.with_name(INDEX))
    return out


def _read_index(path: Path, data: bytes) -> dict[str, list[str]] | None:
    """The sidecar index of `path` if it indexes exactly these bytes, else None."""
    try:
        index = orjson.loads((path.with_name(INDEX)).read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return None
    if not isinstance(index, dict) or index.get("sha256") != hashlib.sha256(data).hexdigest():
        return None
    return index.get("domains")


def iter_domain_dicts(path: Path) -> Iterator[dict[str, Any]]:
    with gzip.open(path, "rb") as f:
        for line in f:
            if line.strip():
                yield orjson.loads(line)


class ToolRepository:
    """Every domain and tool of the chosen sources (see module doc)."""

    def __init__(self) -> None:
        self._raw: dict[str, dict[str, Any] | bytes] = {}
        """A domain as stored: its JSON line until first use, then the parsed dict."""
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
                    repo._add(d.name, [t.name for t in d.tools], source, d.model_dump(mode="json"), d)
                continue
            path = root / source / FILE
            if not path.exists():
                continue
            data = path.read_bytes()
            lines = [ln for ln in gzip.decompress(data).split(b"\n") if ln and not ln.isspace()]
            index = _read_index(path, data)
            if index is not None and len(index) == len(lines):
                for (name, tools), line in zip(index.items(), lines, strict=True):
                    repo._add(name, tools, source, line)
            else:
                for line in lines:
                    raw = orjson.loads(line)
                    repo._add(raw["name"], [t["name"] for t in raw.get("tools", ())], source, raw)
        return repo

    def _add(
        self,
        name: str,
        tools: list[str],
        source: str,
        raw: dict[str, Any] | bytes,
        spec: DomainSpec | None = None,
    ) -> None:
        if name in self._raw:
            raise ValueError(f"domain {name!r} appears twice (sources {self._source[name]} and {source})")
        self._raw[name] = raw
        self._source[name] = source
        if spec is not None:
            self._domains[name] = spec
        for t in tools:
            if t in self._tool_domain:
                raise ValueError(f"tool {t!r} appears in domains {self._tool_domain[t]!r} and {name!r}")
            self._tool_domain[t] = name

    # ---- access ---------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._tool_domain)

    def domain_names(self, source: str | None = None) -> list[str]:
        return [n for n, s in self._source.items() if source is None or s == source]

    def source_of(self, domain: str) -> str:
        return self._source[domain]

    def raw_domain(self, name: str) -> dict[str, Any]:
        """The domain as stored (unvalidated dict; do not mutate)."""
        raw = self._raw[name]
        if isinstance(raw, bytes):
            raw = self._raw[name] = orjson.loads(raw)
        return raw

    def raw_tools(self) -> Iterator[tuple[str, dict[str, Any]]]:
        """(domain name, tool dict) for every tool, unvalidated."""
        for name in self._raw:
            for t in self.raw_domain(name).get("tools", ()):
                yield name, t

    def domain(self, name: str) -> DomainSpec:
        d = self._domains.get(name)
        if d is None:
            d = self._domains[name] = DomainSpec.model_validate(self.raw_domain(name))
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
