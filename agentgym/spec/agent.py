"""AgentSpec: a system prompt plus the subset of tools the agent may call."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from agentgym.spec.base import Record


class ExampleMessage(Record):
    """One message of a few-shot demonstration."""

    role: Literal["user", "assistant"]
    """Who says it: the user asking, or the assistant showing how to answer."""
    content: str
    """The message text, exactly as the model reads it (tool-call markup included)."""


class AgentSpec(Record):
    """An agent: who it is (system prompt) and what it can do (tool ids)."""

    id: str
    """Unique id, referenced by tasks."""
    name: str
    """Short display name."""
    system_prompt: str
    """Persona, areas of expertise and behavioural pattern, as the model reads it."""
    tools: tuple[str, ...] = Field(min_length=1)
    """Exposed names of the tools the agent holds."""
    domains: tuple[str, ...] = ()
    """Domains its tools come from (for coverage reports)."""
    examples: tuple[ExampleMessage, ...] = ()
    """Few-shot demonstration shown after the system prompt and before every task's instruction:
    user and assistant turns alternating, from a user turn to an assistant turn. Part of the prompt,
    so a trainer never puts loss on it."""

    @model_validator(mode="after")
    def _examples_alternate(self) -> AgentSpec:
        roles = [m.role for m in self.examples]
        if roles and roles != ["user", "assistant"] * (len(roles) // 2):
            raise ValueError(
                f"agent {self.id!r}: examples must alternate user, assistant, ... and end with an "
                f"assistant turn; got roles {roles}"
            )
        return self

    def opening(self, instruction: str) -> list[dict[str, str]]:
        """The messages every episode starts with: system prompt, examples, the task's instruction."""
        return [
            {"role": "system", "content": self.system_prompt},
            *({"role": m.role, "content": m.content} for m in self.examples),
            {"role": "user", "content": instruction},
        ]
