"""TaskSuite: a world, the agents acting in it, and their tasks — loaded from a folder.

A suite folder (`tasks/<name>/`) holds `suite.yaml`:

    name: starter
    world: starter            # tools/<world>/ (domain files)
    agents: agents.yaml       # list of AgentSpec
    tasks: [tasks/*.yaml]     # globs; .yaml files are lists of tasks, .jsonl(.gz) files one TaskSpec per line

A generated suite names repository domains instead of a `world` folder (`domains: [physio_clinic,
...]`: the world is those domains of `tools/`'s repository) and keeps its agents as `agents.jsonl`.

In YAML task files `initial_state` may be left out (the world's seed state is used) or given as
`state_patch` (records upserted into, or with `_delete: true` removed from, the seed state); the
loader always produces a complete `TaskSpec`. Loading refuses unknown agents, tools an agent does not
hold, and duplicate ids, naming the file.
"""

from __future__ import annotations

import copy
import fnmatch
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from agentgym.grading.rubric import alternatives
from agentgym.paths import tasks_dir, tools_dir
from agentgym.spec.agent import AgentSpec
from agentgym.spec.jsonl import JsonlError, read_jsonl
from agentgym.spec.rubric import CallCriterion, CheckpointCriterion, ForbiddenCriterion
from agentgym.spec.task import TaskSpec
from agentgym.spec.tool import ToolSpec
from agentgym.spec.world import WorldSnapshot
from agentgym.world.domain import World
from agentgym.yamlfile import load_yaml


class SuiteError(ValueError):
    """A suite's files are inconsistent."""


class TaskSuite:
    """Agents and tasks over one world."""

    def __init__(
        self, name: str, world: World, agents: dict[str, AgentSpec], tasks: dict[str, TaskSpec]
    ) -> None:
        self.name = name
        self.world = world
        self.agents = agents
        self.tasks = tasks
        problems = self.problems()
        if problems:
            raise SuiteError(f"suite {name!r} is inconsistent:\n  " + "\n  ".join(problems[:20]))

    def tools_for(self, agent_id: str) -> list[ToolSpec]:
        return [self.world.tools[t] for t in self.agents[agent_id].tools]

    def problems(self) -> list[str]:
        """Every reference that does not resolve."""
        out = []
        for a in self.agents.values():
            out += [f"agent {a.id}: unknown tool {t!r}" for t in a.tools if t not in self.world.tools]
        for t in self.tasks.values():
            agent = self.agents.get(t.agent_id)
            if agent is None:
                out.append(f"task {t.id}: unknown agent {t.agent_id!r}")
                continue
            held = set(agent.tools)
            for tool in (alt for pattern in _rubric_tools(t) for alt in alternatives(pattern)):
                if not any(fnmatch.fnmatchcase(h, tool) for h in held):
                    out.append(f"task {t.id}: rubric references tool {tool!r} that agent {agent.id} lacks")
            for turn in t.gold:
                for c in turn.calls:
                    if c.tool not in held:
                        out.append(f"task {t.id}: gold calls tool {c.tool!r} that agent {agent.id} lacks")
        return out

    def __iter__(self) -> Iterator[TaskSpec]:
        return iter(self.tasks.values())

    def __len__(self) -> int:
        return len(self.tasks)


def _rubric_tools(task: TaskSpec) -> list[str]:
    out = []
    for c in task.rubric.criteria:
        if isinstance(c, CallCriterion):
            out.append(c.tool)
        elif isinstance(c, CheckpointCriterion):
            out += [p.tool for p in c.sequence]
        elif isinstance(c, ForbiddenCriterion) and c.call is not None:
            out.append(c.call.tool)
    return out


def _patched(seed: WorldSnapshot, patch: dict[str, list[dict[str, Any]]]) -> dict[str, list[dict[str, Any]]]:
    cols = {c: list(recs) for c, recs in seed.collections.items()}
    for col, recs in patch.items():
        table = {r["id"]: r for r in cols.get(col, [])}
        for r in recs:
            r = copy.deepcopy(r)
            if r.pop("_delete", False):
                table.pop(r["id"], None)
            else:
                table[r["id"]] = {**table.get(r["id"], {}), **r}
        cols[col] = list(table.values())
    return cols


def _yaml_tasks(path: Path, world: World) -> list[TaskSpec]:
    with open(path, encoding="utf-8") as f:
        raw = load_yaml(f) or []
    if not isinstance(raw, list):
        raise SuiteError(f"{path}: expected a list of tasks")
    out = []
    for i, t in enumerate(raw):
        t = dict(t)
        try:
            if "initial_state" not in t:
                patch = t.pop("state_patch", {}) or {}
                t["initial_state"] = {
                    "now": t.pop("now", world.seed.now),
                    "collections": _patched(world.seed, patch),
                }
            out.append(TaskSpec.model_validate(t))
        except (ValidationError, KeyError, TypeError) as e:
            raise SuiteError(f"{path}: task #{i} ({t.get('id', '?')}): {e}") from e
    return out


TASK_READERS = {
    ".yaml": _yaml_tasks,
    ".yml": _yaml_tasks,
    ".jsonl": lambda p, w: list(read_jsonl(p, TaskSpec)),
    ".gz": lambda p, w: list(read_jsonl(p, TaskSpec)),
}


def _world(meta: dict[str, Any]) -> World:
    if "domains" in meta:
        from agentgym.repository.store import ToolRepository

        repo = ToolRepository.load()
        unknown = [d for d in meta["domains"] if d not in repo.domain_names()]
        if unknown:
            raise SuiteError(f"suite names domains the repository lacks: {unknown[:10]}")
        return repo.world(meta["domains"])
    world_ref = Path(meta.get("world", "starter"))
    return World.from_dir(world_ref if world_ref.is_absolute() else tools_dir() / world_ref)


def _agents(path: Path) -> dict[str, AgentSpec]:
    if path.suffix in (".jsonl", ".gz"):
        agents = list(read_jsonl(path, AgentSpec))
    else:
        agents = [AgentSpec.model_validate(x) for x in load_yaml(path.read_text(encoding="utf-8"))]
    out: dict[str, AgentSpec] = {}
    for a in agents:
        if a.id in out:
            raise SuiteError(f"{path}: duplicate agent id {a.id!r}")
        out[a.id] = a
    return out


def load_suite_dir(path: str | Path) -> TaskSuite:
    root = Path(path)
    manifest = root / "suite.yaml"
    if not manifest.exists():
        raise SuiteError(f"{root} has no suite.yaml")
    meta = load_yaml(manifest.read_text(encoding="utf-8"))
    world = _world(meta)
    try:
        agents = _agents(root / meta.get("agents", "agents.yaml"))
    except (ValidationError, OSError, JsonlError) as e:
        raise SuiteError(f"{root}: agents: {e}") from e
    tasks: dict[str, TaskSpec] = {}
    for pattern in meta.get("tasks", ["*.jsonl"]):
        for f in sorted(root.glob(pattern)):
            reader = TASK_READERS.get(f.suffix)
            if reader is None:
                raise SuiteError(f"{f}: no reader for {f.suffix} files")
            try:
                found = reader(f, world)
            except JsonlError as e:
                raise SuiteError(str(e)) from e
            for t in found:
                if t.id in tasks:
                    raise SuiteError(f"{f}: duplicate task id {t.id!r}")
                tasks[t.id] = t
    if not tasks:
        raise SuiteError(f"suite {root} has no tasks")
    return TaskSuite(meta.get("name", root.name), world, agents, tasks)


@lru_cache(maxsize=8)
def load_suite(name_or_path: str = "starter") -> TaskSuite:
    """A suite by name (a folder of `tasks/`) or path; loaded once per process."""
    p = Path(name_or_path)
    if not p.exists():
        p = tasks_dir() / name_or_path
    if not p.exists():
        known = (
            sorted(d.name for d in tasks_dir().iterdir() if (d / "suite.yaml").exists())
            if tasks_dir().exists()
            else []
        )
        raise SuiteError(f"no suite {name_or_path!r}; known suites: {known}")
    return load_suite_dir(p)
