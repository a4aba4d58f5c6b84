"""Prove a suite's tasks are solvable and gradable.

For every task: the oracle (gold replay) must score 1.0, a do-nothing policy must score below 0.5,
and the rubric and gold may reference only tools the agent holds (checked when the suite loads).
With `faults` the oracle plays against injected faults too (it retries transient errors), which
checks that the rubric does not depend on luck. Returns one `TaskCheck` per task.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from agentgym.env.tool_env import EnvConfig, ToolUseEnv
from agentgym.policies.oracle import NoopPolicy, OraclePolicy
from agentgym.runner import run_episode
from agentgym.suites.suite import TaskSuite
from agentgym.world.faults import FaultConfig

NOOP_MAX = 0.5


@dataclass(slots=True)
class TaskCheck:
    task_id: str
    oracle: float
    noop: float
    problems: list[str]

    @property
    def ok(self) -> bool:
        return not self.problems


def check_task(env: ToolUseEnv, task_id: str, seed: int = 0, fmt: str = "hermes") -> TaskCheck:
    oracle = asyncio.run(run_episode(env, OraclePolicy(fmt), task_id, seed))
    noop = asyncio.run(run_episode(env, NoopPolicy(), task_id, seed))
    problems = []
    if oracle.reward < 1.0:
        failed = [
            f"{c.id}: {c.detail}" for c in oracle.rubric.criteria if c.score is not None and c.score < 1
        ]  # type: ignore[union-attr]
        problems.append(f"oracle scored {oracle.reward:.3f} ({'; '.join(failed)}; end: {oracle.end_reason})")
    if noop.reward >= NOOP_MAX:
        problems.append(f"do-nothing scored {noop.reward:.3f} (must be < {NOOP_MAX})")
    return TaskCheck(task_id, oracle.reward, noop.reward, problems)


def validate_suite(
    suite: TaskSuite,
    task_ids: Sequence[str] | None = None,
    *,
    faults: FaultConfig | None = None,
    seed: int = 0,
    fmt: str = "hermes",
    progress: Callable[[TaskCheck], None] | None = None,
) -> list[TaskCheck]:
    ids = list(task_ids) if task_ids is not None else list(suite.tasks)
    env = ToolUseEnv(suite, task_ids=ids, config=EnvConfig(faults=faults or FaultConfig()))
    out = []
    for tid in ids:
        chk = check_task(env, tid, seed, fmt)
        out.append(chk)
        if progress:
            progress(chk)
    env.close()
    return out
