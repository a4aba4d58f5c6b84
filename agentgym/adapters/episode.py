"""EpisodeDriver: one agentgym episode driven the way peers' loops drive tools, one call at a time.

Peers' rollout loops (TRL's tool loop, an MCP tool server under verifiers) execute tool calls one
by one and never hand the environment the assistant turn that made them. The driver maps that
onto `ToolUseEnv`: `start(task_id, seed)` resets; `call(name, arguments)` is one env step holding
exactly that call and returns the tool message's text (results, or agentgym's typed error JSON:
unknown tool, invalid arguments, not found, ...); `finish(answer)` is the final step without calls
and returns the `RubricResult`. Each call is therefore its own env turn, so the task's `max_turns`
counts calls: once a budget ends the episode, later calls are answered with an `episode_over`
error and the episode is graded as it stood (`finish` then adds no answer). A final reply that
agentgym reads as calls (tool-call markup the peer left unparsed) is run as a turn, and the dialogue
then ends with an empty reply.

The dialogue has no user turns after the opening request: tasks with scripted follow-ups are
refused (`check_single_turn`), as no peer loop here can voice them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from agentgym.env.tool_env import EnvConfig, ToolUseEnv, decode_observation
from agentgym.jsonutil import dumps_str
from agentgym.spec.trajectory import RubricResult, Trajectory
from agentgym.suites.suite import TaskSuite, load_suite


def resolve_suite(suite: str | TaskSuite) -> TaskSuite:
    return load_suite(suite) if isinstance(suite, str) else suite


def select_tasks(suite: TaskSuite, task_ids: Iterable[str] | None) -> list[str]:
    """The ids asked for, checked to exist and be single-turn (None: every single-turn task)."""
    if task_ids is None:
        task_ids = [t.id for t in suite if not t.user.follow_ups]
    ids = list(task_ids)
    unknown = [i for i in ids if i not in suite.tasks]
    if unknown or not ids:
        raise ValueError(
            f"no such tasks in suite {suite.name!r}: {unknown}" if unknown else "no tasks selected"
        )
    check_single_turn(suite, ids)
    return ids


def check_single_turn(suite: TaskSuite, task_ids: Iterable[str]) -> None:
    multi = [i for i in task_ids if suite.tasks[i].user.follow_ups]
    if multi:
        raise ValueError(
            f"tasks with scripted user follow-ups need a user turn that peer tool loops cannot give: {multi[:5]}"
        )


class EpisodeDriver:
    """See module doc."""

    def __init__(self, suite: str | TaskSuite, config: EnvConfig | None = None) -> None:
        self.suite = resolve_suite(suite)
        self.env = ToolUseEnv(self.suite, config=config)
        self.task_id: str | None = None
        self.messages: list[dict[str, Any]] = []
        self.tools: list[dict[str, Any]] = []
        self.calls = 0

    def start(self, task_id: str, seed: int) -> list[dict[str, Any]]:
        """Reset to `task_id`; returns the opening messages (system prompt, user request)."""
        check_single_turn(self.suite, [task_id])
        obs, info = self.env.reset(seed=seed, options={"task_id": task_id})
        self.task_id, self.tools, self.calls = task_id, info["tools"], 0
        self.messages = decode_observation(obs)
        return self.messages

    def call(self, name: str, arguments: dict[str, Any] | str) -> str:
        """Run one tool call as one env turn; the text the model sees as the tool result."""
        if self.task_id is None:
            raise RuntimeError("call start() before call()")
        self.calls += 1
        if self.env.done:
            return dumps_str(
                {
                    "error": "episode_over",
                    "message": f"the episode already ended ({self.env.trajectory().end_reason}); "
                    "this call was not run",
                }
            )
        action = {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": f"call_{self.calls}",
                    "type": "function",
                    "function": {"name": name, "arguments": arguments},
                }
            ],
        }
        obs, *_ = self.env.step(action)
        return decode_observation(obs)[0]["content"]

    def finish(self, answer: str) -> RubricResult:
        """End the episode with the final reply (unless a budget already ended it); the rubric result."""
        if self.task_id is None:
            raise RuntimeError("call start() before finish()")
        if not self.env.done:
            self.env.step({"role": "assistant", "content": answer})
        if not self.env.done:
            # the reply held tool-call markup the peer did not run (typically malformed): that turn
            # ran and its calls were answered and counted; the dialogue ends with an empty reply
            self.env.step({"role": "assistant", "content": ""})
        if not self.env.done or self.env.result is None:
            raise RuntimeError(f"episode of {self.task_id} did not end after the final reply")
        return self.env.result

    @property
    def result(self) -> RubricResult | None:
        return self.env.result if self.env.done else None

    def trajectory(self, policy: str) -> Trajectory:
        return self.env.trajectory(policy=policy)
