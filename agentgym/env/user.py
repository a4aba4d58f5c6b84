"""User simulators: who answers the agent when it replies without calling tools.

`reply(task, messages)` returns the user's next message, or None when the user is done (the episode
then terminates). The `ScriptedUser` is deterministic: it says each of the task's scripted
follow-ups in turn, then stops; with no follow-ups it is the single-turn user. Model-driven users
(personas with hidden facts) implement the same protocol; their replies end the dialogue when they
contain `STOP_TOKEN`.
"""

from __future__ import annotations

from typing import Any, Protocol

from agentgym.spec.task import TaskSpec

STOP_TOKEN = "###STOP###"


class UserSimulator(Protocol):
    is_sync: bool

    def reset(self, task: TaskSpec) -> None:
        """Start a new dialogue."""

    async def reply(self, task: TaskSpec, messages: list[dict[str, Any]]) -> str | None:
        """The user's next message, or None to end the dialogue."""


class ScriptedUser:
    """Says the task's scripted follow-ups in order, then stops."""

    is_sync = True

    def __init__(self) -> None:
        self._said = 0

    def reset(self, task: TaskSpec) -> None:
        self._said = 0

    async def reply(self, task: TaskSpec, messages: list[dict[str, Any]]) -> str | None:
        if self._said >= len(task.user.follow_ups):
            return None
        text = task.user.follow_ups[self._said]
        self._said += 1
        return None if STOP_TOKEN in text else text
