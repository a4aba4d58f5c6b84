"""Reward: the one contract every reward component meets, and `RewardMix`, which combines them.

A reward scores a *group* of finished trajectories of one task (a GRPO group, or a group of one):
`await reward.score(task, trajectories)` returns one `Score` per trajectory, in order. Rewards
that look at one trajectory at a time subclass `TrajectoryReward` and implement `score_one`;
rewards that compare trajectories (self-critique) implement `score` directly. A reward never
mutates a trajectory.

`RewardMix` holds named components with weights and an optional set of *gates*: a gate's score
multiplies the whole mixed reward when it is positive (a format gate at 0 zeroes it, as Magistral
does; a negative sum of penalties is never raised by a gate). `apply` returns new trajectories
whose `reward` is the mix and whose `reward_components` hold every component's raw score under its
name (and `gate/<name>` for gates), so metrics can show each one separately. Details (a judge's reasons, penalty triggers) ride along in `Score.detail` and are
copied into `metrics` as `reward/<name>/<key>` when numeric.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from agentgym.spec.task import TaskSpec
from agentgym.spec.trajectory import Trajectory


@dataclass(slots=True)
class Score:
    """One component's score for one trajectory."""

    value: float
    """The component's raw value (penalties are negative, gates are in [0, 1])."""
    detail: dict[str, Any] = field(default_factory=dict)
    """Why: numeric entries become metrics, the rest is kept for inspection."""


@runtime_checkable
class Reward(Protocol):
    name: str

    async def score(self, task: TaskSpec, trajectories: Sequence[Trajectory]) -> list[Score]:
        """One score per trajectory, in order."""


class TrajectoryReward:
    """A reward that scores each trajectory on its own."""

    name: str = "reward"

    def score_one(self, task: TaskSpec, trajectory: Trajectory) -> Score:
        raise NotImplementedError

    async def score(self, task: TaskSpec, trajectories: Sequence[Trajectory]) -> list[Score]:
        return [self.score_one(task, t) for t in trajectories]


class RubricReward(TrajectoryReward):
    """The verifiable reward: the rubric score the environment already computed."""

    name = "rubric"

    def score_one(self, task: TaskSpec, trajectory: Trajectory) -> Score:
        r = trajectory.rubric
        if r is None:
            return Score(0.0, {"graded": 0})
        return Score(r.score, {"passed": float(r.passed), "gated": float(r.gated)})


@dataclass(slots=True)
class Component:
    reward: Reward
    weight: float = 1.0
    gate: bool = False
    """A gate multiplies the mixed reward by its score instead of adding to it."""


class RewardMix:
    """Weighted components plus gates; see module doc."""

    def __init__(self, components: Sequence[Component]) -> None:
        names = [c.reward.name for c in components]
        if len(set(names)) != len(names):
            raise ValueError(f"reward component names must be unique, got {names}")
        if not components:
            raise ValueError("a reward mix needs at least one component")
        self.components = list(components)

    async def scores(self, task: TaskSpec, trajectories: Sequence[Trajectory]) -> list[dict[str, Score]]:
        """Every component's score for every trajectory: one dict per trajectory."""
        per: list[dict[str, Score]] = [{} for _ in trajectories]
        for c in self.components:
            got = await c.reward.score(task, trajectories)
            if len(got) != len(trajectories):
                raise ValueError(
                    f"reward {c.reward.name!r} returned {len(got)} scores for {len(trajectories)} trajectories"
                )
            for d, s in zip(per, got, strict=True):
                d[c.reward.name] = s
        return per

    def combine(self, scores: dict[str, Score]) -> float:
        """The mixed scalar: the weighted sum of additive components, times the product of gates
        when that sum is positive. A gate never raises a reward: a negative sum (penalties beyond
        the task score) stays as it is, so a malformed trajectory cannot escape its penalties by
        being gated to 0."""
        total, gate = 0.0, 1.0
        for c in self.components:
            v = scores[c.reward.name].value
            if c.gate:
                gate *= v
            else:
                total += c.weight * v
        return total * gate if total > 0 else total

    async def apply(self, task: TaskSpec, trajectories: Sequence[Trajectory]) -> list[Trajectory]:
        """Trajectories with `reward`, `reward_components` and reward metrics filled in."""
        out = []
        for traj, sc in zip(trajectories, await self.scores(task, trajectories), strict=True):
            components: dict[str, float] = {}
            metrics = dict(traj.metrics)
            for c in self.components:
                s = sc[c.reward.name]
                components[("gate/" if c.gate else "") + c.reward.name] = s.value
                for k, v in s.detail.items():
                    if isinstance(v, int | float):
                        metrics[f"reward/{c.reward.name}/{k}"] = float(v)
            out.append(
                traj.model_copy(
                    update={"reward": self.combine(sc), "reward_components": components, "metrics": metrics}
                )
            )
        return out
