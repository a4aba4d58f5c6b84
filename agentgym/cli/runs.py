"""Shared machinery of the CLI commands: load a suite or exit, make policies from a model spec, sample
tasks stratified by domain, play jobs with a live progress bar, save
trajectories incrementally (resumable), print a results table and write a summary.
"""

from __future__ import annotations

import asyncio
import json
import random
import statistics
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from agentgym.env.tool_env import EnvConfig, ToolUseEnv
from agentgym.policies.base import Policy
from agentgym.runner import run_episodes
from agentgym.spec.jsonl import read_jsonl
from agentgym.spec.trajectory import Trajectory
from agentgym.suites.suite import TaskSuite

console = Console()


def bar_progress(out: Console | None = None, transient: bool = False) -> Progress:
    """The progress bar of long commands: label, bar, done/total, elapsed."""
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=out or console,
        transient=transient,
    )


def load_suite_or_exit(name: str) -> TaskSuite:
    """The suite a name or path names, or a clear error and exit 2."""
    from agentgym.suites import SuiteError, load_suite

    try:
        return load_suite(name)
    except SuiteError as e:
        console.print(f"[red]error:[/] {e}")
        raise typer.Exit(2) from None


def policy_factory(spec: str, max_new_tokens: int, temperature: float, fmt: str) -> Callable[[], Policy]:
    """A maker of fresh policies for `spec` (oracle, noop, or a model loaded once), or exit 2."""
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


def stratified(suite: TaskSuite, n: int, seed: int) -> list[str]:
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


def play(
    suite: TaskSuite,
    make_policy: Callable[[], Policy],
    jobs: Sequence[tuple[str, int]],
    out: Path,
    config: EnvConfig,
    concurrency: int = 1,
    title: str = "episodes",
    make_user: Callable[[], Any] | None = None,
) -> list[Trajectory]:
    """Run the jobs (resuming from out/trajectories.jsonl); returns every trajectory of these jobs.
    `make_user` builds each worker's user simulator (default: the task's scripted user)."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / "trajectories.jsonl"
    passed = Counter()
    with Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("pass {task.fields[rate]}"),
        TimeElapsedColumn(),
        console=console,
    ) as progress:
        bar = progress.add_task(title, total=len(jobs), rate="-")

        def done(t: Trajectory) -> None:
            passed["n"] += 1
            passed["ok"] += int(bool(t.rubric and t.rubric.passed))
            progress.update(bar, advance=1, rate=f"{passed['ok']}/{passed['n']}")

        try:
            asyncio.run(
                run_episodes(
                    lambda: ToolUseEnv(suite, config=config, user=make_user() if make_user else None),
                    make_policy,
                    jobs,
                    out=path,
                    concurrency=concurrency,
                    on_done=done,
                )
            )
        except KeyboardInterrupt:
            progress.stop()
            console.print(
                f"[yellow]interrupted[/]: finished episodes are saved in {path}; "
                "run the same command again to resume."
            )
            raise SystemExit(130) from None
    wanted = {f"{t}/{s}" for t, s in jobs}
    return [t for t in read_jsonl(path, Trajectory) if _job(t) in wanted]


def _job(t: Trajectory) -> str:
    task, seed, _ = t.id.rsplit("/", 2)
    return f"{task}/{seed}"


def summarize(trajs: Sequence[Trajectory], suite: TaskSuite) -> dict[str, Any]:
    by_diff: dict[str, list[float]] = defaultdict(list)
    errors: Counter[str] = Counter()
    tokens = gen_s = 0.0
    for t in trajs:
        by_diff[suite.tasks[t.task_id].difficulty].append(t.reward)
        tokens += t.metrics.get("tokens", 0)
        gen_s += t.timings.get("gen_s", 0)
        for k, v in t.metrics.items():
            if k.startswith("errors."):
                errors[k[7:]] += int(v)
    rewards = [t.reward for t in trajs]
    return {
        "episodes": len(trajs),
        "mean_reward": statistics.fmean(rewards) if rewards else 0.0,
        "pass_rate": sum(bool(t.rubric and t.rubric.passed) for t in trajs) / max(1, len(trajs)),
        "by_difficulty": {
            k: {"n": len(v), "mean_reward": statistics.fmean(v)} for k, v in sorted(by_diff.items())
        },
        "tool_calls": int(sum(t.metrics.get("tool_calls", 0) for t in trajs)),
        "errors": dict(errors),
        "tokens": int(tokens),
        "generation_s": round(gen_s, 2),
        "tokens_per_s": round(tokens / gen_s, 2) if gen_s else None,
    }


def report(trajs: Sequence[Trajectory], suite: TaskSuite, out: Path, title: str) -> dict[str, Any]:
    table = Table(title=title)
    for col in ("task", "difficulty", "turns", "calls", "errors", "end", "score", "pass"):
        table.add_column(
            col, justify="right" if col in ("turns", "calls", "errors", "score") else "left", overflow="fold"
        )
    for t in sorted(trajs, key=lambda t: t.id):
        ok = bool(t.rubric and t.rubric.passed)
        table.add_row(
            t.task_id,
            suite.tasks[t.task_id].difficulty,
            str(len(t.turns)),
            str(int(t.metrics.get("tool_calls", 0))),
            str(int(t.metrics.get("errors", 0))),
            t.end_reason,
            f"{t.reward:.2f}",
            "[green]yes[/]" if ok else "[red]no[/]",
        )
    console.print(table)
    summary = summarize(trajs, suite)
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    console.print(
        f"mean score [bold]{summary['mean_reward']:.3f}[/], pass rate [bold]{summary['pass_rate']:.0%}[/] "
        f"over {summary['episodes']} episodes; {summary['tool_calls']} tool calls, errors {summary['errors'] or 0}; "
        f"{summary['tokens']} tokens"
        + (f" at {summary['tokens_per_s']} tok/s" if summary["tokens_per_s"] else "")
    )
    console.print(f"trajectories: {out / 'trajectories.jsonl'}   summary: {out / 'summary.json'}")
    return summary
