"""`agentgym`: the command line. Each command is a thin layer over the library.

agentgym demo                 the embedded model on a sample of the starter suite
agentgym run                  any suite, any policy (embedded, oracle, noop, a local model path)
agentgym tasks validate       every task: oracle 1.0, do-nothing < 0.5
agentgym tasks list           the tasks of a suite
agentgym tools list           the tools of a suite's world
agentgym tools import-crawl   real tools from crawl dumps
agentgym tools scrape SPEC    real tools from live MCP servers (npm, PyPI, a command, a URL)
agentgym tools generate       synthetic domains and tools
agentgym tools stats          the repository by source, category, schema complexity
agentgym tools search QUERY   find tools by what they do
agentgym tools map            a 2-D map of real and synthetic tools, as PNG
agentgym model prepare        convert and cache the embedded model
agentgym envs                 the registered Gymnasium ids
"""

from __future__ import annotations

import json
import random
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from agentgym.cli.crawl_cmd import import_crawl_cmd
from agentgym.cli.generate_cmd import generate_cmd
from agentgym.cli.repo_cmds import map_cmd, search_cmd, stats_cmd
from agentgym.cli.runs import console, play, report
from agentgym.cli.scrape_cmd import scrape_cmd

app = typer.Typer(
    help="Turn MCP tools into RL environments for tool-using language models.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
tasks_app = typer.Typer(help="Task suites: list and validate.", no_args_is_help=True)
tools_app = typer.Typer(help="The tool repository.", no_args_is_help=True)
model_app = typer.Typer(help="Models: prepare the embedded default.", no_args_is_help=True)
app.add_typer(tasks_app, name="tasks")
app.add_typer(tools_app, name="tools")
app.add_typer(model_app, name="model")


def _suite(name: str):
    from agentgym.suites import SuiteError, load_suite

    try:
        return load_suite(name)
    except SuiteError as e:
        console.print(f"[red]error:[/] {e}")
        raise typer.Exit(2) from None


def _policy_factory(spec: str, max_new_tokens: int, temperature: float, fmt: str):
    from agentgym.models import SamplingParams, load_model
    from agentgym.policies import ModelPolicy, NoopPolicy, OraclePolicy

    if spec == "oracle":
        return lambda: OraclePolicy(fmt)
    if spec == "noop":
        return NoopPolicy
    with console.status(f"loading model {spec}..."):
        t0 = time.perf_counter()
        try:
            model = load_model(spec)
        except (ValueError, FileNotFoundError, RuntimeError) as e:
            console.print(f"[red]error:[/] {e}")
            raise typer.Exit(2) from None
    console.print(f"model [bold]{model.name}[/] ready in {time.perf_counter() - t0:.1f}s")
    sampling = SamplingParams(max_new_tokens=max_new_tokens, temperature=temperature)
    return lambda: ModelPolicy(model, sampling)


def _stratified(suite, n: int, seed: int) -> list[str]:
    """n task ids spread over domains and difficulties, deterministic in seed."""
    rng = random.Random(seed)
    by_domain: dict[str, list[str]] = {}
    for t in suite:
        by_domain.setdefault(t.tags[0] if t.tags else "other", []).append(t.id)
    pools = [rng.sample(v, len(v)) for _, v in sorted(by_domain.items())]
    out: list[str] = []
    while len(out) < n and any(pools):
        for p in pools:
            if p and len(out) < n:
                out.append(p.pop())
    return out


@app.command()
def demo(
    n: Annotated[int, typer.Option(help="Tasks to play.")] = 6,
    out: Annotated[Path, typer.Option(help="Output folder.")] = Path("runs/demo"),
    seed: Annotated[int, typer.Option(help="Sampling of tasks and episode seeds.")] = 0,
    max_turns: Annotated[int, typer.Option(help="Assistant turns per episode.")] = 3,
    max_new_tokens: Annotated[int, typer.Option(help="Tokens per assistant turn.")] = 128,
) -> None:
    """Run the embedded model (SmolLM2-135M-Instruct, CPU, offline) on a sample of the starter suite."""
    from agentgym.env.tool_env import EnvConfig

    suite = _suite("starter")
    ids = _stratified(suite, n, seed)
    console.print(
        f"[bold]agentgym demo[/]: embedded model on {len(ids)} starter tasks, up to {max_turns} turns each"
    )
    make_policy = _policy_factory("embedded", max_new_tokens, 0.0, "hermes")
    trajs = play(
        suite, make_policy, [(i, seed) for i in ids], out, EnvConfig(max_turns=max_turns), title="demo"
    )
    report(trajs, suite, out, "embedded model on the starter suite")
    _references(suite, ids, seed)


def _references(suite, ids: list[str], seed: int) -> None:
    """Oracle and do-nothing scores on the same tasks: the two ends a model's score lies between."""
    from agentgym.env.tool_env import ToolUseEnv
    from agentgym.suites.validate import check_task

    env = ToolUseEnv(suite, task_ids=ids)
    checks = [check_task(env, i, seed) for i in ids]
    oracle = sum(c.oracle for c in checks) / len(checks)
    noop = sum(c.noop for c in checks) / len(checks)
    console.print(f"reference on the same tasks: oracle (gold replay) {oracle:.2f}, do-nothing {noop:.2f}")


@app.command()
def run(
    suite: Annotated[str, typer.Option(help="Suite name (folder of tasks/) or path.")] = "starter",
    model: Annotated[str, typer.Option(help="embedded | oracle | noop | hf:<path> | <path>.")] = "embedded",
    tasks: Annotated[str | None, typer.Option(help="Comma-separated task ids (default: all).")] = None,
    n: Annotated[int | None, typer.Option(help="Play only this many tasks (stratified sample).")] = None,
    seeds: Annotated[int, typer.Option(help="Episodes per task (seeds 0..k-1).")] = 1,
    out: Annotated[Path, typer.Option(help="Output folder (resumes if it holds trajectories).")] = Path(
        "runs/run"
    ),
    max_turns: Annotated[int | None, typer.Option(help="Override the tasks' turn limit.")] = None,
    max_new_tokens: Annotated[int, typer.Option()] = 256,
    temperature: Annotated[float, typer.Option()] = 0.0,
    tool_format: Annotated[str, typer.Option(help="Tool-call format the oracle writes.")] = "hermes",
    faults: Annotated[
        str | None, typer.Option(help='Fault rates as JSON, e.g. \'{"default": {"timeout": 0.1}}\'.')
    ] = None,
    concurrency: Annotated[int, typer.Option(help="Episodes in flight.")] = 1,
) -> None:
    """Play a suite with any policy; trajectories and a summary go to --out."""
    from agentgym.env.tool_env import EnvConfig
    from agentgym.world.faults import FaultConfig

    s = _suite(suite)
    ids = tasks.split(",") if tasks else list(s.tasks)
    unknown = [i for i in ids if i not in s.tasks]
    if unknown:
        console.print(f"[red]error:[/] unknown task ids: {unknown}")
        raise typer.Exit(2)
    if n is not None:
        ids = [i for i in _stratified(s, len(s), 0) if i in set(ids)][:n]
    try:
        fc = FaultConfig.model_validate_json(faults) if faults else FaultConfig()
    except ValueError as e:
        console.print(f"[red]error:[/] --faults: {e}")
        raise typer.Exit(2) from None
    make_policy = _policy_factory(model, max_new_tokens, temperature, tool_format)
    jobs = [(i, k) for i in ids for k in range(seeds)]
    trajs = play(
        s,
        make_policy,
        jobs,
        out,
        EnvConfig(max_turns=max_turns, faults=fc),
        concurrency=concurrency,
        title=model,
    )
    report(trajs, s, out, f"{model} on {s.name}")


@tasks_app.command("validate")
def tasks_validate(
    suite: Annotated[str, typer.Option(help="Suite name or path.")] = "starter",
    faults: Annotated[bool, typer.Option(help="Also replay the oracle under injected faults.")] = False,
) -> None:
    """Check every task: oracle scores 1.0, do-nothing < 0.5, rubric uses only the agent's tools."""
    from agentgym.suites.validate import validate_suite
    from agentgym.world.faults import FaultConfig, FaultRates

    s = _suite(suite)
    fc = (
        FaultConfig(default=FaultRates(timeout=0.1, rate_limited=0.05, server_error=0.05, partial_result=0.2))
        if faults
        else None
    )
    bad = []
    with console.status("validating...") as status:

        def prog(c):
            status.update(f"validating... {c.task_id}")
            if not c.ok:
                bad.append(c)

        checks = validate_suite(s, faults=fc, progress=prog)
    table = Table(title=f"suite {s.name}: {len(checks)} tasks")
    for col in ("task", "oracle", "do-nothing", "status"):
        table.add_column(col)
    for c in checks:
        table.add_row(
            c.task_id,
            f"{c.oracle:.2f}",
            f"{c.noop:.2f}",
            "[green]ok[/]" if c.ok else "[red]" + "; ".join(c.problems) + "[/]",
        )
    console.print(table)
    if bad:
        console.print(f"[red]{len(bad)} of {len(checks)} tasks failed validation[/]")
        raise typer.Exit(1)
    console.print(f"[green]all {len(checks)} tasks valid[/]: oracle 1.0, do-nothing < 0.5")


@tasks_app.command("list")
def tasks_list(
    suite: Annotated[str, typer.Option()] = "starter",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List a suite's tasks."""
    s = _suite(suite)
    if as_json:
        print(
            json.dumps(
                [
                    {
                        "id": t.id,
                        "agent_id": t.agent_id,
                        "difficulty": t.difficulty,
                        "split": t.split,
                        "tags": list(t.tags),
                    }
                    for t in s
                ]
            )
        )
        return
    table = Table(title=f"suite {s.name}")
    for col in ("id", "agent", "difficulty", "gold calls", "instruction"):
        table.add_column(col)
    for t in s:
        table.add_row(
            t.id, t.agent_id, t.difficulty, str(sum(len(g.calls) for g in t.gold)), t.instruction[:70]
        )
    console.print(table)


@tools_app.command("list")
def tools_list(suite: Annotated[str, typer.Option()] = "starter") -> None:
    """List the tools of a suite's world."""
    s = _suite(suite)
    table = Table(title=f"{len(s.world.tools)} tools")
    for col in ("name", "operation", "collection", "description"):
        table.add_column(col)
    for t in s.world.tools.values():
        sem = t.semantics
        table.add_row(
            t.name, sem.operation if sem else "-", sem.collection if sem else "-", t.description[:60]
        )
    console.print(table)


tools_app.command("generate")(generate_cmd)
tools_app.command("import-crawl")(import_crawl_cmd)
tools_app.command("scrape")(scrape_cmd)
tools_app.command("stats")(stats_cmd)
tools_app.command("search")(search_cmd)
tools_app.command("map")(map_cmd)


@model_app.command("prepare")
def model_prepare(force: Annotated[bool, typer.Option(help="Convert again even if cached.")] = False) -> None:
    """Convert the embedded model's GGUF to a cached checkpoint (done once by the installer)."""
    from agentgym.models import embedded

    try:
        path = embedded.prepare(force=force, log=console.print)
    except embedded.EmbeddedModelMissing as e:
        console.print(f"[red]error:[/] {e}")
        raise typer.Exit(2) from None
    console.print(f"embedded model ready: {path}")


@app.command()
def envs() -> None:
    """List the registered Gymnasium environment ids."""
    import agentgym

    for i in agentgym.env_ids():
        print(i)


if __name__ == "__main__":
    app()
