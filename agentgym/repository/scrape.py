"""Scrape live MCP servers: a server spec in, its tools as `ToolSpec`s out, never a hang.

In: a `ServerSpec` or its string (`npm:@scope/server`, `pypi:pkg`, `npx -y …`, `uvx …`, a script
path, an `http(s)://` streamable-HTTP URL; see `agentgym.mcp.launch`). `scrape(spec, timeout=…)`
installs the package into the cache, starts it in the process sandbox or reaches the URL
(`agentgym.mcp.connect`), initialises, lists every page of tools, and of resources, resource
templates and prompts where the server's capabilities offer them, and returns a `ScrapeResult`:
the server's name and version from `initialize`, the package's version and licence, its tools as
`ToolSpec`s (`provenance.source="live"`, names `slug__tool` via `crawl.assign_names`, MCP
annotations via `crawl.annotations_of`, input and output schemas repaired and meta-validated by
`crawl.normalize_schema`), what else it offers, timings and warnings.

`scrape` never raises for a server's sake: a server that cannot be installed or started, does not
answer in time, crashes or speaks something that is not MCP gives a result whose `error` has the
`agentgym.mcp.errors` kind (`internal` marks a bug of ours, reported the same way rather than
lost). A tool whose input schema no repair makes valid, or that repeats a name, is listed in
`skipped_tools`; an optional listing the server refuses is a warning. `scrape_many` runs several at
a time and returns them in input order; one failure never stops the others.

`live_domains(results, …)` turns results into one `DomainSpec` per server, named by its slug, with
semantics inferred by `semantics.infer_domain`, and a category given in `categories`, else voted by
the crawl tools nearest to its tools (`nearest_category`), else `UNCATEGORIZED`. Only servers with
a permissive licence (`repository.licenses`) ship; the others, and failed scrapes, are listed in
`LiveImport.excluded`. `merge_domains` replaces re-scraped servers' domains in a saved set. Nothing
here writes files: saving is `store.save_domains("live", …)`.
"""

from __future__ import annotations

import re
import textwrap
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlparse

import anyio
import mcp_types as types
from pydantic import Field

from agentgym.mcp import Connection, MCPServerError, ServerSpec, connect, install
from agentgym.mcp.errors import ErrorKind
from agentgym.mcp.launch import InstalledServer
from agentgym.repository.crawl import (
    RESERVED,
    annotations_of,
    assign_names,
    clean_description,
    normalize_schema,
    repair_schema,
    server_slug,
)
from agentgym.repository.licenses import is_permissive
from agentgym.repository.semantics import infer_domain
from agentgym.spec.base import Record
from agentgym.spec.tool import Provenance, Taxonomy, ToolSpec
from agentgym.spec.world import DomainSpec

UNCATEGORIZED = "Others"
"""Category of a server nothing places (the crawl's own word for its unlabelled servers)."""
DESCRIPTION_MAX = 500
NEIGHBOURS = 5
"""Crawl tools consulted per live tool when voting a server's category."""


# ---- the record -----------------------------------------------------------------------------------


class ScrapeError(Record):
    """Why a scrape failed."""

    kind: ErrorKind | Literal["internal"]
    """The `MCPServerError` kind; `internal` for an error in agentgym itself."""
    message: str
    """One line for a person."""
    stderr_tail: str = ""
    """The last lines the server wrote to stderr."""


class SkippedTool(Record):
    """A tool the server lists that is not shipped, and why."""

    name: str
    reason: str


class ResourceInfo(Record):
    """A resource the server lists."""

    uri: str
    name: str
    title: str | None = None
    description: str | None = None
    mime_type: str | None = None


class ResourceTemplateInfo(Record):
    """A resource template (a URI pattern) the server lists."""

    uri_template: str
    name: str
    title: str | None = None
    description: str | None = None
    mime_type: str | None = None


class PromptArgumentInfo(Record):
    name: str
    description: str | None = None
    required: bool = False


class PromptInfo(Record):
    """A prompt template the server lists."""

    name: str
    title: str | None = None
    description: str | None = None
    arguments: tuple[PromptArgumentInfo, ...] = ()


class ScrapeTimings(Record):
    """Seconds spent per stage (0 for a stage not reached)."""

    install_s: float = 0.0
    """Installing into the cache (near 0 when it is there already)."""
    connect_s: float = 0.0
    """Starting the server and the `initialize` handshake."""
    list_s: float = 0.0
    """Listing tools, resources, templates and prompts."""
    total_s: float = 0.0


class ScrapeResult(Record):
    """What one server offers, or why it could not be scraped (see module doc)."""

    spec: str
    """The spec as given."""
    server: str
    """Slug: the domain name and the namespace of the tool names."""
    pinned: str | None = None
    """The spec with the installed version, when a package was installed."""
    package: str | None = None
    """Package name (npm or PyPI)."""
    package_version: str | None = None
    license: str | None = None
    """SPDX id from the package metadata (None: nothing said, or not a package)."""
    license_raw: str | None = None
    """What the metadata said."""
    description: str = ""
    """The package description, else the server's own, else its instructions (trimmed)."""
    server_name: str | None = None
    """`serverInfo.name` from `initialize`."""
    server_title: str | None = None
    server_version: str | None = None
    """`serverInfo.version` from `initialize`."""
    protocol_version: str | None = None
    capabilities: tuple[str, ...] = ()
    """Capabilities the server declared (tools, resources, prompts, logging, completions, …)."""
    instructions: str | None = None
    network_isolated: bool | None = None
    """Whether the sandbox ran it without network (None for an HTTP server)."""
    tools: tuple[ToolSpec, ...] = ()
    skipped_tools: tuple[SkippedTool, ...] = ()
    schema_repairs: dict[str, tuple[str, ...]] = Field(default_factory=dict)
    """Original tool name → repairs made to its input schema (only tools with some)."""
    resources: tuple[ResourceInfo, ...] = ()
    resource_templates: tuple[ResourceTemplateInfo, ...] = ()
    prompts: tuple[PromptInfo, ...] = ()
    warnings: tuple[str, ...] = ()
    timings: ScrapeTimings = Field(default_factory=ScrapeTimings)
    error: ScrapeError | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def permissive(self) -> bool:
        return is_permissive(self.license)


# ---- tools ----------------------------------------------------------------------------------------


def domain_label(name: str) -> str:
    """The application a server is about, from its package name: '@modelcontextprotocol/server-memory'
    → 'memory', 'mcp-server-git' → 'git' (the scope and the words mcp and server dropped)."""
    base = name.rsplit("/", 1)[-1].lower()
    words = [w for w in re.split(r"[^a-z0-9]+", base) if w and w not in ("mcp", "server", "servers")]
    return "_".join(words) or server_slug(name)


def live_tools(
    slug: str, tools: Sequence[Any], *, package: str | None, license: str | None,
    category: str = UNCATEGORIZED, label: str | None = None,
) -> tuple[list[ToolSpec], list[SkippedTool], dict[str, tuple[str, ...]], list[str]]:  # fmt: skip
    """A server's tools — `mcp_types.Tool`s, or tools as sent (JSON objects) when the protocol's
    schema refused them — as `ToolSpec`s: (specs, skipped, schema repairs, warnings)."""
    keep: list[tuple[str, dict[str, Any], dict[str, Any]]] = []
    skipped: list[SkippedTool] = []
    repairs: dict[str, tuple[str, ...]] = {}
    warnings: list[str] = []
    for tool in tools:
        raw = tool.model_dump(by_alias=True, exclude_none=True) if isinstance(tool, types.Tool) else tool
        name = raw.get("name").strip() if isinstance(raw, dict) and isinstance(raw.get("name"), str) else ""
        if not re.search(r"[A-Za-z0-9]", name):
            skipped.append(SkippedTool(name=name or repr(raw)[:60], reason="no usable name"))
            continue
        if any(name == k for k, _, _ in keep):
            skipped.append(SkippedTool(name=name, reason="name listed twice (the first is kept)"))
            continue
        res = repair_schema(raw)
        if res.schema is None:
            skipped.append(SkippedTool(name=name, reason=f"input schema: {res.error}"))
            continue
        if res.repairs:
            repairs[name] = res.repairs
        keep.append((name, raw, res.schema))
    exposed = assign_names([(slug, name) for name, _, _ in keep])
    specs = []
    for (name, raw, schema), tool_name in zip(keep, exposed, strict=True):
        output = None
        if raw.get("outputSchema") is not None:
            out = normalize_schema(raw["outputSchema"])
            if out.schema is None:
                warnings.append(f"{name}: output schema dropped ({out.error})")
            output = out.schema
        annotations = annotations_of(raw.get("annotations"))
        title = raw.get("title") if isinstance(raw.get("title"), str) else None
        specs.append(
            ToolSpec(
                name=tool_name,
                description=clean_description(raw.get("description")),
                input_schema=schema,
                output_schema=output,
                title=(title or "").strip() or annotations.title,
                annotations=annotations,
                provenance=Provenance(
                    source="live", server=slug, original_name=name, package=package, license=license
                ),
                taxonomy=Taxonomy(category=category, domain=label or slug),
            )
        )
    return specs, skipped, repairs, warnings


# ---- scraping -------------------------------------------------------------------------------------


def _fallback_slug(spec: ServerSpec | None, text: str) -> str:
    if spec is None:
        return server_slug(text)
    if spec.kind in ("npm", "pypi"):
        return server_slug(spec.distribution)
    if spec.kind == "http":
        return server_slug(urlparse(spec.url or "").netloc or text)
    return server_slug(re.sub(r"\.(py|js|mjs|cjs)$", "", (spec.command or text).rsplit("/", 1)[-1]))


def _slug(spec: ServerSpec, server_name: str | None) -> str:
    """Packages by their registry name (unique there); commands and URLs by the name they report."""
    if spec.kind in ("npm", "pypi") or not server_name:
        slug = _fallback_slug(spec, str(spec))
    else:
        slug = server_slug(server_name)
    return f"{slug}_live" if slug in RESERVED else slug


def _package_ref(installed: InstalledServer | None, spec: ServerSpec) -> str:
    """Where a tool came from: `npm:pkg@1.0`, `pypi:pkg==1.0`, the command line or the URL."""
    s = installed.spec if installed is not None else spec
    if s.kind in ("npm", "pypi"):
        return f"{s.kind}:{s.requirement}"
    return str(s)


def _trim(text: str | None, limit: int = DESCRIPTION_MAX) -> str:
    return textwrap.shorten(" ".join((text or "").split()), limit, placeholder="…") if text else ""


def _capabilities(caps: types.ServerCapabilities) -> tuple[str, ...]:
    return tuple(k for k, v in caps.model_dump(exclude_none=True).items() if v is not None)


async def scrape(
    spec: ServerSpec | str,
    *,
    timeout: float = 30.0,
    install_timeout: float = 600.0,
    categories: Mapping[str, str] | None = None,
) -> ScrapeResult:
    """Scrape one server (see module doc). `timeout` bounds starting plus initialising, and each
    request; `categories` (slug → category) sets the tools' taxonomy category."""
    text = str(spec)
    t0 = time.perf_counter()
    timings: dict[str, float] = {}
    fields: dict[str, Any] = {"spec": text}
    parsed: ServerSpec | None = spec if isinstance(spec, ServerSpec) else None

    def failed(kind: Any, message: str, tail: str = "") -> ScrapeResult:
        timings["total_s"] = time.perf_counter() - t0
        return ScrapeResult(
            **{"server": _fallback_slug(parsed, text), **fields},
            timings=ScrapeTimings(**{k: round(v, 3) for k, v in timings.items()}),
            error=ScrapeError(kind=kind, message=message, stderr_tail=tail),
        )

    try:
        if parsed is None:
            try:
                parsed = ServerSpec.parse(text)
            except ValueError as e:
                return failed("start_failed", f"bad server spec: {e}")
        installed = None
        if parsed.kind != "http":
            installed = await install(parsed, timeout=install_timeout)
            timings["install_s"] = time.perf_counter() - t0
            if parsed.kind != "command":
                fields |= {"pinned": str(installed.spec), "package": installed.name,
                           "package_version": installed.version, "license": installed.license,
                           "license_raw": installed.license_raw}  # fmt: skip
        t1 = time.perf_counter()
        async with connect(parsed, timeout=timeout, install_timeout=install_timeout) as conn:
            timings["connect_s"] = time.perf_counter() - t1
            info, caps = conn.server_info, conn.capabilities
            slug = fields["server"] = _slug(parsed, info.name)
            fields |= {
                "server_name": info.name, "server_title": info.title, "server_version": info.version or None,
                "protocol_version": conn.init.protocol_version, "capabilities": _capabilities(caps),
                "instructions": conn.init.instructions or None,
                "description": _trim((installed and installed.description) or info.description
                                     or conn.init.instructions),
                "network_isolated": conn.process.network_isolated if conn.process is not None else None,
            }  # fmt: skip
            t2 = time.perf_counter()
            listed = await _list_all(conn, caps)
            timings["list_s"] = time.perf_counter() - t2
        listed_warnings = listed.pop("warnings")
        package = _package_ref(installed, parsed)
        label = domain_label(installed.name if installed is not None and parsed.kind != "command" else slug)
        tools, skipped, repairs, warnings = live_tools(
            slug, listed.pop("tools"), package=package, license=fields.get("license"),
            category=(categories or {}).get(slug, UNCATEGORIZED), label=label,
        )  # fmt: skip
        timings["total_s"] = time.perf_counter() - t0
        return ScrapeResult(
            **fields, **listed, tools=tuple(tools), skipped_tools=tuple(skipped), schema_repairs=repairs,
            warnings=(*listed_warnings, *warnings),
            timings=ScrapeTimings(**{k: round(v, 3) for k, v in timings.items()}),
        )  # fmt: skip
    except MCPServerError as e:
        return failed(e.kind, e.message, e.stderr_tail)
    except Exception as e:  # a bug of ours must not pass for the server's failure, nor stop the others
        return failed("internal", f"{type(e).__name__}: {e}"[:500])


async def _list_all(conn: Connection, caps: types.ServerCapabilities) -> dict[str, Any]:
    """Tools (required), and resources, templates and prompts where offered (a refusal is a warning)."""
    warnings: list[str] = []
    tools = await conn.list_tools() if caps.tools is not None else []
    out: dict[str, Any] = {"tools": [*tools, *conn.rejected_tools]}
    if caps.tools is None:
        warnings.append("the server declares no tools capability")
    if conn.rejected_tools:
        warnings.append(
            f"{len(conn.rejected_tools)} tools break the protocol's tool schema; repaired where possible"
        )

    async def optional(call: Callable[[], Any]) -> list[Any]:
        try:
            return await call()
        except MCPServerError as e:
            if e.kind not in ("request_failed", "protocol_error"):
                raise  # timed out or died: the server is broken, not the listing
            warnings.append(e.message)
            return []

    resources = templates = prompts = []
    if caps.resources is not None:
        resources = await optional(conn.list_resources)
        templates = await optional(conn.list_resource_templates)
    if caps.prompts is not None:
        prompts = await optional(conn.list_prompts)
    out["resources"] = tuple(
        ResourceInfo(uri=str(r.uri), name=r.name, title=r.title, description=r.description,
                     mime_type=r.mime_type) for r in resources
    )  # fmt: skip
    out["resource_templates"] = tuple(
        ResourceTemplateInfo(uri_template=t.uri_template, name=t.name, title=t.title,
                             description=t.description, mime_type=t.mime_type) for t in templates
    )  # fmt: skip
    out["prompts"] = tuple(
        PromptInfo(name=p.name, title=p.title, description=p.description, arguments=tuple(
            PromptArgumentInfo(name=a.name, description=a.description, required=bool(a.required))
            for a in p.arguments or ()))
        for p in prompts
    )  # fmt: skip
    out["warnings"] = tuple(warnings)
    return out


async def scrape_many(
    specs: Iterable[ServerSpec | str],
    *,
    concurrency: int = 4,
    on_done: Callable[[int, ScrapeResult], None] | None = None,
    **options: Any,
) -> list[ScrapeResult]:
    """`scrape` each spec, `concurrency` at a time; results in input order. `on_done(i, result)` is
    called as each finishes; `options` go to `scrape`."""
    items = list(specs)
    results: list[ScrapeResult | None] = [None] * len(items)
    limit = anyio.Semaphore(max(1, concurrency))

    async def one(i: int, spec: ServerSpec | str) -> None:
        async with limit:
            results[i] = await scrape(spec, **options)
        if on_done is not None:
            on_done(i, results[i])  # type: ignore[arg-type]

    async with anyio.create_task_group() as tg:
        for i, spec in enumerate(items):
            tg.start_soon(one, i, spec)
    return [r for r in results if r is not None]


# ---- domains --------------------------------------------------------------------------------------


def nearest_category(tools: Iterable[ToolSpec], repo: Any, k: int = NEIGHBOURS) -> str | None:
    """The category the crawl's nearest tools vote for: each tool's `k` best BM25 matches among the
    crawl tools (`repository.search`) vote with their score relative to the best; None without any."""
    from agentgym.repository.search import search

    votes: Counter[str] = Counter()
    for t in tools:
        hits = search(repo, f"{t.provenance.original_name} {t.description[:300]}", k=k, source="crawl")
        for h in hits:
            votes[h.category] += h.score / hits[0].score
    return votes.most_common(1)[0][0] if votes else None


@dataclass
class LiveImport:
    """The result of `live_domains`."""

    domains: list[DomainSpec]
    """One per shipped server, sorted by name."""
    excluded: list[tuple[str, str]] = field(default_factory=list)
    """(spec, why) for each result that does not ship: failed, not permissive, or no tools."""
    rescraped: set[str] = field(default_factory=set)
    """Domain names of every server scraped successfully (shipped or not): what a merge replaces."""
    names: dict[str, str] = field(default_factory=dict)
    """Spec → domain name, for the results that were scraped."""


def _free(slug: str, taken: set[str]) -> str:
    name, k = slug, 2
    while name in taken:
        name, k = f"{slug}_live" if k == 2 else f"{slug}_live{k}", k + 1
    return name


def _renamed(tools: Sequence[ToolSpec], name: str, category: str) -> tuple[ToolSpec, ...]:
    exposed = assign_names([(name, t.provenance.original_name) for t in tools])
    return tuple(
        t.model_copy(update={"name": n, "provenance": t.provenance.model_copy(update={"server": name}),
                             "taxonomy": t.taxonomy.model_copy(update={"category": category})})
        for t, n in zip(tools, exposed, strict=True)
    )  # fmt: skip


def live_domains(
    results: Iterable[ScrapeResult],
    *,
    categories: Mapping[str, str] | None = None,
    repository: Any = None,
    taken: Iterable[str] = (),
) -> LiveImport:
    """Domains of the shipped servers (see module doc). A slug in `taken` (domains of other sources)
    becomes `<slug>_live`; `repository` is a `ToolRepository` whose crawl tools vote categories."""
    used = set(taken)
    out = LiveImport(domains=[])
    for r in results:
        if not r.ok:
            assert r.error is not None
            out.excluded.append((r.spec, f"failed: {r.error.kind}: {r.error.message}"))
            continue
        name = _free(r.server, used)
        used.add(name)
        out.rescraped.add(name)
        out.names[r.spec] = name
        if not r.permissive:
            out.excluded.append((r.spec, f"licence {r.license or 'unspecified'} is not permissive"))
            continue
        if not r.tools:
            out.excluded.append((r.spec, "no tools"))
            continue
        category = (categories or {}).get(r.server)
        if category is None and repository is not None:
            category = nearest_category(r.tools, repository)
        category = category or r.tools[0].taxonomy.category
        spec = DomainSpec(name=name, category=category, description=r.description or r.server_name or name,
                          entities=(), tools=_renamed(r.tools, name, category))  # fmt: skip
        out.domains.append(infer_domain(spec)[0])
    out.domains.sort(key=lambda d: d.name)
    return out


def merge_domains(
    old: Iterable[DomainSpec], new: Iterable[DomainSpec], replace: Iterable[str] = ()
) -> list[DomainSpec]:
    """`old` without the domains named in `new` or `replace`, plus `new`; sorted by name. A server
    that failed this time is in neither, so its saved domain stays."""
    new = list(new)
    drop = {d.name for d in new} | set(replace)
    return sorted([d for d in old if d.name not in drop] + new, key=lambda d: d.name)
