"""AgentSpec: a system prompt plus the subset of tools the agent may call."""

from __future__ import annotations

from pydantic import Field

from agentgym.spec.base import Record


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
