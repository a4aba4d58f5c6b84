"""Policy: what chooses the assistant's turns in an episode.

A policy is told about a new episode (`start`: the task, the first observation's messages, the
tools) and then asked for one action per step (`act`: the messages the environment just returned).
An action is what `ToolUseEnv.step` accepts: text, or a message dict that may carry the sampled
`token_ids`/`logprobs`. Policies keep their own view of the conversation.
"""

from __future__ import annotations

from typing import Any, Protocol

from agentgym.spec.task import TaskSpec


class Policy(Protocol):
    name: str

    def start(self, task: TaskSpec, messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> None:
        """A new episode begins with these messages (system, user) and tools."""

    async def act(self, observation: list[dict[str, Any]]) -> str | dict[str, Any]:
        """The next assistant turn, given the messages the environment just returned."""
