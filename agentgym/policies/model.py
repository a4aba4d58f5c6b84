"""ModelPolicy: a ChatModel acting in episodes.

It keeps the conversation as the model saw it — its own turns as the raw text it generated (tool
markup included, so the next prompt shows exactly what it wrote), tool results and user replies as
the environment returned them — and returns each completion as an action carrying the sampled
token ids and log-probabilities.
"""

from __future__ import annotations

from typing import Any

from agentgym.models.base import ChatModel, SamplingParams
from agentgym.spec.task import TaskSpec


class ModelPolicy:
    def __init__(
        self, model: ChatModel, sampling: SamplingParams | None = None, name: str | None = None
    ) -> None:
        self.model = model
        self.sampling = sampling or SamplingParams()
        self.name = name or model.name
        self.history: list[dict[str, Any]] = []
        self.tools: list[dict[str, Any]] = []

    def start(self, task: TaskSpec, messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> None:
        self.history = []
        self.tools = tools
        self._first = list(messages)

    async def act(self, observation: list[dict[str, Any]]) -> dict[str, Any]:
        if self._first:
            observation, self._first = self._first, []
        self.history.extend(observation)
        completion = await self.model.generate(self.history, self.tools, self.sampling)
        # The sampled ids ride along, so a local model splices them in verbatim next turn (token-exact).
        self.history.append(
            {
                "role": "assistant",
                "content": completion.text,
                "token_ids": completion.token_ids,
                "logprobs": completion.logprobs,
            }
        )
        return completion.as_action()
