"""`agentgym tools scrape SPEC…`: live MCP servers in, `tools/live/` out.

Scrapes each server spec (arguments, then the lines of `--file`; blank lines and lines starting with
`#` are skipped) with `agentgym.repository.scrape.scrape_many`, showing a progress bar and then one
table row per server: status, version, licence, tools, resources, prompts, time, or the error.
With `--save` (the default) the servers that ship (permissive licence, at least one tool) are
merged into `<out>/live/domains.jsonl.gz` (a re-scraped server's domain is replaced, one that failed
this time keeps its saved domain), and `report.json` (one entry per spec, the latest attempt) and a
readable `REPORT.md` are rewritten beside it. With `--json` stdout holds exactly one JSON object
(the results), progress and errors go to stderr. Exit code 1 only when every server failed (said
so in red), 2 for no spec at all; a partial failure is reported and exits 0.
"""

from __future__ import annotations

import asyncio
import json
import shlex
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from agentgym.cli.runs import bar_progress, console

err = Console(stderr=True)


def read_specs(specs: list[str], file: Path | None) -> list[str]:
    """The specs given as arguments, then those of `file` (one a line, `#` comments), de-duplicated."""
    out = list(specs)
    if file is not None:
        for line in file.read_text(encoding="utf-8").splitlines():
            line = line.strip()
            if line and not line.startswith("#"):
                out.append(line)
    return list(dict.fromkeys(out))


def _status(r: Any, name: str | None, shipped: set[str]) -> str:
    if not r.ok:
        return "failed"
    if name in shipped:
        return "shipped"
    return "excluded"


def _summary(r: Any, status: str, domain: Any) -> dict[str, Any]:
    """A result's entry in report.json (its tools as names and counts, not schemas)."""
    data = r.model_dump(mode="json", exclude={"tools", "instructions"})
    executable = sum(t.semantics is not None for t in domain.tools) if domain is not None else 0
    return {
        "status": status,
        **data,
        "domain": domain.name if domain is not None else None,
        "category": domain.category if domain is not None else None,
        "tool_names": [t.provenance.original_name for t in r.tools],
        "tool_count": len(r.tools),
        "executable": executable,
        "permissive": r.permissive,
    }


def _cell(text: object, width: int = 60) -> str:
    s = "" if text is None else str(text)
    return s if len(s) <= width else s[: width - 1] + "…"


def render_report_md(report: dict[str, Any]) -> str:
    """REPORT.md of a live scrape (the dict written as report.json)."""
    servers = report["servers"]
    shipped = [s for s in servers if s["status"] == "shipped"]
    tools = sum(s["tool_count"] for s in shipped)
    executable = sum(s["executable"] for s in shipped)
    rows = []
    for s in servers:
        status = s["status"] if s["status"] != "failed" else f"failed: {s['error']['kind']}"
        rows.append(
            "| " + " | ".join(_cell(c).replace("|", "\\|") for c in (
                f"`{s['spec']}`", s["package_version"] or "", f"{s['server_name'] or ''} {s['server_version'] or ''}",
                s["license"] or "unspecified", s["tool_count"], s["executable"], len(s["resources"]),
                len(s["resource_templates"]), len(s["prompts"]), s["category"] or "", status,
                f"{s['timings']['total_s']:.1f}",
            )) + " |"
        )  # fmt: skip
    out = [
        "# Live MCP servers",
        "",
        f"Tools scraped from {len(servers)} real MCP servers, installed from npm and PyPI and run in agentgym's "
        f"process sandbox. **{tools} tools ship in {len(shipped)} domains**; {executable} of them are executable "
        "on the deterministic engine (semantics inferred by `repository.semantics.infer_domain`), the others "
        "keep `semantics: null` and run on a real backend or the world model.",
        "",
        "## How it was made",
        "",
        f"```\n{report['command']}\n```",
        "",
        "run from the repository root. Each spec is installed once into the cache (`~/.cache/agentgym/mcp-servers`, "
        "or `$AGENTGYM_CACHE`; npm without lifecycle scripts, PyPI as binary wheels into a venv), started in the "
        "sandbox of `agentgym/mcp/sandbox.py` (scrubbed environment, resource limits, no network where "
        "`unshare --net` works, the whole process tree killed on exit), initialised over stdio with the `mcp` "
        "SDK, and asked for every page of its tools, and of its resources, resource templates and prompts "
        "where it offers them (`agentgym/repository/scrape.py`). Tool names are `<server slug>__<tool>`; input "
        "and output schemas pass through the crawl importer's repair and Draft 2020-12 meta-validation. "
        "Categories are voted by the crawl tools nearest to each server's tools (BM25, "
        "`scrape.nearest_category`). Only servers whose package metadata names a permissive licence ship. "
        "Re-running the command replaces the domains of the servers it scrapes; a server that fails keeps its "
        "saved domain.",
        "",
        "## Servers",
        "",
        "| spec | package | server (initialize) | licence | tools | executable | resources | templates "
        "| prompts | category | status | seconds |",
        "|---|---|---|---|---:|---:|---:|---:|---:|---|---|---:|",
        *rows,
        "",
        "## Licences",
        "",
    ]
    out += [f"- `{s['spec']}`: {s['license'] or 'unspecified'} — metadata: “{s['license_raw'] or 'nothing'}”"
            for s in servers if s["status"] != "failed"]  # fmt: skip
    if any("README:" in (s["license_raw"] or "") for s in servers):
        out += ["", "Where the metadata reads “SEE LICENSE IN LICENSE (file not in the package)”, the package.json "
                "points to a licence file the published package does not ship (it lives at the root of the "
                "source monorepo); the licence is then the one the 'License' section of the README shipped in "
                "the package states (`mcp.launch.license_of_readme`)."]  # fmt: skip
    excluded = [s for s in servers if s["status"] != "shipped"]
    out += ["", "## Not shipped", ""]
    if not excluded:
        out.append("Every server scraped ships.")
    for s in excluded:
        why = (f"{s['error']['kind']}: {s['error']['message']}" if s["error"]
               else f"licence {s['license'] or 'unspecified'}" if not s["permissive"] else "no tools")  # fmt: skip
        out.append(f"- `{s['spec']}` ({s['status']}): {why}")
    notes = [(s["spec"], w) for s in servers for w in s["warnings"]]
    notes += [
        (s["spec"], f"tool `{k['name']}` skipped: {k['reason']}") for s in servers for k in s["skipped_tools"]
    ]
    out += ["", "## Warnings", ""]
    out += [f"- `{spec}`: {w}" for spec, w in notes] or ["None."]
    out += ["", "## Tools", ""]
    out += [f"- `{s['domain']}` ({s['tool_count']}): " + ", ".join(f"`{n}`" for n in s["tool_names"])
            for s in shipped]  # fmt: skip
    out += [
        "",
        "## Known limits",
        "",
        "- A scrape records what a server lists with its default configuration: servers that add tools "
        "once given credentials or options list only what they offer without them.",
        "- Categories are inferred from neighbours in the crawl, not given by the server; `server-everything` "
        "is a protocol test server and has no real application domain.",
        "- Timings include starting Node or Python in the sandbox; they vary from run to run.",
    ]
    return "\n".join(out) + "\n"


def _save(results: list[Any], out: Path | None, command: str) -> tuple[Path, dict[str, str], set[str]]:
    """Merge the shipped domains into `<out>/live/`, rewrite report.json and REPORT.md."""
    from agentgym.paths import tools_dir
    from agentgym.repository.scrape import live_domains, merge_domains
    from agentgym.repository.store import FILE, ToolRepository, iter_domain_dicts, save_domains
    from agentgym.spec.world import DomainSpec

    root = out or tools_dir()
    crawl = ToolRepository.load(root, sources=("crawl",))
    others = ToolRepository.load(root, sources=("starter", "synthetic"))
    live = live_domains(results, repository=crawl if len(crawl) else None,
                        taken=[*crawl.domain_names(), *others.domain_names()])  # fmt: skip
    path = root / "live" / FILE
    old = [DomainSpec.model_validate(d) for d in iter_domain_dicts(path)] if path.exists() else []
    merged = merge_domains(old, live.domains, live.rescraped)
    path = save_domains("live", merged, root)
    by_name = {d.name: d for d in merged}
    shipped = {d.name for d in live.domains}
    report_path = path.parent / "report.json"
    entries: dict[str, dict[str, Any]] = {}
    if report_path.exists():
        # an earlier entry for a server scraped again now (perhaps under another spec, e.g. pinned) goes
        fresh = {live.names.get(r.spec) for r in results} - {None}
        earlier = json.loads(report_path.read_text(encoding="utf-8"))["servers"]
        entries = {s["spec"]: s for s in earlier if s.get("domain") not in fresh}
    for r in results:
        name = live.names.get(r.spec)
        status = _status(r, name, shipped)
        domain = by_name.get(name) if status == "shipped" else None
        entries[r.spec] = _summary(r, status, domain)
    for spec, e in entries.items():  # an entry whose domain is no longer saved is not shipped
        if e["status"] == "shipped" and e["domain"] not in by_name:
            entries[spec] = {**e, "status": "excluded"}
    report = {"command": command, "servers": list(entries.values())}
    report_path.write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    (path.parent / "REPORT.md").write_text(render_report_md(report), encoding="utf-8")
    return path, live.names, shipped


def scrape_cmd(
    specs: Annotated[
        list[str] | None,
        typer.Argument(
            help="Server specs: npm:PKG, pypi:PKG, 'npx -y PKG', 'uvx PKG', a script path, or a URL."
        ),
    ] = None,
    file: Annotated[Path | None, typer.Option("--file", "-f", help="A file of specs, one a line.")] = None,
    timeout: Annotated[float, typer.Option(help="Seconds for start + initialise, and per request.")] = 30.0,
    install_timeout: Annotated[float, typer.Option(help="Seconds for installing a package.")] = 600.0,
    concurrency: Annotated[int, typer.Option(help="Servers scraped at a time.")] = 4,
    save: Annotated[
        bool, typer.Option(help="Merge the shipped servers into <out>/live/domains.jsonl.gz.")
    ] = True,
    out: Annotated[
        Path | None, typer.Option(help="Repository root to write live/ under (default: tools/).")
    ] = None,
    json_out: Annotated[
        bool, typer.Option("--json", help="Print one JSON object (the results) on stdout.")
    ] = False,
) -> None:
    """Scrape live MCP servers: install, sandbox, initialise, list tools, resources and prompts."""
    from agentgym.repository.scrape import scrape_many

    show = err if json_out else console
    if file is not None and not file.is_file():
        show.print(f"[red]error:[/] {file} is not a file")
        raise typer.Exit(2)
    todo = read_specs(specs or [], file)
    if not todo:
        show.print("[red]error:[/] no server spec given (arguments or --file)")
        raise typer.Exit(2)
    with bar_progress(show, transient=True) as progress:
        bar = progress.add_task("scraping MCP servers", total=len(todo))

        def done(_i: int, r: Any) -> None:
            mark = "[green]ok[/]" if r.ok else f"[red]{r.error.kind}[/]"
            progress.console.print(f"{mark} {r.spec} ({r.timings.total_s:.1f}s)")
            progress.advance(bar)

        results = asyncio.run(scrape_many(todo, concurrency=concurrency, on_done=done, timeout=timeout,
                                       install_timeout=install_timeout))  # fmt: skip
    ok = [r for r in results if r.ok]
    command = "agentgym tools scrape " + shlex.join(
        [*(specs or []), *(["--file", str(file)] if file is not None else []),
         *([f"--timeout={timeout:g}"] if timeout != 30.0 else []), *([f"--out={out}"] if out else [])]
    )  # fmt: skip
    names: dict[str, str] = {}
    shipped: set[str] = set()
    saved = None
    if save and ok:
        saved, names, shipped = _save(results, out, command)
    if json_out:
        data = [{"status": _status(r, names.get(r.spec), shipped) if save else ("ok" if r.ok else "failed"),
                 "permissive": r.permissive, **r.model_dump(mode="json")} for r in results]  # fmt: skip
        sys.stdout.write(json.dumps({"servers": data, "saved": str(saved) if saved else None}) + "\n")
    else:
        _print_table(results, names, shipped, save)
    if saved is not None:
        show.print(
            f"saved {saved} ({len(shipped)} servers shipped this run) and {saved.parent / 'REPORT.md'}"
        )
    if not ok:
        show.print(f"[red]every server failed[/] ({len(results)} of {len(results)})")
        raise typer.Exit(1)
    if len(ok) < len(results):
        show.print(f"[yellow]{len(results) - len(ok)} of {len(results)} servers failed[/]")


def _print_table(results: list[Any], names: dict[str, str], shipped: set[str], save: bool) -> None:
    table = Table(title=f"{sum(r.ok for r in results)} of {len(results)} servers scraped")
    for col, kw in (("server", {"max_width": 44}), ("version", {}), ("licence", {}), ("tools", {"justify": "right"}),
                    ("res", {"justify": "right"}), ("prompts", {"justify": "right"}), ("s", {"justify": "right"}),
                    ("status", {"max_width": 60})):  # fmt: skip
        table.add_column(col, **kw)
    for r in results:
        if r.ok:
            status = _status(r, names.get(r.spec), shipped) if save else "ok"
            style = {"shipped": "green", "ok": "green"}.get(status, "yellow")
            status = f"[{style}]{status}[/]" + (f" ({len(r.warnings)} warnings)" if r.warnings else "")
        else:
            status = f"[red]{r.error.kind}[/]: {r.error.message}"
        version = r.package_version or r.server_version or ""
        table.add_row(r.package or r.spec, version, r.license or "-", str(len(r.tools)),
                      str(len(r.resources) + len(r.resource_templates)), str(len(r.prompts)),
                      f"{r.timings.total_s:.1f}", status)  # fmt: skip
    console.print(table)
