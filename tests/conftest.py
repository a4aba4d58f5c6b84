"""Shared fixtures. Tests run against the real starter world and suite in tools/ and tasks/."""

from __future__ import annotations

import pytest

from agentgym.suites import load_suite


@pytest.fixture(scope="session")
def starter():
    return load_suite("starter")


class ScriptedModel:
    """A ChatModel that replies from a script (for plumbing tests only; real-model tests use the embedded model)."""

    tool_format = "hermes"

    def __init__(self, replies, name: str = "scripted"):
        self.replies = list(replies)
        self.prompts: list[str] = []
        self.name = name

    async def generate(self, messages, tools=None, sampling=None):
        from agentgym.models.base import Completion

        self.prompts.append(messages[-1]["content"])
        reply = self.replies.pop(0) if len(self.replies) > 1 else self.replies[0]
        return Completion(text=reply(messages) if callable(reply) else reply, model=self.name)


@pytest.fixture
def scripted():
    return ScriptedModel
