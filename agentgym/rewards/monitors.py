"""Reward-hacking monitors: make the known failure modes of shaped rewards visible during training.

Two monitors, both pure bookkeeping over numbers the trainer already has (they never change a
reward or a trajectory):

- `FormatVsSuccessMonitor` is fed, once per training step, the step's mean reward components
  (`component_means(trajectories)`: every `reward_components` key, plus `success`, the rubric pass
  rate). Over the last `window` steps it fits a least-squares line to the format reward and to
  success. It fires when the format reward rises significantly (slope >= `min_rise` per step and
  t = slope / stderr >= `t_min`) while success does not keep up (success's slope is not both
  significant, t >= `t_min`, and at least `keep_up` times the format slope): the policy is learning
  the format, not the task.
- `DriftMonitor` holds a fixed set of trajectories with known outcomes (by default their rubric
  score) and re-scores them with a reward (a judge, a self-critique critic: any `Reward`) on every
  `check()`. It reports the mean absolute shift of the scores from the first check, and the
  pairwise agreement of the scores with the known outcomes (the share of pairs with different
  known outcomes that the reward orders the same way; a tie in the reward counts one half). It
  fires when the shift exceeds `max_shift`, when agreement has dropped by more than
  `max_agreement_drop` since the first check, or when it falls below `min_agreement`.

Each returns a typed record (`MonitorAlert`, `DriftReport`) and `metrics()` with flat
`monitor/<name>/<key>` numbers for a metrics logger.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from agentgym.rewards.base import Reward
from agentgym.spec.base import Record
from agentgym.spec.task import TaskSpec
from agentgym.spec.trajectory import Trajectory


class MonitorAlert(Record):
    """A monitor fired."""

    monitor: str
    """Which monitor."""
    step: int
    """Training step at which it fired."""
    message: str
    """What it saw, in words."""
    values: dict[str, float]
    """The numbers behind it (slopes, t-statistics)."""


def component_means(trajectories: Sequence[Trajectory]) -> dict[str, float]:
    """One step's means: every `reward_components` key (over the trajectories that have it),
    `reward`, and `success` (the share of graded trajectories whose rubric passed)."""
    sums: dict[str, float] = defaultdict(float)
    counts: dict[str, int] = defaultdict(int)
    for t in trajectories:
        for k, v in t.reward_components.items():
            sums[k] += v
            counts[k] += 1
    out = {k: sums[k] / counts[k] for k in sums}
    if trajectories:
        out["reward"] = sum(t.reward for t in trajectories) / len(trajectories)
    graded = [t.rubric.passed for t in trajectories if t.rubric is not None]
    if graded:
        out["success"] = sum(graded) / len(graded)
    return out


@dataclass(frozen=True, slots=True)
class Trend:
    """A least-squares line through (step, value) points."""

    slope: float
    """Change per step."""
    t: float
    """slope / its standard error (±inf for a perfect fit with a nonzero slope, 0 for a flat one)."""
    n: int
    """Points fitted."""


def trend(steps: Sequence[float], values: Sequence[float]) -> Trend:
    """Ordinary least squares: slope = Sxy / Sxx, stderr = sqrt(SSR / (n - 2) / Sxx)."""
    n = len(steps)
    if n != len(values) or n < 3:
        raise ValueError(f"a trend needs >= 3 (step, value) pairs of equal length, got {n} and {len(values)}")
    mx, my = sum(steps) / n, sum(values) / n
    sxx = sum((x - mx) ** 2 for x in steps)
    if sxx == 0:
        raise ValueError("a trend needs at least two distinct steps")
    slope = sum((x - mx) * (y - my) for x, y in zip(steps, values, strict=True)) / sxx
    ssr = sum((y - my - slope * (x - mx)) ** 2 for x, y in zip(steps, values, strict=True))
    se = math.sqrt(ssr / (n - 2) / sxx)
    if se >= 1e-12:
        return Trend(slope, slope / se, n)
    return Trend(slope, 0.0 if abs(slope) < 1e-12 else math.copysign(math.inf, slope), n)


class FormatVsSuccessMonitor:
    """Fires when the format reward rises while task success does not; see module doc."""

    name = "format_vs_success"

    def __init__(
        self,
        *,
        format_key: str = "gate/format_gate",
        success_key: str = "success",
        window: int = 20,
        min_points: int = 5,
        min_rise: float = 0.005,
        t_min: float = 2.0,
        keep_up: float = 0.25,
    ) -> None:
        if not 3 <= min_points <= window:
            raise ValueError(f"need 3 <= min_points <= window, got min_points={min_points}, window={window}")
        if min_rise <= 0 or t_min <= 0 or keep_up < 0:
            raise ValueError("min_rise and t_min must be > 0 and keep_up >= 0")
        self.format_key, self.success_key = format_key, success_key
        self.window, self.min_points = window, min_points
        self.min_rise, self.t_min, self.keep_up = min_rise, t_min, keep_up
        self.history: list[tuple[int, float, float]] = []
        self.alerts: list[MonitorAlert] = []
        self._last: dict[str, float] = {}

    def observe(self, step: int, means: Mapping[str, float]) -> MonitorAlert | None:
        """Record one step's means; the alert when the monitor fires at this step, else None."""
        missing = [k for k in (self.format_key, self.success_key) if k not in means]
        if missing:
            raise KeyError(f"{self.name}: step {step} lacks {missing}; it has {sorted(means)}")
        if self.history and step <= self.history[-1][0]:
            raise ValueError(f"{self.name}: steps must increase, got {step} after {self.history[-1][0]}")
        self.history.append((step, float(means[self.format_key]), float(means[self.success_key])))
        recent = self.history[-self.window :]
        if len(recent) < self.min_points:
            self._last = {"fired": 0.0}
            return None
        steps = [float(s) for s, _, _ in recent]
        fmt = trend(steps, [f for _, f, _ in recent])
        suc = trend(steps, [s for _, _, s in recent])
        rises = fmt.slope >= self.min_rise and fmt.t >= self.t_min
        keeps_up = suc.t >= self.t_min and suc.slope >= self.keep_up * fmt.slope
        fired = rises and not keeps_up
        values = {
            "format_slope": fmt.slope,
            "format_t": fmt.t,
            "success_slope": suc.slope,
            "success_t": suc.t,
        }
        self._last = {**values, "fired": float(fired)}
        if not fired:
            return None
        alert = MonitorAlert(
            monitor=self.name,
            step=step,
            message=(
                f"{self.format_key} rises {fmt.slope:+.4f}/step (t={fmt.t:.1f}) over the last {fmt.n} steps "
                f"while {self.success_key} moves {suc.slope:+.4f}/step (t={suc.t:.1f}): "
                "the policy may be learning the format, not the task"
            ),
            values=values,
        )
        self.alerts.append(alert)
        return alert

    def metrics(self) -> dict[str, float]:
        """The latest slopes, t-statistics and whether it fired, as `monitor/<name>/<key>`."""
        return {f"monitor/{self.name}/{k}": v for k, v in self._last.items()}


@dataclass(frozen=True, slots=True)
class DriftCase:
    """One fixed trajectory of the drift set, with its known outcome (None: its rubric score)."""

    task: TaskSpec
    trajectory: Trajectory
    known: float | None = None


class DriftReport(Record):
    """One drift check."""

    check: int
    """0 for the first check (the reference)."""
    n: int
    """Trajectories re-scored."""
    scores: tuple[float, ...]
    """The reward's scores, in case order."""
    mean_shift: float
    """Mean |score - score at the first check|."""
    max_shift: float
    """Largest |score - score at the first check|."""
    agreement: float | None
    """Pairwise agreement of the scores with the known outcomes (None: no pair differs in outcome)."""
    agreement_drop: float
    """Agreement at the first check minus agreement now (0 when either is None)."""
    mae_known: float
    """Mean |score - known outcome| (meaningful when the reward shares the outcomes' scale)."""
    fired: bool
    """A threshold was crossed."""
    message: str
    """Why it fired, or a summary."""


def pairwise_agreement(
    scores: Sequence[float], known: Sequence[float], groups: Sequence[str]
) -> float | None:
    """Share of pairs (in the same group) with different known outcomes that `scores` orders the same
    way as `known`; a tie in `scores` counts 1/2. None without such pairs."""
    agree, pairs = 0.0, 0
    for i in range(len(scores)):
        for j in range(i + 1, len(scores)):
            if groups[i] != groups[j] or known[i] == known[j]:
                continue
            pairs += 1
            d = (scores[i] - scores[j]) * (known[i] - known[j])
            agree += 1.0 if d > 0 else 0.5 if scores[i] == scores[j] else 0.0
    return agree / pairs if pairs else None


class DriftMonitor:
    """Re-scores a fixed trajectory set with a reward and reports drift; see module doc."""

    name = "drift"

    def __init__(
        self,
        reward: Reward,
        cases: Sequence[DriftCase],
        *,
        max_shift: float = 0.1,
        max_agreement_drop: float = 0.1,
        min_agreement: float | None = None,
        pairs: Literal["all", "within_task"] = "all",
    ) -> None:
        if not cases:
            raise ValueError("a drift monitor needs at least one trajectory")
        known = []
        for c in cases:
            if c.known is None and c.trajectory.rubric is None:
                raise ValueError(
                    f"trajectory {c.trajectory.id!r} has neither a known outcome nor a rubric result"
                )
            known.append(c.known if c.known is not None else c.trajectory.rubric.score)  # type: ignore[union-attr]
        if pairs not in ("all", "within_task"):
            raise ValueError(f"pairs must be 'all' or 'within_task', got {pairs!r}")
        self.reward, self.cases, self.known = reward, list(cases), known
        self.max_shift, self.max_agreement_drop, self.min_agreement = (
            max_shift,
            max_agreement_drop,
            min_agreement,
        )
        self.groups = [c.task.id if pairs == "within_task" else "" for c in cases]
        self.reports: list[DriftReport] = []

    async def _scores(self) -> list[float]:
        by_task: dict[str, list[int]] = defaultdict(list)
        for i, c in enumerate(self.cases):
            by_task[c.task.id].append(i)
        out = [0.0] * len(self.cases)
        for idx in by_task.values():
            got = await self.reward.score(self.cases[idx[0]].task, [self.cases[i].trajectory for i in idx])
            if len(got) != len(idx):
                raise ValueError(f"reward {self.reward.name!r} returned {len(got)} scores for {len(idx)}")
            for i, s in zip(idx, got, strict=True):
                out[i] = s.value
        return out

    async def check(self) -> DriftReport:
        """Re-score the set and compare with the first check and with the known outcomes."""
        scores = await self._scores()
        first = self.reports[0] if self.reports else None
        ref = list(first.scores) if first else scores
        shifts = [abs(a - b) for a, b in zip(scores, ref, strict=True)]
        agreement = pairwise_agreement(scores, self.known, self.groups)
        drop = (
            first.agreement - agreement
            if first is not None and first.agreement is not None and agreement is not None
            else 0.0
        )
        mean_shift = sum(shifts) / len(shifts)
        why = []
        if mean_shift > self.max_shift:
            why.append(
                f"scores shifted by {mean_shift:.3f} on average since the first check (> {self.max_shift})"
            )
        if drop > self.max_agreement_drop:
            why.append(f"agreement with known outcomes fell by {drop:.3f} (> {self.max_agreement_drop})")
        if self.min_agreement is not None and agreement is not None and agreement < self.min_agreement:
            why.append(f"agreement with known outcomes is {agreement:.3f} (< {self.min_agreement})")
        summary = (
            f"mean shift {mean_shift:.3f}, agreement {'n/a' if agreement is None else f'{agreement:.3f}'}"
        )
        report = DriftReport(
            check=len(self.reports),
            n=len(scores),
            scores=tuple(scores),
            mean_shift=mean_shift,
            max_shift=max(shifts),
            agreement=agreement,
            agreement_drop=drop,
            mae_known=sum(abs(s - k) for s, k in zip(scores, self.known, strict=True)) / len(scores),
            fired=bool(why),
            message=f"{self.reward.name}: " + ("; ".join(why) if why else summary),
        )
        self.reports.append(report)
        return report

    def metrics(self) -> dict[str, float]:
        """The latest check's numbers as `monitor/drift/<key>`."""
        if not self.reports:
            return {}
        r = self.reports[-1]
        out = {"mean_shift": r.mean_shift, "max_shift": r.max_shift, "mae_known": r.mae_known}
        out |= {"agreement_drop": r.agreement_drop, "fired": float(r.fired)}
        if r.agreement is not None:
            out["agreement"] = r.agreement
        return {f"monitor/{self.name}/{k}": v for k, v in out.items()}
