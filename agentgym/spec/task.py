"""TaskSpec: what the user wants, the world it starts in, how success is scored, and a gold path.

A task belongs to one agent (its tools bound the solution). `gold` is a sequence of assistant turns
(tool calls, then a final answer) that provably solves it; the oracle policy replays it and
`agentgym tasks validate` checks that it scores 1.0 while doing nothing scores clearly less.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from agentgym.spec.base import JsonDict, Record
from agentgym.spec.rubric import Rubric
from agentgym.spec.world import WorldSnapshot

Difficulty = Literal["simple", "moderate", "complex"]


class GoldCall(Record):
    """One tool call of the gold path."""

    tool: str
    """Exposed tool name."""
    arguments: JsonDict = Field(default_factory=dict)
    """Arguments, exactly as the call is made."""


class GoldTurn(Record):
    """One assistant turn of the gold path: parallel calls, or a final answer."""

    calls: tuple[GoldCall, ...] = ()
    """Calls made in this turn, executed in order."""
    answer: str | None = None
    """Final reply text (only in a turn without calls)."""

    @model_validator(mode="after")
    def _calls_xor_answer(self) -> GoldTurn:
        if bool(self.calls) == (self.answer is not None):
            raise ValueError("a gold turn has either calls or an answer")
        return self


class UserProfile(Record):
    """The simulated user: who they are and what they know but have not said."""

    persona: str = "A busy professional who wants the job done."
    """Role-play description."""
    style: Literal["terse", "verbose", "confused", "impatient", "expert", "neutral"] = "neutral"
    """Conversational style."""
    hidden_facts: JsonDict = Field(default_factory=dict)
    """Facts the user reveals only when asked."""
    follow_ups: tuple[str, ...] = ()
    """Scripted replies, in order, for the deterministic scripted user."""


class TaskSpec(Record):
    """One task for one agent."""

    id: str
    """Unique id within its suite."""
    agent_id: str
    """The agent whose tools may be used."""
    instruction: str
    """The user's opening message."""
    initial_state: WorldSnapshot
    """World state at reset."""
    rubric: Rubric
    """How the episode is scored."""
    gold: tuple[GoldTurn, ...] = Field(min_length=1)
    """A path that solves the task (ends with an answer turn)."""
    difficulty: Difficulty = "simple"
    """From one call (simple) to many dependent calls with recovery (complex)."""
    split: Literal["train", "test"] = "train"
    """Dataset split."""
    user: UserProfile = Field(default_factory=UserProfile)
    """Simulated-user profile; single-turn unless follow-ups or a user model are configured."""
    max_turns: int = Field(default=12, ge=1)
    """Assistant turns before the episode is truncated."""
    tags: tuple[str, ...] = ()
    """Free labels (domain, skills)."""

    @model_validator(mode="after")
    def _gold_ends_with_answer(self) -> TaskSpec:
        if self.gold[-1].answer is None:
            raise ValueError("the gold path must end with an answer turn")
        return self
