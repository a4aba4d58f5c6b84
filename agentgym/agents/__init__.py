"""Agents: a system prompt plus a coherent subset of the repository's tools (`make_agents`)."""

from agentgym.agents.catalog import Catalog
from agentgym.agents.make import AgentBatch, make_agents

__all__ = ["AgentBatch", "Catalog", "make_agents"]
