"""Distribution tables of a task set: difficulty, calls per task, domains, criteria kinds, blueprints.

`task_stats(tasks, agents)` returns one JSON-ready dict (what `agentgym tasks stats --json` prints
and what each generated suite saves as `stats.json`); `stats_markdown(stats)` renders it as the
tables of the suite's `STATS.md`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from agentgym.spec.agent import AgentSpec
from agentgym.spec.task import TaskSpec

LEVELS = ("simple", "moderate", "complex")


def _calls(t: TaskSpec) -> int:
    return sum(len(g.calls) for g in t.gold)


def _bucket(n: int) -> str:
    return str(n) if n < 5 else "5-7" if n < 8 else "8+"


def task_stats(tasks: Iterable[TaskSpec], agents: Mapping[str, AgentSpec]) -> dict[str, Any]:
    tasks = list(tasks)
    used = {t.agent_id for t in tasks}
    domains: Counter[str] = Counter()
    for t in tasks:
        domains.update(agents[t.agent_id].domains if t.agent_id in agents else ())
    kinds: Counter[str] = Counter(c.kind for t in tasks for c in t.rubric.criteria)
    by_split_diff: dict[str, dict[str, int]] = {}
    for t in tasks:
        row = by_split_diff.setdefault(t.split, dict.fromkeys(LEVELS, 0))
        row[t.difficulty] += 1
    calls = [_calls(t) for t in tasks]
    return {
        "tasks": len(tasks),
        "agents": len(used),
        "agents_shipped": len(agents),
        "by_difficulty": {lvl: sum(t.difficulty == lvl for t in tasks) for lvl in LEVELS},
        "by_split": dict(Counter(t.split for t in tasks)),
        "by_split_difficulty": by_split_diff,
        "calls_per_task": dict(sorted(Counter(_bucket(n) for n in calls).items())),
        "mean_calls": round(sum(calls) / len(calls), 2) if calls else 0.0,
        "multi_turn": sum(bool(t.user.follow_ups) for t in tasks),
        "features": dict(
            Counter(
                f
                for t in tasks
                for f in t.tags
                if f in ("ask_user", "recovery", "refusal", "real_tool", "heldout_domain")
            )
        ),
        "criteria_kinds": dict(kinds.most_common()),
        "blueprints": dict(Counter(t.tags[1] if len(t.tags) > 1 else "?" for t in tasks).most_common()),
        "domains": len(domains),
        "top_domains": dict(domains.most_common(15)),
        "styles": dict(Counter(t.user.style for t in tasks).most_common()),
    }


def _table(title: str, rows: Mapping[str, Any], head: tuple[str, str] = ("", "tasks")) -> str:
    lines = [f"### {title}", "", f"| {head[0]} | {head[1]} |", "|---|---:|"]
    lines += [f"| {k} | {v} |" for k, v in rows.items()]
    return "\n".join(lines) + "\n"


def stats_markdown(stats: Mapping[str, Any]) -> str:
    parts = [
        f"{stats['tasks']} tasks over {stats['agents']} agents ({stats['agents_shipped']} agents shipped), "
        f"{stats['domains']} domains; {stats['multi_turn']} multi-turn; "
        f"mean {stats['mean_calls']} gold calls per task.\n",
        "### Difficulty by split\n\n| split | " + " | ".join(LEVELS) + " |\n|---|" + "---:|" * len(LEVELS),
    ]
    for split, row in sorted(stats["by_split_difficulty"].items()):
        parts[-1] += f"\n| {split} | " + " | ".join(str(row[lvl]) for lvl in LEVELS) + " |"
    parts[-1] += "\n"
    parts.append(_table("Gold calls per task", stats["calls_per_task"], ("calls", "tasks")))
    parts.append(_table("Rubric criteria by kind", stats["criteria_kinds"], ("kind", "criteria")))
    parts.append(_table("Blueprints", stats["blueprints"], ("blueprint", "tasks")))
    parts.append(_table("Features", stats["features"], ("feature", "tasks")))
    parts.append(_table("User styles", stats["styles"], ("style", "tasks")))
    parts.append(_table("Top domains", stats["top_domains"], ("domain", "tasks")))
    return "\n".join(parts)
