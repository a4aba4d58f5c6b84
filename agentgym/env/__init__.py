"""The Gymnasium environment and what it needs (user simulators, registration)."""

from agentgym.env.tool_env import EnvConfig, ResetNeeded, ToolUseEnv, decode_observation
from agentgym.env.user import STOP_TOKEN, ModelUser, ScriptedUser, UserSimulator

__all__ = [
    "STOP_TOKEN",
    "EnvConfig",
    "ModelUser",
    "ResetNeeded",
    "ScriptedUser",
    "ToolUseEnv",
    "UserSimulator",
    "decode_observation",
]
