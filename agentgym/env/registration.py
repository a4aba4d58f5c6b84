"""Gymnasium ids for agentgym environments (registered on `import agentgym`).

`agentgym/Starter-v0` samples any task of the starter suite; `agentgym/Starter-<Domain>-v0`
only tasks tagged with that domain. Keyword arguments given to `gymnasium.make` reach
`ToolUseEnv` (e.g. `config={"faults": ...}`).
"""

from __future__ import annotations

import gymnasium as gym

ENTRY = "agentgym.env.tool_env:ToolUseEnv"
STARTER_DOMAINS = ("calendar", "shop", "notes", "messaging")


def env_ids() -> list[str]:
    return ["agentgym/Starter-v0"] + [f"agentgym/Starter-{d.capitalize()}-v0" for d in STARTER_DOMAINS]


def register_envs() -> None:
    if "agentgym/Starter-v0" in gym.registry:
        return
    gym.register(id="agentgym/Starter-v0", entry_point=ENTRY, kwargs={"suite": "starter"})
    for d in STARTER_DOMAINS:
        gym.register(
            id=f"agentgym/Starter-{d.capitalize()}-v0",
            entry_point=ENTRY,
            kwargs={"suite": "starter", "tags": [d]},
        )
