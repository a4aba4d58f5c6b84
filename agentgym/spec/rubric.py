"""Rubric: the explicit, weighted success criteria a task is scored by.

Six criterion kinds, discriminated by `kind`:

- `state` — the final world state has (`exists`), lacks (`absent`) or has exactly `count` records of
  a collection matching conditions; values compared after normalisation, never by raw hash.
- `call` — the expected tool-use pattern: a tool, argument constraints, how many times.
- `checkpoint` — calls that must happen in this order (each before the next).
- `answer` — facts the final reply must state (partial credit per fact).
- `forbidden` — a call, a state or a change that must never happen; a hard gate (score 0 if hit).
- `judge` — a natural-language criterion for an LLM judge; stored and reported, graded by a model.
- `tests` — hidden unit tests run by the sandbox backend when the episode ends; the score is the
  share of test methods that pass (real execution, not a model's opinion).

Scoring (pure code, `agentgym.grading`): weighted mean over graded, non-gate criteria, times 0 if
any forbidden criterion is violated. This module is data only.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from agentgym.spec.base import JsonDict, Record
from agentgym.spec.tool import Condition


class _Criterion(Record):
    id: str
    """Unique within the rubric; referenced by reports and per-turn rewards."""
    description: str = ""
    """What the criterion checks, in words (for reports and judges)."""
    weight: float = Field(default=1.0, ge=0)
    """Relative weight in the score (ignored for gates)."""


class CallPattern(Record):
    """Matches tool calls: by tool name, argument constraints and outcome."""

    tool: str
    """Exposed tool name, a glob over names (`calendar__*_events`), or alternatives separated by `|`
    (`shop__get_order|shop__find_orders`, each a name or glob) when several tools serve."""
    args: JsonDict = Field(default_factory=dict)
    """Arguments that must be present with these values (normalised compare); others are free."""
    succeeded: bool | None = True
    """True: only calls that succeeded count; False: only failed ones; None: either."""


class StateCriterion(_Criterion):
    kind: Literal["state"] = "state"
    """Criterion kind (the discriminator)."""
    collection: str
    """Collection inspected in the final state."""
    where: tuple[Condition, ...] = ()
    """Conditions a record must meet (all of them)."""
    expect: Literal["exists", "absent", "count"] = "exists"
    """At least one match, no match, or exactly `count` matches."""
    count: int | None = None
    """Required number of matches when expect is 'count'."""

    @model_validator(mode="after")
    def _count_given(self) -> StateCriterion:
        if (self.expect == "count") != (self.count is not None):
            raise ValueError("count is required exactly when expect == 'count'")
        return self


class CallCriterion(_Criterion, CallPattern):
    kind: Literal["call"] = "call"
    """Criterion kind (the discriminator)."""
    min_count: int = Field(default=1, ge=0)
    """Fewest matching calls that satisfy the criterion."""
    max_count: int | None = None
    """Most matching calls allowed (None: no limit)."""


class CheckpointCriterion(_Criterion):
    kind: Literal["checkpoint"] = "checkpoint"
    """Criterion kind (the discriminator)."""
    sequence: tuple[CallPattern, ...] = Field(min_length=2)
    """Calls that must all happen, each (first occurrence) after the previous one."""


class AnswerCriterion(_Criterion):
    kind: Literal["answer"] = "answer"
    """Criterion kind (the discriminator)."""
    facts: tuple[str, ...] = Field(min_length=1)
    """Strings the reply must contain (case, spacing and number format normalised; whole tokens)."""
    scope: Literal["final", "any"] = "final"
    """Where the facts must appear: the final reply, or any assistant reply of the dialogue."""


class ForbiddenCriterion(_Criterion):
    kind: Literal["forbidden"] = "forbidden"
    """Criterion kind (the discriminator)."""
    call: CallPattern | None = None
    """A call that must never be made (succeeded=None matches attempts too)."""
    collection: str | None = None
    """With `where`: a state that must not hold at the end (any matching record violates)."""
    where: tuple[Condition, ...] = ()
    """Conditions for the forbidden state."""
    allow_changes: tuple[str, ...] | None = None
    """Collateral-damage guard: existing records outside these 'collection/id' glob patterns must
    end unchanged (trace fields ignored). New records are not collateral; bound them with `state`."""

    @model_validator(mode="after")
    def _one_rule(self) -> ForbiddenCriterion:
        rules = [self.call is not None, self.collection is not None, self.allow_changes is not None]
        if sum(rules) != 1:
            raise ValueError(
                "a forbidden criterion needs exactly one of call, collection(+where), allow_changes"
            )
        return self


class JudgeCriterion(_Criterion):
    kind: Literal["judge"] = "judge"
    """Criterion kind (the discriminator)."""
    criterion: str
    """The natural-language standard an LLM judge applies."""
    choices: tuple[str, ...] = ("no", "partly", "yes")
    """Ordered verdicts from worst to best; mapped evenly onto [0, 1]."""


class TestsCriterion(_Criterion):
    kind: Literal["tests"] = "tests"
    """Criterion kind (the discriminator)."""
    files: dict[str, str] = Field(min_length=1)
    """Hidden test files (path relative to the workspace → content), written only at the end."""
    pattern: str = "test_*.py"
    """Which of them `unittest` discovers."""
    timeout_s: float = Field(default=60.0, gt=0)
    """Wall-clock limit of the whole test run."""


Criterion = Annotated[
    StateCriterion
    | CallCriterion
    | CheckpointCriterion
    | AnswerCriterion
    | ForbiddenCriterion
    | JudgeCriterion
    | TestsCriterion,
    Field(discriminator="kind"),
]


class Rubric(Record):
    """Weighted criteria; see module doc for scoring."""

    criteria: tuple[Criterion, ...] = Field(min_length=1)
    """The criteria, in report order."""
    pass_threshold: float = Field(default=1.0, ge=0, le=1)
    """An episode passes when its score reaches this."""

    @model_validator(mode="after")
    def _unique_ids(self) -> Rubric:
        ids = [c.id for c in self.criteria]
        if len(ids) != len(set(ids)):
            raise ValueError(f"criterion ids must be unique: {ids}")
        if not any(c.kind not in ("forbidden",) and c.weight > 0 for c in self.criteria):
            raise ValueError("a rubric needs at least one weighted, non-gate criterion")
        return self
