"""ChatModel: the one protocol every model backend meets.

`generate(messages, tools, sampling)` takes OpenAI-format messages and tool schemas and returns a
`Completion`: the text (with its tool-call markup, ready for `env.step`), the calls parsed from
it in the model's `tool_format`, and — when the backend can see them — the exact token ids the
model sampled and their log-probabilities under the sampling distribution, never re-tokenised.
Backends are async; CPU-bound ones run generation in a worker thread.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from pydantic import Field

from agentgym.parsing import ParsedCall
from agentgym.spec.base import Record


class SamplingParams(Record):
    """How to sample one turn."""

    temperature: float = Field(default=0.0, ge=0)
    """0 means greedy."""
    top_p: float = Field(default=1.0, gt=0, le=1)
    """Nucleus sampling mass."""
    max_new_tokens: int = Field(default=256, ge=1)
    """Longest turn."""
    seed: int | None = None
    """Sampling seed (reproducible sampling where the backend allows)."""


@dataclass(slots=True)
class Completion:
    """One generated assistant turn."""

    text: str
    """Generated text, special end token removed."""
    tool_calls: list[ParsedCall] = field(default_factory=list)
    """Calls parsed from `text`."""
    token_ids: list[int] | None = None
    """Sampled token ids (end token included when sampled)."""
    logprobs: list[float] | None = None
    """Log-probability of each sampled token."""
    prompt_tokens: int = 0
    """Length of the rendered prompt."""
    finish_reason: str = "stop"
    """'stop' (end token) or 'length' (max_new_tokens)."""
    gen_ms: float = 0.0
    """Wall time of generation."""
    model: str = ""
    """Which model produced it."""
    native_tool_calls: list[dict[str, Any]] | None = None
    """Calls as the server returned them (OpenAI `tool_calls`), when it parsed them itself."""

    def as_action(self) -> dict[str, Any]:
        """The turn as a `ToolUseEnv.step` action (raw text plus what was sampled)."""
        action = {
            "role": "assistant",
            "content": self.text,
            "token_ids": self.token_ids,
            "logprobs": self.logprobs,
            "finish_reason": self.finish_reason,
            "gen_ms": self.gen_ms,
        }
        if self.native_tool_calls:
            action["tool_calls"] = self.native_tool_calls
        return action


class ChatModel(Protocol):
    name: str
    tool_format: str

    async def generate(
        self,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]] | None = None,
        sampling: SamplingParams | None = None,
    ) -> Completion:
        """One assistant turn."""
