"""`agentgym tools generate`: synthetic domains and tools, compositional or model-assisted."""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from agentgym.cli.runs import bar_progress, console
from agentgym.paths import tools_dir


def generate_cmd(
    mode: Annotated[
        str, typer.Option(help="compositional (taxonomy, deterministic) or assisted (a model proposes).")
    ] = "compositional",
    seed: Annotated[int, typer.Option(help="Seed: API styles, seed records, examples.")] = 0,
    workers: Annotated[int, typer.Option(help="Processes building domains.")] = 2,
    model: Annotated[str, typer.Option(help="Model for --mode assisted.")] = "embedded",
    per_category: Annotated[int, typer.Option(help="Proposals per category (--mode assisted).")] = 1,
    out: Annotated[Path | None, typer.Option(help="Repository root (default: tools/).")] = None,
    save: Annotated[bool, typer.Option(help="Write tools/<source>/domains.jsonl.gz and the report.")] = True,
) -> None:
    """Generate synthetic tools with exact semantics; every tool's example is run before it is kept."""
    from agentgym.repository.store import save_domains
    from agentgym.repository.synth.generate import CompositionalSource, generate
    from agentgym.repository.synth.taxonomy import TaxonomyError, load_taxonomy

    try:
        categories = [c.name for c in load_taxonomy().categories]
    except TaxonomyError as e:
        console.print(f"[red]error:[/] {e}")
        raise typer.Exit(2) from None
    if mode == "compositional":
        source = CompositionalSource()
        total = sum(len(c.domains) for c in load_taxonomy().categories)
    elif mode == "assisted":
        from agentgym.models import load_model
        from agentgym.repository.synth.assisted import AssistedSource

        existing = [d.name for c in load_taxonomy().categories for d in c.domains]
        source = AssistedSource(load_model(model), categories, per_category, existing)
        total = len(categories) * per_category
        workers = 1
    else:
        console.print(f"[red]error:[/] --mode must be compositional or assisted, not {mode!r}")
        raise typer.Exit(2)
    t0 = time.perf_counter()
    with bar_progress() as progress:
        bar = progress.add_task(f"building ({mode})", total=total)
        domains, report = generate(source, seed, workers, progress=lambda d: progress.advance(bar))
    table = Table(title=f"{report.domains} domains, {report.tools} tools in {time.perf_counter() - t0:.1f}s")
    for col in ("category", "domains", "tools"):
        table.add_column(col)
    for cat, c in sorted(report.by_category.items()):
        table.add_row(cat, str(c["domains"]), str(c["tools"]))
    console.print(table)
    if report.rejected:
        console.print(f"[yellow]{len(report.rejected)} rejected[/]: " + "; ".join(report.rejected[:5]))
    extra = {}
    if mode == "assisted":
        extra = {"proposals": dict(source.stats), "rejections": source.rejections}  # type: ignore[attr-defined]
        console.print(f"model proposals: {dict(source.stats)}")
    if save and domains:
        name = "synthetic" if mode == "compositional" else "synthetic_assisted"
        if name == "synthetic":
            path = save_domains("synthetic", domains, out)
            command = f"agentgym tools generate --mode {mode} --seed {seed} --workers {workers}"
            rep = (out or tools_dir()) / "synthetic" / "report.json"
            rep.write_text(json.dumps({**asdict(report), **extra, "command": command}, indent=1))
            rep.with_name("REPORT.md").write_text(report_markdown(domains, report, command))
            console.print(f"saved {path}, {rep.name} and REPORT.md")
        else:
            console.print("model-assisted domains are reported, not shipped; pass them through review first")


def report_markdown(domains, report, command: str) -> str:
    """`tools/synthetic/REPORT.md`: what was generated, by category and by operation, and how."""
    from collections import Counter

    ops = Counter(t.semantics.operation if t.semantics else "none" for d in domains for t in d.tools)
    entities = sum(len(d.entities) for d in domains)
    lines = [
        "# Synthetic tools",
        "",
        f"**{report.tools:,} tools in {report.domains} domains across {len(report.by_category)} categories**, "
        f"{entities:,} entity types; every tool has executable semantics on the deterministic engine. "
        f"{len(report.rejected)} domains rejected. Built in {report.seconds:.0f} s.",
        "",
        "## How it was made",
        "",
        "```",
        command,
        "```",
        "",
        "run from the repository root; it rewrites `tools/synthetic/domains.jsonl.gz`, `report.json` and this "
        "file, the domains byte for byte the same for the same taxonomy and seed. The taxonomy "
        "(categories → application domains → typed entities with attributes, references and lifecycles) is "
        "hand-written data in `agentgym/repository/synth/taxonomy/*.yaml`; `agentgym/repository/synth/build.py` "
        "turns each domain into tools (create, read, list with filters, count, search, update, delete, "
        "lifecycle actions with preconditions, clone, reassign, tags, key lookups) with an API style drawn "
        "from the seed (verb vocabulary, naming case, parameter style). Before a domain is kept, both schemas "
        "of every tool are meta-validated (Draft 2020-12) and every tool's worked example is run on a fresh "
        "copy of the domain's seed world through the simulated backend; `tests/repository/"
        "test_synthetic_shipped.py` repeats both for every shipped tool.",
        "",
        "## Operations",
        "",
        "| operation | tools |",
        "|---|---:|",
        *(f"| {op} | {n:,} |" for op, n in ops.most_common()),
        "",
        "## By category",
        "",
        "| category | domains | tools |",
        "|---|---:|---:|",
        *(f"| {c} | {v['domains']} | {v['tools']:,} |" for c, v in sorted(report.by_category.items())),
        "",
    ]
    return "\n".join(lines)
