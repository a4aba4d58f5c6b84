"""`agentgym tools generate`: synthetic domains and tools, compositional or model-assisted."""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from agentgym.cli.runs import console
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
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    ) as progress:
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
            rep = (out or tools_dir()) / "synthetic" / "report.json"
            rep.write_text(
                json.dumps(
                    {
                        **asdict(report),
                        **extra,
                        "command": f"agentgym tools generate --mode {mode} --seed {seed} --workers {workers}",
                    },
                    indent=1,
                )
            )
            console.print(f"saved {path}")
        else:
            console.print("model-assisted domains are reported, not shipped; pass them through review first")
