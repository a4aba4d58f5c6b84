"""Policies that act in episodes: oracle (gold replay), do-nothing, and model-driven."""

from agentgym.policies.base import Policy
from agentgym.policies.model import ModelPolicy
from agentgym.policies.oracle import NoopPolicy, OraclePolicy

__all__ = ["ModelPolicy", "NoopPolicy", "OraclePolicy", "Policy"]
