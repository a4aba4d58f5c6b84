"""agentgym tasks as a verifiers 0.4.0 (v1 API) taskset; tools served over MCP, reward = the rubric.

`AgentgymTaskset` (config `--env.taskset.suite NAME --env.taskset.task-ids ID ...
--env.taskset.seed N`) yields one `AgentgymTask` per agentgym task: the agent's system prompt and
the user's request as the prompt, and `AgentgymTaskData` (`suite`, `task_id`, `seed`) on the
trace. The task's per-rollout tool server, `AgentgymToolset`, is a real MCP server that verifiers
launches as `python -m agentgym.adapters.verifiers`: in `setup_task` it starts an agentgym
episode on the rollout's task (`EpisodeDriver`) and registers the agent's tools under their own
names (`TOOL_PREFIX = None`), each call routed into the `ToolUseEnv` (simulated tools, state,
typed errors).

The reward `agentgym_rubric` runs in the rollout process, which cannot see the tool server's
world, so it *replays* the trace: a fresh episode with the same task and seed runs the trace's
tool calls in order (deterministic simulated tools give the same results), checks that every
successful replayed result equals the result the model saw (a mismatch raises: the reward is never
computed on a world the model did not see), ends with the final reply and returns the rubric
score; the breakdown goes to `trace.info["agentgym"]`. Tools must therefore be deterministic given
the seed (the simulator is; an LLM world model sampling at temperature > 0 is not).

verifiers finds a taskset by top-level module name, so point it at a one-line module:

    # agentgym_tasks.py, on PYTHONPATH
    from agentgym.adapters.verifiers import AgentgymTaskset
    __all__ = ["AgentgymTaskset"]

    vf-eval agentgym_tasks --env.taskset.suite starter --env.agent.harness.id null ...

verifiers pins mcp==2.0.0 (agentgym's own env has 2.3), so it lives in a venv that shares the main
environment's packages (`install.sh` makes `/tmp/agentgym-peers`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import verifiers.v1 as vf
from pydantic import Field
from verifiers.v1.types import content_text

from agentgym.adapters.episode import EpisodeDriver, resolve_suite, select_tasks
from agentgym.adapters.pyfunc import tool_function
from agentgym.spec.trajectory import RubricResult


class ReplayMismatch(RuntimeError):
    """Replaying a trace gave a tool result other than the one the model saw."""


class AgentgymTaskData(vf.TaskData):
    suite: str
    """Suite name or path, as `agentgym.suites.load_suite` takes it."""
    task_id: str
    """The agentgym task."""
    seed: int = 0
    """Episode seed (drives injected faults); tool server and replay use the same one."""


class AgentgymToolset(vf.Toolset[vf.ToolsetConfig]):
    """The rollout's agentgym episode behind an MCP server (one per rollout)."""

    TOOL_PREFIX = None

    def __init__(self, config: vf.ToolsetConfig) -> None:
        super().__init__(config)
        self.driver: EpisodeDriver | None = None

    async def setup_task(self, task: AgentgymTaskData) -> None:
        self.driver = EpisodeDriver(task.suite)
        self.driver.start(task.task_id, task.seed)

    def register(self, mcp: Any) -> None:
        if self.driver is None or self.driver.task_id is None:
            raise vf.ToolsetError("AgentgymToolset serves one rollout's task; it cannot be a shared server")
        suite = self.driver.suite
        for spec in suite.tools_for(suite.tasks[self.driver.task_id].agent_id):
            fn = tool_function(spec, self.driver.call)
            mcp.add_tool(fn, name=spec.name, description=spec.description, structured_output=False)


class AgentgymTaskConfig(vf.TaskConfig):
    tools: vf.ToolsetConfig = vf.ToolsetConfig()


def _is_error(result: str) -> bool:
    return result.lstrip().startswith('{"error"')


def replay(data: AgentgymTaskData, messages: Sequence[Any]) -> RubricResult:
    """Grade a finished conversation by replaying it in a fresh episode (see module doc)."""
    driver = EpisodeDriver(data.suite)
    driver.start(data.task_id, data.seed)
    seen = {m.tool_call_id: content_text(m.content) for m in messages if m.role == "tool"}
    answer = ""
    for m in messages:
        if m.role != "assistant":
            continue
        if not m.tool_calls:
            answer = m.content or ""
            break  # a reply without calls ends an agentgym episode
        for c in m.tool_calls:
            got = driver.call(c.name, c.arguments)
            saw = seen.get(c.id)
            if saw is not None and not _is_error(got) and saw.strip() != got.strip():
                raise ReplayMismatch(
                    f"task {data.task_id}: replaying {c.name}({c.arguments}) gave {got[:200]!r}, "
                    f"but the model saw {saw[:200]!r}"
                )
    return driver.finish(answer)


class AgentgymTask(vf.Task[AgentgymTaskData, vf.State, AgentgymTaskConfig]):
    @classmethod
    def toolsets(cls, config: AgentgymTaskConfig) -> list[vf.Toolset]:
        return [AgentgymToolset(config.tools)]

    @property
    def key(self) -> str:
        return f"{self.data.suite}:{self.data.task_id}:{self.data.seed}"

    @vf.reward(weight=1.0)
    async def agentgym_rubric(self, trace: vf.Trace) -> float:
        result = replay(self.data, trace.messages)
        trace.info["agentgym"] = result.model_dump(mode="json")
        return result.score


class AgentgymTasksetConfig(vf.TasksetConfig):
    task: AgentgymTaskConfig = AgentgymTaskConfig()
    suite: str = "starter"
    """Suite name or path."""
    task_ids: list[str] = Field(default_factory=list)
    """Tasks to load; empty: every single-turn task of the suite."""
    seed: int = 0
    """Episode seed of every task."""


class AgentgymTaskset(vf.Taskset[AgentgymTask, AgentgymTasksetConfig]):
    def load(self) -> Iterator[AgentgymTask]:
        suite = resolve_suite(self.config.suite)
        for tid in select_tasks(suite, self.config.task_ids or None):
            task = suite.tasks[tid]
            if suite.agents[task.agent_id].examples:
                raise ValueError(
                    f"agent {task.agent_id!r} has few-shot examples, which this verifiers adapter "
                    "does not pass on (its task data holds one prompt string)"
                )
            data = AgentgymTaskData(
                id=tid,
                name=tid,
                prompt=task.instruction,
                system_prompt=suite.agents[task.agent_id].system_prompt,
                suite=self.config.suite,
                task_id=tid,
                seed=self.config.seed,
            )
            yield AgentgymTask(data, self.config.task)


__all__ = ["AgentgymTask", "AgentgymTaskData", "AgentgymTaskset", "AgentgymToolset", "replay"]

if __name__ == "__main__":
    AgentgymToolset.run()
