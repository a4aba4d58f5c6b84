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
from agentgym.scale.specs import EnvSpec, PolicySpec
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
    ps = policy_spec(spec, max_new_tokens, temperature, fmt)
    if not ps.needs_model:
        return ps.factory()
    with console.status(f"loading model {spec}..."):
        t0 = time.perf_counter()
        try:
            make = ps.factory()
        except (ValueError, FileNotFoundError, RuntimeError) as e:
            console.print(f"[red]error:[/] {e}")
            raise typer.Exit(2) from None
    console.print(f"model [bold]{make().name}[/] ready in {time.perf_counter() - t0:.1f}s")
    return make


def policy_spec(spec: str, max_new_tokens: int, temperature: float, fmt: str) -> PolicySpec:
    """The picklable recipe of a policy: what `policy_factory` builds here and Ray workers build there."""
    from agentgym.models import SamplingParams

    sampling = SamplingParams(max_new_tokens=max_new_tokens, temperature=temperature)
    return PolicySpec(model=spec, sampling=sampling, tool_format=fmt)


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
    episode_timeout_s: float | None = None,
) -> list[Trajectory]:
    """Run the jobs (resuming from out/trajectories.jsonl); returns every trajectory of these jobs.
    `make_user` builds each worker's user simulator (default: the task's scripted user)."""

    def engine(path: Path, on_done: Callable[[Trajectory], None]) -> None:
        asyncio.run(
            run_episodes(
                lambda: ToolUseEnv(suite, config=config, user=make_user() if make_user else None),
                make_policy,
                jobs,
                out=path,
                concurrency=concurrency,
                on_done=on_done,
                episode_timeout_s=episode_timeout_s,
            )
        )

    return _play_with_progress(engine, jobs, out, title)


def play_ray(
    env: EnvSpec,
    policy: PolicySpec,
    jobs: Sequence[tuple[str, int]],
    out: Path,
    workers: int,
    concurrency: int,
    address: str | None = None,
    episode_timeout_s: float | None = None,
    title: str = "episodes",
) -> list[Trajectory]:
    """`play` on Ray: `workers` rollout actors, `concurrency` episodes each; same store, same resume."""
    from agentgym.scale.ray_rollout import RolloutError, run_episodes_ray

    console.print(f"starting {workers} Ray rollout worker(s) ({concurrency} episodes in flight each)...")

    def engine(path: Path, on_done: Callable[[Trajectory], None]) -> None:
        try:
            run_episodes_ray(
                env, policy, jobs, out=path, workers=workers, concurrency_per_worker=concurrency,
                episode_timeout_s=episode_timeout_s, address=address, on_done=on_done,
            )  # fmt: skip
        except RolloutError as e:
            console.print(f"[red]error:[/] {e}")
            raise typer.Exit(1) from None

    return _play_with_progress(engine, jobs, out, title)


def _play_with_progress(
    engine: Callable[[Path, Callable[[Trajectory], None]], None],
    jobs: Sequence[tuple[str, int]],
    out: Path,
    title: str,
) -> list[Trajectory]:
    """Run `engine(store, on_done)` under the live bar (pass rate, throughput); read back these jobs."""
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
            engine(path, done)
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
