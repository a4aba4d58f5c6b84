"""Gymnasium ids for agentgym environments (registered on `import agentgym`).

`agentgym/Starter-v0` samples any task of the starter suite; `agentgym/Starter-<Domain>-v0`
only tasks tagged with that domain. The generated suites: `agentgym/Agentic-Train-v0` and
`agentgym/Agentic-Test-v0` (the `agentic` suite's splits; the test split holds out whole domains),
`agentgym/Agentic-MultiTurn-v0` (tasks where the user must be asked for a detail; pass a
`user=ModelUser(model)` to play the user with a model — the default scripted user answers from the
task's follow-ups). Keyword arguments given to `gymnasium.make` reach
`ToolUseEnv` (e.g. `config={"faults": ...}`).
"""

from __future__ import annotations

import gymnasium as gym

ENTRY = "agentgym.env.tool_env:ToolUseEnv"
STARTER_DOMAINS = ("calendar", "shop", "notes", "messaging")


GENERATED = {
    "agentgym/Agentic-Train-v0": {"suite": "agentic", "split": "train"},
    "agentgym/Agentic-Test-v0": {"suite": "agentic", "split": "test"},
    "agentgym/Agentic-MultiTurn-v0": {"suite": "agentic-multiturn"},
}


def env_ids() -> list[str]:
    return (
        ["agentgym/Starter-v0"]
        + [f"agentgym/Starter-{d.capitalize()}-v0" for d in STARTER_DOMAINS]
        + list(GENERATED)
    )


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
    for env_id, kwargs in GENERATED.items():
        gym.register(id=env_id, entry_point=ENTRY, kwargs=kwargs)
