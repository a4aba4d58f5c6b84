"""Synthetic tools by hierarchical domain evolution: generators of blueprints, one builder.

Two generators behind one interface (`BlueprintSource`): `CompositionalSource` reads the taxonomy
(categories → application domains → entities) and is deterministic by seed; the model-assisted
source (`agentgym.repository.synth.assisted`) asks a `ChatModel` to propose domains and keeps only
what validates. `generate(source, seed, workers)` builds every blueprint into a `DomainSpec`
(processes in parallel), checks each — both schemas of every tool meta-validated, then every
tool's worked example run on a fresh copy of the seed world through the full simulated-backend
path — and returns the domains with a report.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Protocol

from agentgym.backends.base import Episode
from agentgym.backends.simulated import SimulatedBackend
from agentgym.repository.synth.blueprint import DomainBlueprint
from agentgym.repository.synth.build import build_domain
from agentgym.repository.synth.taxonomy import TAXONOMY_DIR, load_taxonomy
from agentgym.schema import check_schema, validator
from agentgym.spec.world import DomainSpec
from agentgym.world.domain import World
from agentgym.world.state import WorldState


class BlueprintSource(Protocol):
    name: str

    def blueprints(self) -> Iterator[DomainBlueprint]:
        """Domain blueprints to build."""


class CompositionalSource:
    """Every domain of the taxonomy files."""

    name = "compositional"

    def __init__(self, root=TAXONOMY_DIR) -> None:
        self.root = root

    def blueprints(self) -> Iterator[DomainBlueprint]:
        for cat in load_taxonomy(self.root).categories:
            yield from cat.domains


def check_domain(domain: DomainSpec) -> list[str]:
    """Run every tool's example on a fresh seed world (input validation, engine, output validation);
    the problems found (empty when every tool works)."""
    world = World([domain])
    backend = SimulatedBackend(world.engine)
    problems = []
    base = WorldState.from_snapshot(domain.seed)
    for tool in domain.tools:
        examples = tool.input_schema.get("examples") or []
        if not examples:
            problems.append(f"{tool.name}: no example")
            continue
        bad = next((r for r in map(check_schema, (tool.input_schema, tool.output_schema or {})) if r), None)
        if bad:
            problems.append(f"{tool.name}: invalid JSON Schema: {bad}")
            continue
        args = examples[0]
        reason = validator(tool.input_schema).check(args)
        if reason:
            problems.append(f"{tool.name}: example fails the input schema: {reason}")
            continue
        result = backend.run(tool, args, Episode.new(base.fork(), 0))
        if not result.ok:
            problems.append(f"{tool.name}: example failed: {result.content[:200]}")
    return problems


def _build_checked(args: tuple[DomainBlueprint, int]) -> tuple[DomainSpec, list[str]]:
    bp, seed = args
    d = build_domain(bp, seed)
    return d, check_domain(d)


@dataclass
class GenerationReport:
    source: str
    seed: int
    domains: int = 0
    tools: int = 0
    rejected: list[str] = field(default_factory=list)
    seconds: float = 0.0
    by_category: dict[str, dict[str, int]] = field(default_factory=dict)


def generate(
    source: BlueprintSource, seed: int = 0, workers: int | None = None, progress=None
) -> tuple[list[DomainSpec], GenerationReport]:
    """Build and check every blueprint of `source`; domains with any failing tool are rejected."""
    t0 = time.perf_counter()
    bps = list(source.blueprints())
    report = GenerationReport(source=source.name, seed=seed)
    out: list[DomainSpec] = []
    workers = workers or min(len(bps), os.cpu_count() or 1) or 1
    jobs = [(bp, seed) for bp in bps]
    if workers > 1:
        with ProcessPoolExecutor(workers) as pool:
            results = pool.map(_build_checked, jobs, chunksize=8)
            for d, problems in results:
                _collect(d, problems, out, report, progress)
    else:
        for job in jobs:
            _collect(*_build_checked(job), out, report, progress)
    report.seconds = time.perf_counter() - t0
    return out, report


def _collect(
    d: DomainSpec, problems: list[str], out: list[DomainSpec], report: GenerationReport, progress
) -> None:
    if problems:
        report.rejected.append(
            f"{d.name}: {problems[0]}" + (f" (+{len(problems) - 1} more)" if len(problems) > 1 else "")
        )
    else:
        out.append(d)
        report.domains += 1
        report.tools += len(d.tools)
        c = report.by_category.setdefault(d.category, {"domains": 0, "tools": 0})
        c["domains"] += 1
        c["tools"] += len(d.tools)
    if progress:
        progress(d)
