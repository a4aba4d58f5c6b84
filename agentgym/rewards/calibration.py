"""Closed-loop calibration of the self-critique critic on tasks with verifiable rewards.

In: a `SelfCritiqueReward` (its critic) and groups of (task, trajectories) whose trajectories carry
their rubric result — the verifiable reward. Out (`calibrate`): a `CalibrationReport` with

- `agreement`: over the critic's comparisons of two rollouts with *distinct* verifiable scores,
  how often its verdict names the higher-scored one. Comparisons of equally scored rollouts are
  excluded and counted (`verifiable_ties`); a `tie` verdict or an unreadable one on a distinct pair
  counts against the critic (`critic_ties`, `unparseable`), so a critic that never commits cannot
  look calibrated. Each order of a pair is one comparison (a critic always answering "A" agrees
  on exactly half). `rate` is None when nothing was comparable.
- `examples`: critic training examples from those same on-policy comparisons, as OpenAI chat
  JSONL rows (`{"messages", "tools", "metadata"}`, the `openai` SFT format): the messages are the
  exact comparison prompt, the target is the verdict the verifiable ordering implies, with the
  reason slot filled minimally. `write_examples` writes them for the trainer to SFT the critic on.

`AgreementHistory` appends one JSONL row per training step (step, rate, counts) so agreement can be
followed over training. `CriticGate` maps a measured agreement to the critic's weight — 0 below
`floor`, linear up to `full_weight` at `ceiling` — and `gate.apply(mix, name, rate)` returns a new
`RewardMix` with that component's weight tied to it. Nothing here mutates a trajectory or a mix.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from agentgym.rewards.base import Component, RewardMix
from agentgym.rewards.critique import Comparison, SelfCritiqueReward
from agentgym.spec.task import TaskSpec
from agentgym.spec.trajectory import Trajectory

TIE_EPS = 1e-9
"""Verifiable scores closer than this are a tie."""


@dataclass(slots=True)
class Agreement:
    """Counts of the critic's comparisons against the verifiable ordering."""

    agree: int = 0
    disagree: int = 0
    """The critic preferred the lower-scored rollout."""
    critic_ties: int = 0
    """The critic said tie although the scores differ."""
    unparseable: int = 0
    """The critic's verdict could not be read (on a pair with distinct scores)."""
    verifiable_ties: int = 0
    """Comparisons excluded because both rollouts scored the same."""

    @property
    def judged(self) -> int:
        return self.agree + self.disagree + self.critic_ties + self.unparseable

    @property
    def rate(self) -> float | None:
        return self.agree / self.judged if self.judged else None

    def add(self, other: Agreement) -> None:
        for k in ("agree", "disagree", "critic_ties", "unparseable", "verifiable_ties"):
            setattr(self, k, getattr(self, k) + getattr(other, k))

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "judged": self.judged, "rate": self.rate}


def verifiable_scores(trajectories: Sequence[Trajectory]) -> list[float]:
    """Each trajectory's rubric score; refuses a trajectory that was never graded."""
    out = []
    for t in trajectories:
        if t.rubric is None:
            raise ValueError(f"trajectory {t.id!r} has no rubric result: calibration needs verifiable scores")
        out.append(t.rubric.score)
    return out


def agreement(comparisons: Iterable[Comparison], values: Sequence[float]) -> Agreement:
    """Agreement of comparisons with `values` (the verifiable score of each rollout, by index)."""
    a = Agreement()
    for c in comparisons:
        d = values[c.first] - values[c.second]
        if abs(d) <= TIE_EPS:
            a.verifiable_ties += 1
        elif c.verdict is None:
            a.unparseable += 1
        elif c.verdict == "tie":
            a.critic_ties += 1
        elif (c.verdict == "A") == (d > 0):
            a.agree += 1
        else:
            a.disagree += 1
    return a


def training_example(c: Comparison, values: Sequence[float], task_id: str) -> dict[str, Any] | None:
    """The comparison's prompt with the verdict the verifiable ordering implies; None on a tie."""
    d = values[c.first] - values[c.second]
    if abs(d) <= TIE_EPS:
        return None
    win, lose = ("A", "B") if d > 0 else ("B", "A")
    target = (
        f"Reason: Response {win} does what the task rubric asks; response {lose} falls short of it.\n"
        f"<verdict>{win}</verdict>"
    )
    return {
        "messages": [*c.messages, {"role": "assistant", "content": target}],
        "tools": [],
        "metadata": {
            "task_id": task_id,
            "shown_a": c.first,
            "shown_b": c.second,
            "score_a": values[c.first],
            "score_b": values[c.second],
            "target": win,
            "critic_verdict": c.verdict,
        },
    }


@dataclass(slots=True)
class CalibrationReport:
    agreement: Agreement = field(default_factory=Agreement)
    per_task: dict[str, Agreement] = field(default_factory=dict)
    examples: list[dict[str, Any]] = field(default_factory=list)


async def calibrate(
    reward: SelfCritiqueReward,
    groups: Iterable[tuple[TaskSpec, Sequence[Trajectory]]],
    *,
    only_disagreements: bool = False,
) -> CalibrationReport:
    """Run the critic on every group and compare with the verifiable scores (see module doc).
    `only_disagreements` keeps training examples only where the critic did not already agree."""
    report = CalibrationReport()
    for task, trajs in groups:
        values = verifiable_scores(trajs)
        result = await reward.compare_group(task, trajs)
        a = agreement(result.comparisons, values)
        report.per_task[task.id] = a
        report.agreement.add(a)
        for c in result.comparisons:
            ex = training_example(c, values, task.id)
            if ex is None or (only_disagreements and ex["metadata"]["target"] == c.verdict):
                continue
            report.examples.append(ex)
    return report


def write_examples(path: str | Path, examples: Iterable[dict[str, Any]]) -> int:
    """Write training examples as JSONL; returns how many."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    with open(p, "w", encoding="utf-8") as f:
        for ex in examples:
            f.write(json.dumps(ex, ensure_ascii=False) + "\n")
            n += 1
    return n


class AgreementHistory:
    """Agreement over training steps, one JSONL row per step."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def record(self, step: int, a: Agreement, **extra: Any) -> dict[str, Any]:
        row = {"step": step, **a.as_dict(), **extra}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(row) + "\n")
        return row

    def read(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        return [json.loads(line) for line in self.path.read_text(encoding="utf-8").splitlines() if line]


@dataclass(slots=True, frozen=True)
class CriticGate:
    """critic_weight = f(agreement): 0 below `floor`, linear to `full_weight` at `ceiling`."""

    floor: float = 0.6
    ceiling: float = 0.8
    full_weight: float = 1.0

    def __post_init__(self) -> None:
        if not 0 <= self.floor < self.ceiling <= 1:
            raise ValueError(
                f"need 0 <= floor < ceiling <= 1, got floor={self.floor}, ceiling={self.ceiling}"
            )
        if self.full_weight < 0:
            raise ValueError(f"full_weight must be >= 0, got {self.full_weight}")

    def weight(self, rate: float | None) -> float:
        """The weight for a measured agreement rate (an unmeasured critic, None, gets 0)."""
        if rate is None or rate < self.floor:
            return 0.0
        return self.full_weight * min(1.0, (rate - self.floor) / (self.ceiling - self.floor))

    def apply(self, mix: RewardMix, name: str, rate: float | None) -> RewardMix:
        """A copy of `mix` whose component `name` has the weight `weight(rate)`."""
        if name not in {c.reward.name for c in mix.components}:
            raise KeyError(f"no component {name!r} in the mix: {[c.reward.name for c in mix.components]}")
        w = self.weight(rate)
        return RewardMix(
            [Component(c.reward, w if c.reward.name == name else c.weight, c.gate) for c in mix.components]
        )
