"""agentgym: MCP tools as reinforcement-learning environments for tool-using language models.

Importing the package registers the Gymnasium ids (`agentgym/Starter-v0`, ...). The contracts are
in `agentgym.spec`, the world and its engine in `agentgym.world`, the environment in
`agentgym.env`, grading in `agentgym.grading`, models in `agentgym.models`.
"""

from __future__ import annotations

__version__ = "0.1.0"

from agentgym.env.registration import env_ids, register_envs

register_envs()


def __getattr__(name: str):  # lazy: importing agentgym stays cheap
    if name in ("ToolUseEnv", "EnvConfig", "decode_observation"):
        from agentgym import env

        return getattr(env, name)
    if name in ("load_suite", "TaskSuite"):
        from agentgym import suites

        return getattr(suites, name)
    raise AttributeError(name)


__all__ = [
    "EnvConfig",
    "TaskSuite",
    "ToolUseEnv",
    "__version__",
    "decode_observation",
    "env_ids",
    "load_suite",
]
