"""`agentgym`: the command line. Each command is a thin layer over the library.

agentgym demo                 the embedded model on a sample of the starter suite
agentgym run                  any suite, any policy (embedded, oracle, noop, a local model path)
agentgym rollout              n rollouts per task, concurrent and resumable
agentgym bench --model A --model B   pass@1, pass@k, pass^k side by side; HTML report + JSON
agentgym agents make          thousands of distinct agents (prompt + coherent tool subset)
agentgym agents list          the shipped agents
agentgym tasks generate       a suite of gold-blueprint tasks with rubrics, split and validated
agentgym tasks validate       every task (or a sample of all shipped suites): oracle 1.0, do-nothing < 0.5
agentgym tasks filter         pass rates of a policy, k runs per task; tag or drop too easy / too hard
agentgym tasks stats          difficulty, splits, calls, criteria of the shipped suites
agentgym tasks list           the tasks of a suite
agentgym tools list           the tools of a suite's world
agentgym tools import-crawl   real tools from crawl dumps
agentgym tools scrape SPEC    real tools from live MCP servers (npm, PyPI, a command, a URL)
agentgym tools generate       synthetic domains and tools
agentgym tools stats          the repository by source, category, schema complexity
agentgym tools search QUERY   find tools by what they do
agentgym tools map            a 2-D map of real and synthetic tools, as PNG
agentgym sandbox build        the Docker sandbox image (debootstrap + import, cached by recipe)
agentgym sandbox run -- CMD   one command in a fresh locked-down sandbox
agentgym sandbox gc           remove every agentgym sandbox container
agentgym serve model          an OpenAI-compatible server over a model (native tool calls, logprobs)
agentgym serve env            episodes over HTTP (reset/step/close, session ids)
agentgym serve mcp --agent ID an agent's simulated tools as a real MCP server
agentgym sft export FILES     trajectories that met their rubric as OpenAI JSONL, Parquet, ShareGPT, DPO pairs
agentgym model prepare        convert and cache the embedded model
agentgym envs                 the registered Gymnasium ids
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from agentgym.cli.crawl_cmd import import_crawl_cmd
from agentgym.cli.filter_cmd import filter_cmd
from agentgym.cli.generate_cmd import generate_cmd
from agentgym.cli.repo_cmds import map_cmd, search_cmd, stats_cmd
from agentgym.cli.runs import (
    bar_progress,
    console,
    load_suite_or_exit,
    play,
    play_ray,
    policy_factory,
    policy_spec,
    report,
    stratified,
)
from agentgym.cli.sandbox_cmds import sandbox_app
from agentgym.cli.scrape_cmd import scrape_cmd
from agentgym.cli.serve_cmds import serve_app
from agentgym.cli.sft_cmds import sft_app
from agentgym.cli.taskgen_cmds import (
    agents_list_cmd,
    agents_make_cmd,
    shipped_suites,
    tasks_generate_cmd,
    tasks_stats_cmd,
)
from agentgym.cli.train_cmds import train_app

app = typer.Typer(
    help="Turn MCP tools into RL environments for tool-using language models.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
tasks_app = typer.Typer(help="Task suites: generate, validate, filter, list, stats.", no_args_is_help=True)
agents_app = typer.Typer(help="Agents: make and list.", no_args_is_help=True)
tools_app = typer.Typer(help="The tool repository.", no_args_is_help=True)
model_app = typer.Typer(help="Models: prepare the embedded default.", no_args_is_help=True)
app.add_typer(tasks_app, name="tasks")
app.add_typer(agents_app, name="agents")
app.add_typer(sandbox_app, name="sandbox")
app.add_typer(serve_app, name="serve")
app.add_typer(sft_app, name="sft")
app.add_typer(train_app, name="train")
app.add_typer(tools_app, name="tools")
app.add_typer(model_app, name="model")


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

    suite = load_suite_or_exit("starter")
    ids = stratified(suite, n, seed)
    console.print(
        f"[bold]agentgym demo[/]: embedded model on {len(ids)} starter tasks, up to {max_turns} turns each"
    )
    make_policy = policy_factory("embedded", max_new_tokens, 0.0, "hermes")
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
    user_model: Annotated[
        str | None,
        typer.Option(
            help="A model plays the simulated user (persona, hidden facts); default: scripted replies."
        ),
    ] = None,
    user_turns: Annotated[int, typer.Option(help="Most replies of the simulated user per episode.")] = 4,
    timeout: Annotated[
        float | None,
        typer.Option(help="Seconds per episode; one still running is cut and saved as end_reason=timeout."),
    ] = None,
    ray_workers: Annotated[
        int,
        typer.Option(help="Play on this many Ray rollout workers (--concurrency episodes each); 0: here."),
    ] = 0,
    ray_address: Annotated[
        str | None, typer.Option(help="Ray cluster to use with --ray-workers (default: start a local one).")
    ] = None,
) -> None:
    """Play a suite with any policy; trajectories and a summary go to --out."""
    from agentgym.env.tool_env import EnvConfig
    from agentgym.world.faults import FaultConfig

    s = load_suite_or_exit(suite)
    ids = tasks.split(",") if tasks else list(s.tasks)
    unknown = [i for i in ids if i not in s.tasks]
    if unknown:
        console.print(f"[red]error:[/] unknown task ids: {unknown}")
        raise typer.Exit(2)
    if n is not None:
        ids = [i for i in stratified(s, len(s), 0) if i in set(ids)][:n]
    try:
        fc = FaultConfig.model_validate_json(faults) if faults else FaultConfig()
    except ValueError as e:
        console.print(f"[red]error:[/] --faults: {e}")
        raise typer.Exit(2) from None
    if (timeout is not None and timeout <= 0) or ray_workers < 0:
        console.print("[red]error:[/] --timeout must be > 0 and --ray-workers >= 0")
        raise typer.Exit(2)
    from agentgym.models import SamplingParams
    from agentgym.scale.specs import EnvSpec

    config = EnvConfig(max_turns=max_turns, faults=fc)
    env_spec = EnvSpec(
        suite=suite, config=config, user_model=user_model, user_turns=user_turns,
        user_sampling=SamplingParams(max_new_tokens=min(96, max_new_tokens), temperature=temperature),
    )  # fmt: skip
    jobs = [(i, k) for i in ids for k in range(seeds)]
    if ray_workers:  # the workers load the model and the user model themselves
        spec = policy_spec(model, max_new_tokens, temperature, tool_format)
        trajs = play_ray(
            env_spec, spec, jobs, out, workers=ray_workers, concurrency=concurrency, address=ray_address,
            episode_timeout_s=timeout, title=model,
        )  # fmt: skip
        report(trajs, s, out, f"{model} on {s.name}")
        return
    make_policy = policy_factory(model, max_new_tokens, temperature, tool_format)
    make_user = None
    if user_model:
        with console.status(f"loading user model {user_model}..."):
            try:
                make_user = env_spec.user_factory()
            except (ValueError, FileNotFoundError, RuntimeError) as e:
                console.print(f"[red]error:[/] --user-model: {e}")
                raise typer.Exit(2) from None
    trajs = play(
        s,
        make_policy,
        jobs,
        out,
        config,
        concurrency=concurrency,
        title=model,
        make_user=make_user,
        episode_timeout_s=timeout,
    )
    report(trajs, s, out, f"{model} on {s.name}")


@app.command()
def rollout(
    suite: Annotated[str, typer.Option(help="Suite name (folder of tasks/) or path.")] = "starter",
    model: Annotated[
        str, typer.Option(help="embedded | oracle | noop | hf:<path> | openai:<url>#<model>.")
    ] = "embedded",
    n: Annotated[int, typer.Option(help="Rollouts per task (seeds 0..n-1).")] = 1,
    split: Annotated[str | None, typer.Option(help="Only tasks of this split (train or test).")] = None,
    sample: Annotated[int | None, typer.Option(help="Only this many tasks (stratified).")] = None,
    concurrency: Annotated[
        int, typer.Option(help="Episodes in flight (per worker with --ray-workers).")
    ] = 16,
    out: Annotated[Path, typer.Option(help="Output folder (resumes if it holds trajectories).")] = Path(
        "runs/rollout"
    ),
    max_turns: Annotated[int | None, typer.Option(help="Override the tasks' turn limit.")] = None,
    max_new_tokens: Annotated[int, typer.Option()] = 256,
    temperature: Annotated[float, typer.Option(help="Sampling temperature (rollouts differ above 0).")] = 1.0,
    user_model: Annotated[str | None, typer.Option(help="A model plays the simulated user.")] = None,
    timeout: Annotated[
        float | None,
        typer.Option(help="Seconds per episode; one still running is cut and saved as end_reason=timeout."),
    ] = None,
    ray_workers: Annotated[
        int, typer.Option(help="Roll out on this many Ray workers (actors), --concurrency episodes each.")
    ] = 0,
    ray_address: Annotated[
        str | None, typer.Option(help="Ray cluster for --ray-workers (default: start a local instance).")
    ] = None,
) -> None:
    """Roll out a policy over a suite: n episodes per task, concurrent, resumable (a crash loses nothing finished)."""
    if n < 1:
        console.print("[red]error:[/] --n must be at least 1")
        raise typer.Exit(2)
    s = load_suite_or_exit(suite)
    ids = [t.id for t in s if split is None or t.split == split]
    if not ids:
        console.print(f"[red]error:[/] no tasks of split {split!r} in suite {s.name!r}")
        raise typer.Exit(2)
    run(
        suite=suite, model=model, tasks=",".join(ids), n=sample, seeds=n, out=out, max_turns=max_turns,
        max_new_tokens=max_new_tokens, temperature=temperature, tool_format="hermes", faults=None,
        concurrency=concurrency, user_model=user_model, user_turns=4, timeout=timeout,
        ray_workers=ray_workers, ray_address=ray_address,
    )  # fmt: skip


@app.command("bench")
def bench_cmd(
    model: Annotated[list[str], typer.Option("--model", help="A model to compare (repeat for several).")],
    suite: Annotated[str, typer.Option(help="Suite name or path.")] = "starter",
    k: Annotated[int, typer.Option(help="Episodes per task (pass@k, pass^k up to k).")] = 4,
    sample: Annotated[int | None, typer.Option(help="Only this many tasks (stratified).")] = None,
    split: Annotated[str | None, typer.Option(help="Only tasks of this split.")] = None,
    out: Annotated[Path, typer.Option(help="Output folder (resumes per model).")] = Path("runs/bench"),
    max_turns: Annotated[int | None, typer.Option(help="Override the tasks' turn limit.")] = None,
    max_new_tokens: Annotated[int, typer.Option()] = 256,
    temperature: Annotated[float, typer.Option(help="Sampling temperature (k tries differ above 0).")] = 0.7,
    concurrency: Annotated[int, typer.Option(help="Episodes in flight.")] = 1,
    price_per_mtok: Annotated[
        float, typer.Option(help="Cost per million generated tokens, for the cost column.")
    ] = 0.0,
) -> None:
    """Benchmark models side by side: pass@1, pass@k, pass^k by difficulty and category; HTML report + JSON."""
    import re

    from agentgym.benchmark import summarize, write_report
    from agentgym.env.tool_env import EnvConfig

    if k < 1:
        console.print("[red]error:[/] --k must be at least 1")
        raise typer.Exit(2)
    s = load_suite_or_exit(suite)
    ids = [t.id for t in s if split is None or t.split == split]
    if sample is not None:
        keep = set(ids)
        ids = [i for i in stratified(s, len(s), 0) if i in keep][:sample]
    if not ids:
        console.print("[red]error:[/] no tasks selected")
        raise typer.Exit(2)
    summaries = []
    for spec in model:
        make_policy = policy_factory(spec, max_new_tokens, temperature, "hermes")
        slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", spec)[:60]
        trajs = play(s, make_policy, [(i, j) for i in ids for j in range(k)], out / slug,
                     EnvConfig(max_turns=max_turns), concurrency=concurrency, title=spec)  # fmt: skip
        summaries.append(summarize(trajs, s, k, spec, price_per_mtok))
    summary, html_path = write_report(summaries, out, f"agentgym bench: {s.name}, {len(ids)} tasks x {k}")
    table = Table(title=f"{s.name}: {len(ids)} tasks x {k} episodes")
    for col in ("model", "pass@1", f"pass@{k}", f"pass^{k}", "tokens/ep", "latency s/ep"):
        table.add_column(col)
    for r in summaries:
        o = r["overall"]
        table.add_row(r["model"], f"{o['pass@1']:.3f}", f"{o.get(f'pass@{k}', o['pass@1']):.3f}",
                      f"{o.get(f'pass^{k}', o['pass@1']):.3f}", f"{r['tokens_per_episode']:.0f}",
                      f"{r['latency_s_per_episode']:.2f}")  # fmt: skip
    console.print(table)
    console.print(f"report: {html_path}   summary: {summary}")


@tasks_app.command("validate")
def tasks_validate(
    suite: Annotated[
        str | None, typer.Option(help="Suite name or path (default: starter, or all with --sample).")
    ] = None,
    sample: Annotated[
        int | None, typer.Option(help="Validate a random sample of N tasks of the shipped suites.")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the sample.")] = 0,
    faults: Annotated[bool, typer.Option(help="Also replay the oracle under injected faults.")] = False,
) -> None:
    """Check every task: oracle scores 1.0, do-nothing < 0.5, rubric uses only the agent's tools."""
    from agentgym.suites.validate import validate_suite
    from agentgym.world.faults import FaultConfig, FaultRates

    names = [suite] if suite else (shipped_suites() if sample else ["starter"])
    suites = [load_suite_or_exit(n) for n in names]
    jobs = [(s, t.id) for s in suites for t in s]
    if sample is not None:
        if sample < 1:
            console.print("[red]error:[/] --sample must be at least 1")
            raise typer.Exit(2)
        jobs = random.Random(seed).sample(jobs, min(sample, len(jobs)))
    fc = (
        FaultConfig(default=FaultRates(timeout=0.1, rate_limited=0.05, server_error=0.05, partial_result=0.2))
        if faults
        else None
    )
    checks, bad = [], []
    with bar_progress() as bar:
        task = bar.add_task("validating", total=len(jobs))

        def prog(c):
            bar.advance(task)
            if not c.ok:
                bad.append(c)

        for s in suites:
            ids = [tid for js, tid in jobs if js is s]
            if ids:
                checks += validate_suite(s, ids, faults=fc, progress=prog)
    if len(checks) <= 100 or bad:
        table = Table(title=f"{len(checks)} tasks of {', '.join(s.name for s in suites)}")
        for col in ("task", "oracle", "do-nothing", "status"):
            table.add_column(col)
        for c in checks if len(checks) <= 100 else bad:
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
    noop = max((c.noop for c in checks), default=0.0)
    console.print(
        f"[green]all {len(checks)} tasks valid[/]: oracle 1.0, do-nothing < 0.5 (highest {noop:.2f})"
    )


@tasks_app.command("list")
def tasks_list(
    suite: Annotated[str, typer.Option()] = "starter",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List a suite's tasks."""
    s = load_suite_or_exit(suite)
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
    s = load_suite_or_exit(suite)
    table = Table(title=f"{len(s.world.tools)} tools")
    for col in ("name", "operation", "collection", "description"):
        table.add_column(col)
    for t in s.world.tools.values():
        sem = t.semantics
        table.add_row(
            t.name, sem.operation if sem else "-", sem.collection if sem else "-", t.description[:60]
        )
    console.print(table)


tasks_app.command("filter")(filter_cmd)
tasks_app.command("generate")(tasks_generate_cmd)
tasks_app.command("stats")(tasks_stats_cmd)
agents_app.command("make")(agents_make_cmd)
agents_app.command("list")(agents_list_cmd)
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
