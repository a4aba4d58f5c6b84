"""`agentgym tasks filter`: rate every task of a suite by k rollouts, write the filtered suite.

Plays each task (or a stratified `--sample`) k times with a policy (`--model`: whatever
`agentgym run` accepts; sampling at `--temperature`, 1.0 by default, so the k runs differ) through
`agentgym.suites.filter.pass_rates`, with a progress bar showing the live pass rate. Writes
`DIR/rollouts.jsonl` (every episode, fsynced; running the same command again resumes and says so),
`DIR/settings.json` (what the rollouts were sampled with: resuming under other settings is refused,
since the episode keys cannot tell them apart) and `DIR/suite/` (the filtered suite, loadable like
any other, with `pass_rates.jsonl` and `FILTER.md`), then prints the verdict counts per
difficulty. Exit 2 on bad input (unknown suite, k < 1, min-rate >= max-rate, a model that does not
load), 1 when `--action drop` keeps no task (no suite is written then), 130 when interrupted.
"""

from __future__ import annotations

import asyncio
import json
import shlex
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from rich.table import Table

from agentgym.cli.runs import bar_progress, console, load_suite_or_exit, policy_factory, stratified
from agentgym.env.tool_env import EnvConfig
from agentgym.runner import episode_key, finished_keys
from agentgym.spec.trajectory import Trajectory
from agentgym.suites.filter import (
    VERDICTS,
    FilterConfig,
    FilterReport,
    apply_filter,
    pass_rates,
    write_filtered,
)
from agentgym.suites.suite import SuiteError


def _fail(msg: str) -> typer.Exit:
    console.print(f"[red]error:[/] {msg}")
    return typer.Exit(2)


def _check_settings(out: Path, settings: dict[str, Any]) -> None:
    """Refuse to resume rollouts sampled under other settings; record the settings otherwise."""
    path = out / "settings.json"
    if (out / "rollouts.jsonl").exists() and path.exists():
        old = json.loads(path.read_text())
        changed = {k: (old.get(k), v) for k, v in settings.items() if old.get(k) != v}
        if changed:
            said = ", ".join(f"{k} {a!r} -> {b!r}" for k, (a, b) in changed.items())
            raise _fail(f"{out} holds rollouts made with other settings ({said}); use another --out")
    out.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(settings, indent=2) + "\n")


def filter_cmd(
    model: Annotated[str, typer.Option(help="embedded | oracle | noop | hf:<path> | <path>.")],
    out: Annotated[Path, typer.Option(help="Output folder (resumes if it holds rollouts).")],
    suite: Annotated[str, typer.Option(help="Suite name (folder of tasks/) or path.")] = "starter",
    k: Annotated[int, typer.Option(help="Episodes per task (seeds seed..seed+k-1).")] = 8,
    min_rate: Annotated[float, typer.Option(help="Rate at or below which a task is too hard.")] = 0.0,
    max_rate: Annotated[float, typer.Option(help="Rate at or above which a task is too easy.")] = 1.0,
    action: Annotated[
        str, typer.Option(help="tag (keep all, tag the verdict) | drop (keep learnable).")
    ] = "tag",
    temperature: Annotated[
        float, typer.Option(help="Sampling temperature (> 0 so the k runs differ).")
    ] = 1.0,
    max_new_tokens: Annotated[int, typer.Option(help="Tokens per assistant turn.")] = 256,
    max_turns: Annotated[int | None, typer.Option(help="Override the tasks' turn limit.")] = None,
    concurrency: Annotated[int, typer.Option(help="Episodes in flight.")] = 1,
    sample: Annotated[int | None, typer.Option(help="Rate only this many tasks (stratified sample).")] = None,
    seed: Annotated[int, typer.Option(help="First episode seed.")] = 0,
) -> None:
    """Rate each task by k rollouts of a policy; tag or drop the never- and always-solved ones."""
    options = dict(locals())  # the parameters, for the command line FILTER.md records

    if k < 1:
        raise _fail(f"--k must be at least 1, got {k}")
    if sample is not None and sample < 1:
        raise _fail(f"--sample must be at least 1, got {sample}")
    try:
        config = FilterConfig(min_rate=min_rate, max_rate=max_rate, action=action)  # type: ignore[arg-type]
    except ValidationError as e:
        raise _fail(
            "; ".join(
                "".join(f"--{str(x).replace('_', '-')}: " for x in err["loc"])
                + err["msg"].removeprefix("Value error, ")
                for err in e.errors()
            )
        ) from None
    s = load_suite_or_exit(suite)
    ids = stratified(s, sample, 0) if sample is not None else list(s.tasks)
    _check_settings(
        out,
        {
            "suite": s.name,
            "model": model,
            "temperature": temperature,
            "max_new_tokens": max_new_tokens,
            "max_turns": max_turns,
        },
    )
    make_policy = policy_factory(model, max_new_tokens, temperature, "hermes")
    rollouts = out / "rollouts.jsonl"
    policy = make_policy().name
    jobs = [episode_key(i, sd, policy) for i in ids for sd in range(seed, seed + k)]
    done = len(set(jobs) & finished_keys(rollouts))
    if done:
        console.print(f"resuming: {done} of {len(jobs)} episodes already in {rollouts}")
    console.print(f"[bold]{policy}[/]: {len(ids)} tasks of {s.name} x {k} episodes")

    with bar_progress() as progress:
        seen = {"n": 0, "ok": 0}
        bar = progress.add_task(f"{policy} pass -", total=len(jobs), completed=done)

        def on_done(t: Trajectory) -> None:
            seen["n"] += 1
            seen["ok"] += int(bool(t.rubric and t.rubric.passed))
            rate = f"{seen['ok']}/{seen['n']}"
            progress.update(bar, advance=1, description=f"{policy} pass {rate}")

        try:
            rates = asyncio.run(
                pass_rates(
                    s,
                    make_policy,
                    k=k,
                    task_ids=ids,
                    out=rollouts,
                    concurrency=concurrency,
                    seed=seed,
                    env_config=EnvConfig(max_turns=max_turns),
                    on_done=on_done,
                )
            )
        except KeyboardInterrupt:
            progress.stop()
            console.print(
                f"[yellow]interrupted[/]: finished episodes are saved in {rollouts}; "
                "run the same command again to resume."
            )
            raise SystemExit(130) from None

    report = apply_filter(s, rates, config)
    _print_counts(report, f"{s.name}: {len(ids)} tasks, {policy}, k={k}")
    try:
        path = write_filtered(report, suite, out / "suite", command=_command(options))
    except SuiteError as e:
        console.print(f"[yellow]{e}[/]")
        raise typer.Exit(1) from None
    console.print(f"filtered suite ({len(report.kept)} tasks): {path}   rollouts: {rollouts}")


def _command(options: dict[str, Any]) -> str:
    """The command line that remakes this run (every option spelled out)."""
    words = ["agentgym", "tasks", "filter"]
    for name, value in options.items():
        if value is not None:
            words += [f"--{name.replace('_', '-')}", str(value)]
    return shlex.join(words)


def _print_counts(report: FilterReport, title: str) -> None:
    table = Table(title=title)
    for col in ("difficulty", *VERDICTS, "total"):
        table.add_column(col, justify="left" if col == "difficulty" else "right")
    for diff, counts in [*report.by_difficulty.items(), ("all", report.counts)]:
        table.add_row(diff, *(str(counts[v]) for v in VERDICTS), str(sum(counts.values())))
    console.print(table)
