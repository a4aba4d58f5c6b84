"""Picklable recipes for what a rollout worker builds: a policy (`PolicySpec`) and an env (`EnvSpec`).

A rollout worker in another process (a Ray actor) receives these small frozen records instead of
live objects, since a loaded model or suite does not cross a process boundary, and calls
`factory()` for a maker of fresh policies or envs; the model, the suite and a model-played user are
loaded once per factory. The CLI builds its local policies from the same `PolicySpec`, so a local run
and a scaled-out run act alike. Policy kinds are looked up in `POLICIES` ('oracle', 'noop'); any
other name is a model spec for `agentgym.models.load_model` ('embedded', 'hf:<path>',
'openai:<url>#<model>'). A suite given as an existing path is made absolute, so workers started in
another folder find it (on a multi-node cluster the path must exist on every node).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from pydantic import Field, field_validator

from agentgym.env.tool_env import EnvConfig, ToolUseEnv
from agentgym.env.user import UserSimulator
from agentgym.models.base import SamplingParams
from agentgym.policies.base import Policy
from agentgym.spec.base import Record
from agentgym.suites.suite import TaskSuite, load_suite


def _oracle(spec: PolicySpec) -> Callable[[], Policy]:
    from agentgym.policies import OraclePolicy

    return lambda: OraclePolicy(spec.tool_format)


def _noop(spec: PolicySpec) -> Callable[[], Policy]:
    from agentgym.policies import NoopPolicy

    return NoopPolicy


POLICIES: dict[str, Callable[[PolicySpec], Callable[[], Policy]]] = {"oracle": _oracle, "noop": _noop}
"""Policies that need no model, by name; every other `PolicySpec.model` is a model spec."""


class PolicySpec(Record):
    """What acts in the episodes."""

    model: str = "oracle"
    """'oracle', 'noop', or a model spec ('embedded', 'hf:<path>', 'openai:<url>#<model>', a path)."""
    sampling: SamplingParams = Field(default_factory=SamplingParams)
    """How a model samples each turn (unused by oracle and noop)."""
    tool_format: str = "hermes"
    """Tool-call format the oracle writes its calls in."""

    @property
    def needs_model(self) -> bool:
        return self.model not in POLICIES

    def factory(self) -> Callable[[], Policy]:
        """A maker of fresh policies; a model is loaded now, once, and shared by them."""
        if not self.needs_model:
            return POLICIES[self.model](self)
        from agentgym.models import load_model
        from agentgym.policies import ModelPolicy

        model, sampling = load_model(self.model), self.sampling
        return lambda: ModelPolicy(model, sampling)


class EnvSpec(Record):
    """Which episodes run, and how."""

    suite: str
    """Suite name (a folder of tasks/) or path."""
    config: EnvConfig = Field(default_factory=EnvConfig)
    """How episodes run (turn limit, faults, ...)."""
    user_model: str | None = None
    """A model spec that plays the simulated user; None: the task's scripted replies."""
    user_sampling: SamplingParams = Field(default_factory=lambda: SamplingParams(max_new_tokens=96))
    """How the user model samples its replies."""
    user_turns: int = Field(default=4, ge=0)
    """Most replies of a model-played user per episode."""

    @field_validator("suite")
    @classmethod
    def _absolute_path(cls, v: str) -> str:
        return str(Path(v).resolve()) if Path(v).exists() else v

    def user_factory(self) -> Callable[[], UserSimulator] | None:
        """A maker of the simulated user (the user model loaded now, once); None for scripted users."""
        if self.user_model is None:
            return None
        from agentgym.env.user import ModelUser
        from agentgym.models import load_model

        model, sampling, turns = load_model(self.user_model), self.user_sampling, self.user_turns
        return lambda: ModelUser(model, sampling=sampling, max_user_turns=turns)

    def factory(self, suite: TaskSuite | None = None) -> Callable[[], ToolUseEnv]:
        """A maker of fresh envs over the suite (loaded now, or the already loaded `suite`)."""
        s = suite if suite is not None else load_suite(self.suite)
        make_user, config = self.user_factory(), self.config
        return lambda: ToolUseEnv(s, config=config, user=make_user() if make_user else None)
