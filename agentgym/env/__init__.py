"""The Gymnasium environment and what it needs (user simulators, registration)."""

from agentgym.env.tool_env import EnvConfig, ResetNeeded, ToolUseEnv, decode_observation
from agentgym.env.user import STOP_TOKEN, ScriptedUser, UserSimulator

__all__ = [
    "STOP_TOKEN",
    "EnvConfig",
    "ResetNeeded",
    "ScriptedUser",
    "ToolUseEnv",
    "UserSimulator",
    "decode_observation",
]
