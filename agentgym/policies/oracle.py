"""Oracle and do-nothing policies: the two ends every task is validated between.

`OraclePolicy` replays a task's gold turns, rendering calls as text in a chosen tool-call format
(so replays exercise the parser like a model would). When a call fails with a transient error
(timeout, rate limit, server error — injected faults), it repeats the failed calls before moving
on, as a robust agent would; every other outcome is left to the gold path. `NoopPolicy` answers at
once without touching a tool.
"""

from __future__ import annotations

import json
from typing import Any

from agentgym.parsing import render_calls
from agentgym.spec.task import TaskSpec
from agentgym.spec.trajectory import TRANSIENT_ERRORS


class OraclePolicy:
    def __init__(self, fmt: str = "hermes", max_retries: int = 8) -> None:
        self.fmt = fmt
        self.max_retries = max_retries
        self.name = "oracle"

    def start(self, task: TaskSpec, messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> None:
        self._gold = task.gold
        self._next = 0
        self._pending: list[tuple[str, dict[str, Any]]] = []
        self._retries = 0

    async def act(self, observation: list[dict[str, Any]]) -> str:
        if self._pending:
            failed = [
                c for c, m in zip(self._pending, _tool_messages(observation), strict=False) if _transient(m)
            ]
            if failed and self._retries < self.max_retries:
                self._retries += 1
                self._pending = failed
                return render_calls(self.fmt, failed)
        self._pending, self._retries = [], 0
        if self._next >= len(self._gold):
            return self._gold[-1].answer or ""
        turn = self._gold[self._next]
        self._next += 1
        if turn.answer is not None:
            return turn.answer
        self._pending = [(c.tool, dict(c.arguments)) for c in turn.calls]
        return render_calls(self.fmt, self._pending)


def _tool_messages(obs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [m for m in obs if m.get("role") == "tool"]


def _transient(msg: dict[str, Any]) -> bool:
    content = msg.get("content") or ""
    if not content.startswith('{"error"'):
        return False
    try:
        return json.loads(content).get("error") in TRANSIENT_ERRORS
    except ValueError:
        return False


class NoopPolicy:
    """Answers immediately, calls nothing."""

    name = "noop"

    def start(self, task: TaskSpec, messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> None:
        return None

    async def act(self, observation: list[dict[str, Any]]) -> str:
        return "I'm sorry, I can't help with that."
