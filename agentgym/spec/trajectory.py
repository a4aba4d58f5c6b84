"""Trajectory: one whole episode, in one format for RL, SFT export and benchmarks.

Messages are OpenAI chat format (`tool_calls` with JSON-string arguments, `tool` results answering
them by `tool_call_id`, reasoning kept apart in `reasoning_content`). Per assistant turn, a
`TurnRecord` keeps what the model actually sampled (token ids, logprobs — never re-tokenised), the
outcome of every call (errors typed and counted), the world-state changes and timings. The episode
ends with the rubric breakdown and the reward components.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from agentgym.spec.base import JsonDict, Record

ErrorKind = Literal[
    "parse_error",  # the call's syntax could not be read
    "unknown_tool",  # no tool of that name on this agent
    "invalid_arguments",  # arguments fail the tool's input schema
    "not_found",  # a referenced record does not exist
    "precondition_failed",  # the record is not in a state that allows the operation
    "conflict",  # e.g. a unique field already taken
    "timeout",  # injected or real: the tool did not answer in time
    "rate_limited",  # injected or real: too many calls
    "server_error",  # injected or real: the tool's server failed
    "invalid_output",  # the tool's result does not match its output schema
    "backend_error",  # the backend itself failed (crashed server, dead container)
    "tool_error",  # a real tool ran and reported an error of its own (MCP isError)
    "call_limit",  # more calls in one turn than the environment allows
]
"""Every way a tool call can fail, each counted separately."""

TRANSIENT_ERRORS: frozenset[str] = frozenset({"timeout", "rate_limited", "server_error"})
"""Errors a retry of the same call may fix."""


class FunctionCall(Record):
    name: str
    """Tool name as the model wrote it (may be unknown)."""
    arguments: str
    """Arguments as a JSON string, exactly as OpenAI carries them (may be malformed)."""


class ToolCall(Record):
    id: str
    """Call id, answered by a tool message's tool_call_id."""
    type: Literal["function"] = "function"
    """Always 'function'."""
    function: FunctionCall
    """Name and arguments."""


class Message(Record):
    """An OpenAI chat message."""

    role: Literal["system", "user", "assistant", "tool"]
    """Who speaks."""
    content: str | None = None
    """Visible text (for assistant turns, with tool-call markup and reasoning removed)."""
    reasoning_content: str | None = None
    """Assistant reasoning (`<think>` blocks), kept apart and never parsed for calls."""
    tool_calls: tuple[ToolCall, ...] | None = None
    """Calls made in an assistant turn."""
    tool_call_id: str | None = None
    """For tool messages: the call answered."""
    name: str | None = None
    """For tool messages: the tool's name."""

    def openai(self) -> JsonDict:
        """The message as an OpenAI API dict (None fields dropped)."""
        return self.model_dump(exclude_none=True)


class Change(Record):
    """One record changed in the world: created (before None), deleted (after None) or updated."""

    collection: str
    """Collection name."""
    id: str
    """Record id."""
    before: JsonDict | None
    """Record before the change."""
    after: JsonDict | None
    """Record after the change."""


class CallOutcome(Record):
    """What happened to one call of a turn."""

    call_id: str
    """The call's id."""
    tool: str
    """Tool name as written (may be unknown or empty for unparseable calls)."""
    ok: bool
    """True when the tool ran and returned a result."""
    error: ErrorKind | None = None
    """Why it failed."""
    injected: bool = False
    """True when the failure was injected by controlled stochasticity."""
    cached: bool = False
    """True when the result came from the replay cache."""


class TurnRecord(Record):
    """One assistant turn and the environment's answer to it."""

    index: int
    """0-based turn number."""
    message_index: int
    """Index of the assistant message in `Trajectory.messages`."""
    token_ids: tuple[int, ...] | None = None
    """Token ids the model sampled for this turn, when the model reported them."""
    logprobs: tuple[float, ...] | None = None
    """Log-probabilities of those tokens under the sampling distribution."""
    policy_version: int | None = None
    """Version of the policy weights that sampled the turn (async training)."""
    finish_reason: str | None = None
    """Why generation stopped ('stop', 'length', ...)."""
    num_tokens: int = 0
    """Tokens the turn counted against the budget."""
    calls: tuple[CallOutcome, ...] = ()
    """Outcome of each call, in order."""
    changes: tuple[Change, ...] = ()
    """World-state changes the turn caused."""
    reward: float | None = None
    """Per-turn reward (checkpoint shaping), when computed."""
    env_ms: float = 0.0
    """Wall time the environment spent on the turn."""
    gen_ms: float | None = None
    """Wall time the model spent generating the turn."""


class CriterionResult(Record):
    id: str
    """Criterion id."""
    kind: str
    """Criterion kind."""
    weight: float
    """Its weight."""
    score: float | None
    """In [0, 1]; None when ungraded (judge without a judge model)."""
    detail: str = ""
    """Why, in words."""
    turn: int | None = None
    """Turn at which it was first satisfied (call/checkpoint), for per-turn rewards."""


class RubricResult(Record):
    score: float
    """Weighted score in [0, 1], 0 when a gate was violated."""
    passed: bool
    """Score reached the rubric's pass threshold."""
    gated: bool
    """A forbidden criterion was violated."""
    criteria: tuple[CriterionResult, ...]
    """Per-criterion breakdown, in rubric order."""
    ungraded: tuple[str, ...] = ()
    """Ids of criteria that need a judge and were not graded."""


class Trajectory(Record):
    """One episode."""

    id: str
    """Episode key: unique and stable for (task, seed, policy), used for resume."""
    task_id: str
    """Task played."""
    agent_id: str
    """Agent acting."""
    seed: int | None
    """Episode seed (drives injected faults and any sampling)."""
    policy: str
    """What acted: 'oracle', 'noop', or a model id."""
    tools: tuple[JsonDict, ...]
    """Tools offered, as OpenAI `tools` entries."""
    messages: tuple[Message, ...]
    """The conversation, system prompt first."""
    examples: int = Field(default=0, ge=0)
    """How many few-shot messages (`AgentSpec.examples`) follow the system prompt in `messages`:
    part of the prompt the policy saw, never graded, judged or trained on."""
    turns: tuple[TurnRecord, ...]
    """Per assistant turn."""
    state_diff: tuple[Change, ...] = ()
    """Initial → final state, normalised (trace fields dropped)."""
    rubric: RubricResult | None = None
    """Grading breakdown."""
    reward: float = 0.0
    """Final scalar reward."""
    reward_components: dict[str, float] = Field(default_factory=dict)
    """Named components the reward was combined from."""
    terminated: bool = False
    """The task ended (answered or the user stopped)."""
    truncated: bool = False
    """Cut off by the turn or token budget, or by the episode time limit."""
    end_reason: str = ""
    """answered, user_stop, max_turns, token_budget, timeout."""
    metrics: dict[str, float] = Field(default_factory=dict)
    """Counts: tool calls, errors by kind, tokens."""
    timings: dict[str, float] = Field(default_factory=dict)
    """Seconds: total, generation, environment."""
    versions: dict[str, str] = Field(default_factory=dict)
    """agentgym version, suite, model."""

    def dialogue(self) -> tuple[Message, ...]:
        """`messages` without the few-shot examples (system prompt, then the task's dialogue)."""
        return self.messages[:1] + self.messages[1 + self.examples :] if self.examples else self.messages
