"""`agentgym tools stats | search | map`: look at the tool repository.

Thin layers over `agentgym.repository.stats`, `.diversity`, `.search` and `.map`. With `--json`,
`stats` and `search` print exactly one JSON object on stdout and nothing else (progress and
errors go to stderr), so their output can be piped.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from agentgym.cli.runs import bar_progress
from agentgym.jsonutil import dumps_str

console = Console()
err = Console(stderr=True)


def _repo():
    from agentgym.repository.store import ToolRepository

    try:
        return ToolRepository.load()
    except (OSError, ValueError) as e:
        err.print(f"[red]error:[/] cannot load the tool repository: {e}")
        raise typer.Exit(2) from None


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def _diversity_by_group(repo, sample: int, seed: int) -> dict[str, Any]:
    """Diversity of real and synthetic tools, each on a seeded sample of the same size (distinct-n
    and duplicate shares depend on the set's size)."""
    from agentgym.repository.diversity import diversity, sample_tools
    from agentgym.repository.stats import group_of, tool_source

    groups: dict[str, list[dict[str, Any]]] = {"real": [], "synthetic": []}
    for d, t in repo.raw_tools():
        groups[group_of(tool_source(repo, d, t))].append(t)
    present = {g: v for g, v in groups.items() if v}
    n = min([sample, *(len(v) for v in present.values())])
    return {g: diversity(sample_tools(v, n, seed), seed=seed) for g, v in present.items()}


def stats_cmd(
    json: Annotated[bool, typer.Option("--json", help="Print one JSON object instead of tables.")] = False,
    diversity: Annotated[
        bool, typer.Option(help="Also measure diversity of real and synthetic tools (size-matched samples).")
    ] = False,
    sample: Annotated[int, typer.Option(help="Tools per group for --diversity.")] = 5000,
) -> None:
    """Tools by source and category, schema complexity, executable share, annotations."""
    from agentgym.repository.stats import repository_stats

    repo = _repo()
    stats = repository_stats(repo)
    if diversity:
        stats["diversity"] = _diversity_by_group(repo, sample, 0)
    if json:
        sys.stdout.write(dumps_str(stats) + "\n")
        return
    _print_stats(stats)


def _print_stats(s: dict[str, Any]) -> None:
    sources = [k for k, v in s["by_source"].items() if v]
    t = Table(
        title=f"tool repository: {s['total']:,} tools, {s['categories']} categories, {s['domains']:,} domains"
    )
    for col in ("source", "tools", "servers", "executable", "annotated", "params (mean)", "depth (mean)"):
        t.add_column(col, justify="left" if col == "source" else "right")
    for src, n in s["by_source"].items():
        sem = s["semantics"]["by_source"].get(src, {"share_known": 0.0})
        ann = s["annotations"]["by_source"].get(src, {"share": 0.0})
        sch = s["schema"].get(src)
        t.add_row(
            src,
            f"{n:,}",
            f"{s['servers'][src]:,}",
            _pct(sem["share_known"]) if n else "-",
            _pct(ann["share"]) if n else "-",
            f"{sch['parameters']['mean']:.2f}" if sch else "-",
            f"{sch['depth']['mean']:.2f}" if sch else "-",
        )
    t.add_row(
        "[bold]all",
        f"[bold]{s['total']:,}",
        f"{sum(s['servers'].values()):,}",
        _pct(s["semantics"]["share_known"]),
        _pct(s["annotations"]["share_any_hint"]),
        f"{s['schema']['all']['parameters']['mean']:.2f}",
        f"{s['schema']['all']['depth']['mean']:.2f}",
    )
    console.print(t)

    c = Table(title="by category")
    for col in ("category", "tools", "domains", *sources):
        c.add_column(col, justify="left" if col == "category" else "right")
    for cat, row in s["by_category"].items():
        c.add_row(
            cat, f"{row['tools']:,}", f"{row['domains']:,}", *(f"{row.get(src, 0):,}" for src in sources)
        )
    console.print(c)

    x = Table(title="schema complexity (top-level parameters, required, nesting depth)")
    for col in (
        "source",
        "params mean/median/p90/max",
        "required mean/max",
        "depth mean/max",
        "parameter types",
    ):
        x.add_column(col, justify="left" if col in ("source", "parameter types") else "right")
    for src in ["all", *sources]:
        b = s["schema"][src]
        p, r, d = b["parameters"], b["required"], b["depth"]
        total = sum(b["types"].values()) or 1
        mix = ", ".join(f"{k} {100 * v / total:.0f}%" for k, v in list(b["types"].items())[:5])
        x.add_row(
            src,
            f"{p['mean']:.2f} / {p['median']:g} / {p['p90']:g} / {p['max']}",
            f"{r['mean']:.2f} / {r['max']}",
            f"{d['mean']:.2f} / {d['max']}",
            mix,
        )
    console.print(x)
    ops = ", ".join(f"{k} {v:,}" for k, v in s["semantics"]["operations"].items())
    console.print(f"executable on the deterministic engine: {s['semantics']['known']:,} tools ({ops})")
    if "diversity" in s:
        _print_diversity(s["diversity"])


def _print_diversity(div: dict[str, dict[str, Any]]) -> None:
    groups = list(div)
    t = Table(title=f"diversity (size-matched samples of {next(iter(div.values()))['tools']:,} tools)")
    t.add_column("metric")
    for g in groups:
        t.add_column(g, justify="right")

    def row(label: str, get) -> None:
        t.add_row(label, *(get(div[g]) for g in groups))

    for field in ("name", "description"):
        for n in ("1", "2", "3"):
            row(f"distinct-{n} ({field} words)", lambda d, f=field, n=n: f"{d['distinct_n'][f][n]:.3f}")
    row("name uniqueness", lambda d: _pct(d["name_uniqueness"]))
    row("near-duplicate descriptions (J ≥ 0.8)", lambda d: _pct(d["near_duplicates"]["share"]))
    row("parameter type entropy (bits)", lambda d: f"{d['parameter_types']['entropy_bits']:.2f}")
    row("verb-first names", lambda d: _pct(d["naming"]["verb_first"]))
    row(
        "naming styles",
        lambda d: ", ".join(f"{k} {100 * v:.0f}%" for k, v in list(d["naming"]["styles"].items())[:3]),
    )
    row("categories covered", lambda d: str(len(d["coverage"])))
    console.print(t)


def search_cmd(
    query: Annotated[str, typer.Argument(help="What the tool should do, in words.")],
    k: Annotated[int, typer.Option("-k", "--k", help="Results.")] = 10,
    source: Annotated[
        str | None, typer.Option(help="Only this source: starter, crawl, live, synthetic.")
    ] = None,
    json: Annotated[bool, typer.Option("--json", help="Print one JSON object instead of a table.")] = False,
) -> None:
    """Find tools by name, description and parameter names (BM25; the index is cached)."""
    from agentgym.repository.search import search

    repo = _repo()
    try:
        hits = search(repo, query, k=k, source=source)
    except ValueError as e:
        err.print(f"[red]error:[/] {e}")
        raise typer.Exit(2) from None
    if json:
        sys.stdout.write(dumps_str({"query": query, "hits": [h.to_dict() for h in hits]}) + "\n")
        return
    t = Table(title=f"{len(hits)} tools for {query!r}" + (f" (source {source})" if source else ""))
    for col in ("score", "tool", "source", "category", "description"):
        t.add_column(col, justify="right" if col == "score" else "left", overflow="fold")
    for h in hits:
        t.add_row(f"{h.score:.2f}", h.name, h.source, h.category, h.description)
    console.print(t)


def map_cmd(
    out: Annotated[Path, typer.Option(help="PNG to write; the points go to a CSV beside it.")] = Path(
        "tools/map.png"
    ),
    n: Annotated[int, typer.Option(help="Tools sampled per group (real, synthetic).")] = 1000,
    seed: Annotated[int, typer.Option(help="Sampling and t-SNE seed.")] = 0,
) -> None:
    """Draw the repository as a t-SNE map of tool embeddings, coloured by category."""
    from agentgym.repository.map import tool_map

    repo = _repo()
    with bar_progress(err) as progress:
        bars: dict[str, Any] = {}

        def report(stage: str, done: int, total: int) -> None:
            if stage not in bars:
                label = "embedding tools" if stage == "embed" else "t-SNE projection"
                bars[stage] = progress.add_task(label, total=total)
            progress.update(bars[stage], completed=done)

        try:
            m = tool_map(repo, out, n_per_source=n, seed=seed, progress=report)
        except (ValueError, RuntimeError) as e:
            err.print(f"[red]error:[/] {e}")
            raise typer.Exit(2) from None
    console.print(
        f"wrote [bold]{m.png}[/] and {m.csv.name}: {m.real:,} real and {m.synthetic:,} synthetic tools, "
        f"{m.categories} categories (embedding {m.embed_s:.1f}s, t-SNE {m.project_s:.1f}s)"
    )
