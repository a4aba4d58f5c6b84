"""CLI: `agentgym agents make|list`, `agentgym tasks generate|stats`, and suite discovery.

Thin layers over `agentgym.agents` and `agentgym.taskgen`. "Shipped suites" are the folders of
`tasks/` with a `suite.yaml`; `agents list` and `tasks stats` read them all unless `--suite` names
one.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from agentgym.cli.runs import bar_progress, console, load_suite_or_exit


def shipped_suites() -> list[str]:
    from agentgym.paths import tasks_dir

    return sorted(d.name for d in tasks_dir().iterdir() if (d / "suite.yaml").exists())


def agents_make_cmd(
    n: Annotated[int, typer.Option("--n", help="Agents to make.")] = 5000,
    seed: Annotated[int, typer.Option(help="Random seed (the result is deterministic in it).")] = 0,
    out: Annotated[Path | None, typer.Option(help="Write the agents here as JSONL.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON summary.")] = False,
) -> None:
    """Make N distinct agents (system prompt + coherent tool subset) from the tool repository."""
    from agentgym.agents import Catalog, make_agents
    from agentgym.repository.store import ToolRepository
    from agentgym.spec.jsonl import write_jsonl

    if n < 1:
        console.print("[red]error:[/] --n must be at least 1")
        raise typer.Exit(2)
    t0 = time.perf_counter()
    with console.status("loading the tool repository..."):
        catalog = Catalog(ToolRepository.load())
    try:
        batch = make_agents(catalog, n, seed)
    except RuntimeError as e:
        console.print(f"[red]error:[/] {e}")
        raise typer.Exit(1) from None
    seconds = time.perf_counter() - t0
    if out is not None:
        write_jsonl(out, batch.agents)
    summary = {
        "agents": len(batch.agents),
        "distinct_tool_sets": len({frozenset(a.tools) for a in batch.agents}),
        "distinct_prompts": len({a.system_prompt for a in batch.agents}),
        "strategies": dict(batch.strategies),
        "layouts": dict(batch.layouts),
        "rejected": dict(batch.rejected),
        "coverage": batch.coverage,
        "seconds": round(seconds, 2),
        "out": str(out) if out else None,
    }
    if as_json:
        print(json.dumps(summary))
        return
    console.print(
        f"[green]{summary['agents']} agents[/] in {seconds:.1f}s: {summary['distinct_tool_sets']} distinct tool "
        f"sets, {summary['distinct_prompts']} distinct prompts; strategies {summary['strategies']}"
    )
    table = Table(title="repository coverage")
    for col in ("source", "tools held", "domains held"):
        table.add_column(col)
    for src, row in sorted(batch.coverage.items()):
        table.add_row(
            src, f"{row['tools_held']} / {row['tools']}", f"{row['domains_held']} / {row['domains']}"
        )
    console.print(table)
    if out:
        console.print(f"wrote {out}")


def agents_list_cmd(
    suite: Annotated[str | None, typer.Option(help="One suite (default: every shipped suite).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List the shipped agents."""
    rows = []
    for name in [suite] if suite else shipped_suites():
        s = load_suite_or_exit(name)
        for a in s.agents.values():
            rows.append(
                {
                    "id": a.id,
                    "suite": s.name,
                    "name": a.name,
                    "tools": len(a.tools),
                    "domains": list(a.domains),
                    "tasks": sum(t.agent_id == a.id for t in s),
                }
            )
    if as_json:
        print(json.dumps(rows))
        return
    table = Table(title=f"{len(rows)} agents")
    for col in ("id", "suite", "name", "tools", "tasks"):
        table.add_column(col)
    for r in rows[:200]:
        table.add_row(r["id"], r["suite"], r["name"][:50], str(r["tools"]), str(r["tasks"]))
    console.print(table)
    if len(rows) > 200:
        console.print(f"... and {len(rows) - 200} more (use --json for all)")


def tasks_generate_cmd(
    name: Annotated[str, typer.Option(help="Suite name.")] = "agentic",
    agents: Annotated[int, typer.Option(help="Agents to make.")] = 300,
    per_agent: Annotated[int, typer.Option(help="Tasks to draw per agent.")] = 8,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    out: Annotated[Path | None, typer.Option(help="Output folder (default: tasks/NAME).")] = None,
    blueprints: Annotated[
        str | None, typer.Option(help="Comma-separated blueprints to use (default: all).")
    ] = None,
    validate: Annotated[bool, typer.Option(help="Validate every task and ship only valid ones.")] = True,
    drop_idle_agents: Annotated[bool, typer.Option(help="Ship only the agents that got tasks.")] = False,
    heldout: Annotated[float, typer.Option(help="Share of domains held out for test.")] = 0.1,
    test_frac: Annotated[float, typer.Option(help="Share of the other agents whose tasks are test.")] = 0.1,
    paraphrase_model: Annotated[
        str | None,
        typer.Option(help="Reword requests with this model (embedded, hf:PATH); facts are checked."),
    ] = None,
) -> None:
    """Generate a suite: agents, gold-blueprint tasks with rubrics, splits, decontamination, validation."""
    from agentgym.paths import tasks_dir
    from agentgym.taskgen.blueprints import BLUEPRINTS
    from agentgym.taskgen.generate import GenConfig
    from agentgym.taskgen.suitegen import SuiteConfig, build_suite, write_suite

    chosen = tuple(b.strip() for b in blueprints.split(",")) if blueprints else None
    unknown = set(chosen or ()) - set(BLUEPRINTS)
    if unknown:
        console.print(
            f"[red]error:[/] unknown blueprints {sorted(unknown)}; known: {', '.join(sorted(BLUEPRINTS))}"
        )
        raise typer.Exit(2)
    cfg = SuiteConfig(
        name=name,
        agents=agents,
        per_agent=per_agent,
        seed=seed,
        validate_tasks=validate,
        drop_idle_agents=drop_idle_agents,
        heldout_frac=heldout,
        test_frac=test_frac,
        generation=GenConfig(blueprints=chosen),
    )
    paraphraser = None
    if paraphrase_model:
        from agentgym.models import load_model

        with console.status(f"loading {paraphrase_model}..."):
            paraphraser = load_model(paraphrase_model)
    with bar_progress() as bar:
        ids: dict[str, Any] = {}

        def progress(phase: str, done: int, total: int) -> None:
            if phase not in ids:
                ids[phase] = bar.add_task(phase, total=total)
            bar.update(ids[phase], completed=done, total=total)

        report = build_suite(cfg, paraphraser=paraphraser, progress=progress)
    path = write_suite(report, out or tasks_dir() / name)
    c = report.counts
    console.print(
        f"[green]{c['shipped']} tasks[/] over {len({t.agent_id for t in report.tasks})} agents "
        f"({len(report.agents)} made) in {report.timings['total_s']:.1f}s "
        f"(generate {report.timings['generate_s']:.1f}s, validate {report.timings['validate_s']:.1f}s); "
        f"{c['near_duplicates_dropped']} near duplicates dropped, {c['invalid']} invalid"
        + (f", {c['paraphrased']} paraphrased" if paraphrase_model else "")
    )
    console.print(f"wrote {path} (see STATS.md)")


def tasks_stats_cmd(
    suite: Annotated[str | None, typer.Option(help="One suite (default: every shipped suite).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Distribution of the shipped tasks: difficulty, split, calls per task, criteria, domains."""
    from agentgym.taskgen.stats import stats_markdown, task_stats

    tasks, agents, per_suite = [], {}, {}
    for name in [suite] if suite else shipped_suites():
        s = load_suite_or_exit(name)
        tasks += list(s)
        agents.update({a.id: a for a in s.agents.values()})
        per_suite[s.name] = len(s)
    stats = task_stats(tasks, agents)
    stats["suites"] = per_suite
    if as_json:
        print(json.dumps(stats))
        return
    console.print(stats_markdown(stats))
    console.print(f"suites: {per_suite}")
