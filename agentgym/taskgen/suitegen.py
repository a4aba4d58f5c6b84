"""Build a task suite end to end: agents, tasks, splits, decontamination, validation, files.

`build_suite(config)` makes `config.agents` agents from the repository (`agents.make`), draws
`config.per_agent` tasks for each (`taskgen.generate`), splits them with held-out domains and
drops train near-duplicates of test requests (`taskgen.split`), then validates every task through
the real environment — oracle (gold replay) 1.0, do-nothing below 0.5, rubric tools held by the
agent — and keeps only the valid ones (the rest are counted by reason, never shipped).
`write_suite(report, out_dir)` writes a loadable suite folder: `suite.yaml` (the repository
domains its world is made of), `agents.jsonl`, `tasks.jsonl.gz`, `stats.json`, `STATS.md`.
Phases report to an optional `progress(phase, done, total)` callback.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from pydantic import Field

from agentgym.agents.catalog import Catalog
from agentgym.agents.make import AgentBatch, make_agents
from agentgym.models.base import ChatModel
from agentgym.repository.store import ToolRepository
from agentgym.spec.agent import AgentSpec
from agentgym.spec.base import Record
from agentgym.spec.jsonl import write_jsonl
from agentgym.spec.task import TaskSpec
from agentgym.suites.suite import TaskSuite
from agentgym.suites.validate import validate_suite
from agentgym.taskgen.generate import GenConfig, generate
from agentgym.taskgen.split import assign_splits, decontaminate
from agentgym.taskgen.stats import stats_markdown, task_stats

Progress = Callable[[str, int, int], None]


class SuiteConfig(Record):
    """What to build."""

    name: str = "agentic"
    """Suite name (its folder in tasks/)."""
    agents: int = Field(default=300, ge=1)
    """Agents to make (all are shipped; tasks go to every one that supports some)."""
    per_agent: int = Field(default=8, ge=1)
    """Tasks drawn per agent."""
    seed: int = 0
    """Everything is deterministic in it."""
    heldout_frac: float = Field(default=0.1, ge=0, lt=1)
    """Share of domains whose agents' tasks are all test."""
    test_frac: float = Field(default=0.1, ge=0, lt=1)
    """Share of the other agents whose tasks are test (in-domain test)."""
    dedup_threshold: float = Field(default=0.8, gt=0, le=1)
    """Trigram Jaccard at which a train request counts as a near copy of a test one."""
    drop_idle_agents: bool = False
    """Ship only agents that got tasks (a suite of one blueprint family leaves many idle)."""
    validate_tasks: bool = True
    """Run oracle and do-nothing on every task and keep only valid ones."""
    generation: GenConfig = Field(default_factory=GenConfig)
    """How tasks are drawn."""


@dataclass(slots=True)
class BuildReport:
    config: SuiteConfig
    agents: list[AgentSpec]
    tasks: list[TaskSpec]
    domains: list[str]
    batch: AgentBatch
    timings: dict[str, float] = field(default_factory=dict)
    counts: dict[str, Any] = field(default_factory=dict)
    invalid: Counter[str] = field(default_factory=Counter)
    heldout: set[str] = field(default_factory=set)


def build_suite(
    config: SuiteConfig,
    *,
    repo: ToolRepository | None = None,
    paraphraser: ChatModel | None = None,
    progress: Progress | None = None,
    exclude: set[frozenset[str]] | None = None,
) -> BuildReport:
    say = progress or (lambda phase, done, total: None)
    t0 = time.perf_counter()
    repo = repo or ToolRepository.load()
    catalog = Catalog(repo)
    batch = make_agents(catalog, config.agents, config.seed, exclude=exclude)
    agents = {a.id: a for a in batch.agents}
    domains = sorted({d for a in batch.agents for d in a.domains})
    world = repo.world(domains)
    t1 = time.perf_counter()
    say("generate", 0, len(agents))
    tasks, gen = generate(
        world,
        batch.agents,
        config.per_agent,
        config.seed,
        config=config.generation,
        paraphraser=paraphraser,
        progress=lambda k, n: say("generate", k, len(agents)),
    )
    t2 = time.perf_counter()
    tasks, heldout = assign_splits(
        tasks, agents, random.Random(config.seed), config.heldout_frac, config.test_frac
    )
    tasks, dropped = decontaminate(tasks, config.dedup_threshold)
    t3 = time.perf_counter()
    invalid: Counter[str] = Counter()
    if config.validate_tasks:
        suite = TaskSuite(config.name, world, agents, {t.id: t for t in tasks})
        done = [0]

        def tick(check: Any) -> None:
            done[0] += 1
            if not check.ok:
                invalid[check.problems[0].split(" (")[0]] += 1
            if done[0] % 50 == 0 or done[0] == len(tasks):
                say("validate", done[0], len(tasks))

        checks = validate_suite(suite, progress=tick)
        bad = {c.task_id for c in checks if not c.ok}
        tasks = [t for t in tasks if t.id not in bad]
    t4 = time.perf_counter()
    shipped_agents = batch.agents
    if config.drop_idle_agents:
        busy = {t.agent_id for t in tasks}
        shipped_agents = [a for a in batch.agents if a.id in busy]
        domains = sorted({d for a in shipped_agents for d in a.domains})
    report = BuildReport(
        config=config,
        agents=shipped_agents,
        tasks=tasks,
        domains=domains,
        batch=batch,
        invalid=invalid,
        heldout=heldout,
        timings={
            "agents_s": t1 - t0,
            "generate_s": t2 - t1,
            "split_s": t3 - t2,
            "validate_s": t4 - t3,
            "total_s": t4 - t0,
        },
        counts={
            "generated": len(tasks) + sum(invalid.values()),
            "near_duplicates_dropped": dropped,
            "invalid": sum(invalid.values()),
            "shipped": len(tasks),
            "paraphrased": gen.paraphrased,
            "draft_rejections": sum(gen.rejections.values()),
            "blueprint_errors": dict(gen.errors.most_common(20)),
        },
    )
    return report


def write_suite(report: BuildReport, out_dir: str | Path) -> Path:
    """A loadable suite folder (see module doc); returns its path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    cfg = report.config
    manifest = (
        f"# Generated by `agentgym tasks generate` (seed {cfg.seed}); remake it with the command in STATS.md.\n"
        f"name: {cfg.name}\nagents: agents.jsonl\ntasks: [tasks.jsonl.gz]\ndomains:\n"
        + "".join(f"  - {d}\n" for d in report.domains)
    )
    (out / "suite.yaml").write_text(manifest, encoding="utf-8")
    write_jsonl(out / "agents.jsonl", report.agents)
    for stale in out.glob("tasks*.jsonl*"):
        stale.unlink()
    write_jsonl(out / "tasks.jsonl.gz", report.tasks)
    stats = task_stats(report.tasks, {a.id: a for a in report.agents})
    stats["build"] = {
        "config": cfg.model_dump(mode="json"),
        "counts": report.counts,
        "invalid": dict(report.invalid),
        "timings_s": {k: round(v, 2) for k, v in report.timings.items()},
        "heldout_domains": sorted(report.heldout),
        "agent_strategies": dict(report.batch.strategies),
        "prompt_layouts": dict(report.batch.layouts),
        "coverage": report.batch.coverage,
    }
    (out / "stats.json").write_bytes(orjson.dumps(stats, option=orjson.OPT_INDENT_2) + b"\n")
    (out / "STATS.md").write_text(_stats_page(report, stats), encoding="utf-8")
    return out


def remake(cfg: SuiteConfig) -> str:
    """The command-line options that rebuild this suite."""
    opts = f"--name {cfg.name} --agents {cfg.agents} --per-agent {cfg.per_agent} --seed {cfg.seed}"
    if cfg.generation.blueprints:
        opts += f" --blueprints {','.join(cfg.generation.blueprints)}"
    if cfg.drop_idle_agents:
        opts += " --drop-idle-agents"
    if cfg.heldout_frac != 0.1:
        opts += f" --heldout {cfg.heldout_frac}"
    if cfg.test_frac != 0.1:
        opts += f" --test-frac {cfg.test_frac}"
    return opts


def _stats_page(report: BuildReport, stats: dict[str, Any]) -> str:
    cfg = report.config
    cov = report.batch.coverage
    cov_rows = "\n".join(
        f"| {src} | {row['tools_held']} / {row['tools']} | {row['domains_held']} / {row['domains']} |"
        for src, row in sorted(cov.items())
    )
    c = report.counts
    return (
        f"# Suite `{cfg.name}`\n\n"
        f"Made by `agentgym tasks generate {remake(cfg)}`.\n\n"
        f"Generated {c['generated']} tasks; {c['near_duplicates_dropped']} train tasks dropped as near copies of test "
        f"requests (trigram Jaccard >= {cfg.dedup_threshold}); {c['invalid']} failed validation and were not shipped; "
        f"**{c['shipped']} shipped**, each validated: oracle 1.0, do-nothing < 0.5. "
        f"Held-out (test-only) domains: {len(report.heldout)}.\n\n"
        + stats_markdown(stats)
        + "\n### Repository coverage of the shipped agents\n\n| source | tools held | domains held |\n|---|---:|---:|\n"
        + cov_rows
        + "\n"
    )
