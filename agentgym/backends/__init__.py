"""Executors of tool calls behind one contract (`ToolBackend`)."""

from agentgym.backends.base import Episode, ToolBackend, ToolResult
from agentgym.backends.simulated import SimulatedBackend

__all__ = ["Episode", "SimulatedBackend", "ToolBackend", "ToolResult"]
