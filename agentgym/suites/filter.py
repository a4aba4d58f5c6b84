"""Difficulty filtering of a task suite: pass rates over k rollouts, then drop or tag the extremes.

As RL data is filtered for GRPO-style training (Magistral, Phi-4 reasoning): a task the policy never
solves and a task it always solves give every rollout the same reward, hence zero advantage and no
learning signal. `pass_rates` plays each task k times (seeds seed..seed+k-1; the policy should
sample with temperature > 0 so the k runs differ) through `run_episodes`, so the trajectories are
appended to a JSONL file and a rerun resumes: finished episodes are never played again, and the
rates come from the file's trajectories of these jobs plus the new ones. Episodes are keyed
`task/seed/policy` by the runner, so a rerun with other sampling settings under the same policy
name would reuse the old episodes; keep one file per setting. `apply_filter` is pure: it gives each
rated task a verdict (`too_hard` when rate <= min_rate, `too_easy` when rate >= max_rate, else
`learnable`) and keeps all of them tagged, or only the learnable ones. Tasks without a rate are not
in the report (a filtered sample is a sample). `write_filtered` writes the result as a new suite
folder, over the same world and agents file as the source, that `load_suite_dir` loads; it never
writes a suite without tasks.
"""

from __future__ import annotations

import shutil
import statistics
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, model_validator

from agentgym.env.tool_env import EnvConfig, ToolUseEnv
from agentgym.paths import tasks_dir
from agentgym.policies.base import Policy
from agentgym.runner import run_episodes
from agentgym.spec.base import Record
from agentgym.spec.jsonl import read_jsonl, write_jsonl
from agentgym.spec.task import TaskSpec
from agentgym.spec.trajectory import Trajectory
from agentgym.suites.suite import SuiteError, TaskSuite
from agentgym.yamlfile import load_yaml

Verdict = Literal["too_hard", "learnable", "too_easy"]
VERDICTS: tuple[Verdict, ...] = ("too_hard", "learnable", "too_easy")
"""Every verdict, easiest last; also the tags `action="tag"` appends."""


class PassRate(Record):
    """How often one policy solved one task over k episodes."""

    task_id: str
    """The task played."""
    policy: str
    """The policy that played it (its name, as in the trajectories)."""
    k: int = Field(ge=1)
    """Episodes played."""
    passes: int = Field(ge=0)
    """Episodes whose rubric passed."""
    mean_score: float
    """Mean reward (rubric score) over the k episodes."""
    rate: float = Field(ge=0, le=1)
    """passes / k."""

    @model_validator(mode="after")
    def _consistent(self) -> PassRate:
        if self.passes > self.k or abs(self.rate - self.passes / self.k) > 1e-9:
            raise ValueError(f"inconsistent pass rate: {self.passes} of {self.k} is not {self.rate}")
        return self

    @classmethod
    def of(cls, trajs: Sequence[Trajectory]) -> PassRate:
        """The pass rate of one task's episodes (one policy)."""
        passes = sum(bool(t.rubric and t.rubric.passed) for t in trajs)
        return cls(
            task_id=trajs[0].task_id,
            policy=trajs[0].policy,
            k=len(trajs),
            passes=passes,
            mean_score=statistics.fmean(t.reward for t in trajs),
            rate=passes / len(trajs),
        )


def rates_from_trajectories(trajs: Iterable[Trajectory]) -> dict[str, PassRate]:
    """Pass rate per task; an episode id seen twice counts once. Refuses mixed policies."""
    by_task: dict[str, dict[str, Trajectory]] = {}
    policies = set()
    for t in trajs:
        by_task.setdefault(t.task_id, {})[t.id] = t
        policies.add(t.policy)
    if len(policies) > 1:
        raise ValueError(f"trajectories of several policies: {sorted(policies)}")
    return {task: PassRate.of(list(eps.values())) for task, eps in by_task.items()}


async def pass_rates(
    suite: TaskSuite,
    make_policy: Callable[[], Policy],
    *,
    k: int,
    task_ids: Sequence[str] | None = None,
    out: str | Path | None = None,
    concurrency: int = 4,
    seed: int = 0,
    env_config: EnvConfig | None = None,
    on_done: Callable[[Trajectory], Any] | None = None,
) -> dict[str, PassRate]:
    """Play every task (default: all of the suite) k times and rate it; see module doc."""
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    ids = list(dict.fromkeys(task_ids if task_ids is not None else suite.tasks))
    unknown = [i for i in ids if i not in suite.tasks]
    if unknown:
        raise ValueError(f"no such tasks in suite {suite.name!r}: {unknown}")
    seeds = range(seed, seed + k)
    jobs = [(i, s) for i in ids for s in seeds]
    new = await run_episodes(
        lambda: ToolUseEnv(suite, task_ids=ids, config=env_config),
        make_policy,
        jobs,
        out=out,
        concurrency=concurrency,
        on_done=on_done,
    )
    policy = make_policy().name
    wanted = {f"{i}/{s}/{policy}" for i, s in jobs}
    trajs = read_jsonl(out, Trajectory) if out is not None else new  # the file holds the new ones too
    rates = rates_from_trajectories(t for t in trajs if t.id in wanted)
    return {i: rates[i] for i in ids}  # every job has finished: each task has its k episodes


class FilterConfig(Record):
    """Which pass rates make a task too hard or too easy, and what happens to those tasks."""

    min_rate: float = Field(default=0.0, ge=0, le=1)
    """A task with rate <= min_rate is too hard (the default 0.0: never solved)."""
    max_rate: float = Field(default=1.0, ge=0, le=1)
    """A task with rate >= max_rate is too easy (the default 1.0: always solved)."""
    action: Literal["tag", "drop"] = "tag"
    """tag: keep every task, its verdict appended to its tags; drop: keep only learnable tasks."""

    @model_validator(mode="after")
    def _ordered(self) -> FilterConfig:
        if self.min_rate >= self.max_rate:
            raise ValueError(f"min_rate ({self.min_rate}) must be below max_rate ({self.max_rate})")
        return self


def verdict(rate: float, config: FilterConfig) -> Verdict:
    """too_hard at or below min_rate, too_easy at or above max_rate, learnable between."""
    if rate <= config.min_rate:
        return "too_hard"
    if rate >= config.max_rate:
        return "too_easy"
    return "learnable"


def _tag(task: TaskSpec, v: Verdict) -> TaskSpec | None:
    # a task filtered before loses its old verdict, so filtering a filtered suite re-tags cleanly
    tags = tuple(t for t in task.tags if t not in VERDICTS)
    return task.model_copy(update={"tags": (*tags, v)})


def _drop(task: TaskSpec, v: Verdict) -> TaskSpec | None:
    return task if v == "learnable" else None


ACTIONS: dict[str, Callable[[TaskSpec, Verdict], TaskSpec | None]] = {"tag": _tag, "drop": _drop}
"""What each `FilterConfig.action` does to a task given its verdict (None: the task is dropped)."""


class FilterReport(Record):
    """The outcome of filtering a suite."""

    suite: str
    """Name of the source suite."""
    config: FilterConfig
    """The thresholds and action applied."""
    rates: tuple[PassRate, ...]
    """The pass rate of every rated task, in suite order."""
    verdicts: dict[str, Verdict]
    """Verdict per rated task."""
    kept: tuple[TaskSpec, ...]
    """The tasks of the filtered suite (tagged when the action is tag)."""
    counts: dict[Verdict, int]
    """Rated tasks per verdict (every verdict present)."""
    by_difficulty: dict[str, dict[Verdict, int]]
    """Rated tasks per difficulty, then per verdict."""


def apply_filter(suite: TaskSuite, rates: Mapping[str, PassRate], config: FilterConfig) -> FilterReport:
    unknown = sorted(set(rates) - set(suite.tasks))
    if unknown:
        raise ValueError(f"pass rates for tasks not in suite {suite.name!r}: {unknown}")
    act = ACTIONS[config.action]
    rated = [t for t in suite if t.id in rates]
    verdicts = {t.id: verdict(rates[t.id].rate, config) for t in rated}
    kept = tuple(k for k in (act(t, verdicts[t.id]) for t in rated) if k is not None)
    counts: dict[Verdict, int] = dict.fromkeys(VERDICTS, 0)
    by_difficulty: dict[str, dict[Verdict, int]] = {}
    for t in rated:
        counts[verdicts[t.id]] += 1
        by_difficulty.setdefault(t.difficulty, dict.fromkeys(VERDICTS, 0))[verdicts[t.id]] += 1
    return FilterReport(
        suite=suite.name,
        config=config,
        rates=tuple(rates[t.id] for t in rated),
        verdicts=verdicts,
        kept=kept,
        counts=counts,
        by_difficulty=dict(sorted(by_difficulty.items())),
    )


def suite_dir(name_or_path: str | Path) -> Path:
    """The folder of a suite, found as `load_suite` finds it (a path, else a folder of `tasks/`)."""
    p = Path(name_or_path)
    if not p.exists():
        p = tasks_dir() / name_or_path
    if not (p / "suite.yaml").exists():
        raise SuiteError(f"no suite {str(name_or_path)!r} (no suite.yaml in {p})")
    return p


def write_filtered(
    report: FilterReport,
    source: str | Path,
    out_dir: str | Path,
    *,
    name: str | None = None,
    command: str | None = None,
) -> Path:
    """Write the filtered suite to `out_dir` and return it; `source` is the source suite's name or path.

    Writes `suite.yaml` (the source's `world` or `domains` entry copied verbatim), the source's
    agents file (copied, same name), `tasks.jsonl` (the kept tasks), `pass_rates.jsonl` (every rated task) and
    `FILTER.md` (what was done; `command`, when given, as the way to remake it).
    """
    src = suite_dir(source)
    meta = load_yaml((src / "suite.yaml").read_text(encoding="utf-8")) or {}
    if meta.get("name", src.name) != report.suite:
        raise SuiteError(f"{src} is suite {meta.get('name', src.name)!r}, the report is of {report.suite!r}")
    if not report.kept:
        raise SuiteError(f"no task of suite {report.suite!r} was kept: nothing to write to {out_dir}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    name = name or f"{report.suite}-filtered"
    manifest: dict[str, Any] = {"name": name}
    for key in ("world", "domains"):  # a folder world, or the repository domains of a generated suite
        if key in meta:
            manifest[key] = meta[key]
    agents_file = Path(meta.get("agents", "agents.yaml")).name  # keeps its format (.yaml or .jsonl)
    manifest |= {"agents": agents_file, "tasks": ["tasks.jsonl"]}
    (out / "suite.yaml").write_text(
        f"# Suite {report.suite!r} filtered by pass rate (see FILTER.md).\n"
        + yaml.safe_dump(manifest, sort_keys=False, allow_unicode=True),
        encoding="utf-8",
    )
    shutil.copyfile(src / meta.get("agents", "agents.yaml"), out / agents_file)
    write_jsonl(out / "tasks.jsonl", report.kept)
    write_jsonl(out / "pass_rates.jsonl", report.rates)
    (out / "FILTER.md").write_text(filter_markdown(report, name, command), encoding="utf-8")
    return out


def filter_markdown(report: FilterReport, name: str, command: str | None = None) -> str:
    """FILTER.md: the thresholds, verdict counts per difficulty, and every task's rate."""
    c = report.config
    policies = sorted({r.policy for r in report.rates})
    ks = sorted({r.k for r in report.rates})
    lines = [
        f"# Suite `{name}`: `{report.suite}` filtered by pass rate",
        "",
        f"{len(report.rates)} tasks played by `{', '.join(policies)}`, k = {', '.join(map(str, ks))} "
        f"episodes each. Verdicts: rate <= {c.min_rate:g} too_hard, rate >= {c.max_rate:g} too_easy, "
        f"else learnable. Action: {c.action} "
        + (
            "(every task kept, its verdict appended to its tags)."
            if c.action == "tag"
            else "(only learnable tasks kept)."
        )
        + f" {len(report.kept)} tasks in this suite.",
        "",
    ]
    if command:
        lines += [f"Remake with `{command}`.", ""]
    lines += ["| difficulty | " + " | ".join(VERDICTS) + " | total |", "|---" * (len(VERDICTS) + 2) + "|"]
    for diff, counts in [*report.by_difficulty.items(), ("all", report.counts)]:
        cells = [str(counts[v]) for v in VERDICTS]
        lines.append(f"| {diff} | " + " | ".join(cells) + f" | {sum(counts.values())} |")
    kept_ids = {t.id for t in report.kept}
    lines += ["", "| task | passes | rate | mean score | verdict | kept |", "|---|---:|---:|---:|---|---|"]
    for r in report.rates:
        kept = "yes" if r.task_id in kept_ids else "no"
        lines.append(
            f"| {r.task_id} | {r.passes}/{r.k} | {r.rate:.2f} | {r.mean_score:.3f} "
            f"| {report.verdicts[r.task_id]} | {kept} |"
        )
    return "\n".join(lines) + "\n"
