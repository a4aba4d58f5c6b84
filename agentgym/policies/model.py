"""ModelPolicy: a ChatModel acting in episodes.

It keeps the conversation as the model saw it — its own turns as the raw text it generated (tool
markup included, so the next prompt shows exactly what it wrote), tool results and user replies as
the environment returned them — and returns each completion as an action carrying the sampled
token ids and log-probabilities.

`token_budget` caps what it samples over a whole episode, all turns together: each turn asks for at
most `min(max_new_tokens, what is left)` (counting sampled ids, or the text's words from a backend
that returns none). Pair it with `EnvConfig.token_budget` of the same value, which truncates the
episode once the budget is spent.
"""

from __future__ import annotations

from typing import Any

from agentgym.models.base import ChatModel, SamplingParams
from agentgym.spec.task import TaskSpec


class ModelPolicy:
    def __init__(
        self,
        model: ChatModel,
        sampling: SamplingParams | None = None,
        name: str | None = None,
        token_budget: int | None = None,
    ) -> None:
        if token_budget is not None and token_budget < 1:
            raise ValueError(f"token_budget must be >= 1, got {token_budget}")
        self.model = model
        self.sampling = sampling or SamplingParams()
        self.name = name or model.name
        self.token_budget = token_budget
        self.spent = 0
        """Tokens sampled in the current episode."""
        self.history: list[dict[str, Any]] = []
        self.tools: list[dict[str, Any]] = []

    def start(self, task: TaskSpec, messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> None:
        self.history = []
        self.tools = tools
        self._first = list(messages)
        self.spent = 0

    async def act(self, observation: list[dict[str, Any]]) -> dict[str, Any]:
        if self._first:
            observation, self._first = self._first, []
        self.history.extend(observation)
        sampling = self.sampling
        if self.token_budget is not None:
            left = max(1, self.token_budget - self.spent)
            if left < sampling.max_new_tokens:
                sampling = sampling.model_copy(update={"max_new_tokens": left})
        completion = await self.model.generate(self.history, self.tools, sampling)
        ids = completion.token_ids
        self.spent += len(ids) if ids is not None else len(completion.text.split())
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
