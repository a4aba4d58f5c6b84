"""Reward-hacking monitors fed by the GRPO trainer, one observation per step.

In: the reward mix (to find which components exist) and, after each step, the step's metrics
(`reward/<component>` means and `pass_rate`, as `GRPOTrainer.train_step` logs them) and its scored
groups. Out: flat numbers merged into the step's metrics line, and one warning in the log the first
time a monitor fires. Nothing here changes a reward, a weight or a trajectory.

- `FormatVsSuccessMonitor` (`agentgym.rewards.monitors`) is fed the format component's mean and the
  pass rate, when the mix has a format component (`FORMAT_COMPONENTS`, gate or additive; the
  default mix's is the `format_gate` gate, logged as `reward/gate/format_gate`). Metrics:
  `monitor/format_vs_success` (1 when it fired at this step, else 0) and its slopes and t-statistics
  (`monitor/format_vs_success/<key>`). A mix without a format component feeds nothing.
- **Critic agreement**, when the mix has a self-critique component (`SelfCritiqueReward`): within each
  group, every pair of rollouts whose rubric scores differ is checked against the critic's scores
  (agree: the critic scored the better rollout higher; disagree; critic tie), as an
  `agentgym.rewards.calibration.Agreement`; `monitor/critic_agreement` is its rate (absent when no
  pair differed) with the counts beside it, and each step's row is appended to
  `<out>/critic_agreement.jsonl` (`AgreementHistory`).

`replay(rows)` feeds the format monitor the steps of an earlier run (the rows of `metrics.jsonl`
kept on resume), so a resumed run's trend windows continue where they stopped.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from agentgym.rewards.base import RewardMix
from agentgym.rewards.calibration import TIE_EPS, Agreement, AgreementHistory
from agentgym.rewards.critique import SelfCritiqueReward
from agentgym.rewards.monitors import FormatVsSuccessMonitor
from agentgym.spec.trajectory import Trajectory

log = logging.getLogger(__name__)

FORMAT_COMPONENTS = ("format_gate",)
"""Reward names taken as the format reward, first match wins."""


def critic_agreement(groups: Sequence[Sequence[Trajectory]], component: str) -> Agreement:
    """Pairwise agreement of the `component` scores with the rubric scores, within each group."""
    a = Agreement()
    for g in groups:
        for i in range(len(g)):
            for j in range(i + 1, len(g)):
                ri, rj = g[i].rubric, g[j].rubric
                if ri is None or rj is None:
                    continue
                d = ri.score - rj.score
                if abs(d) <= TIE_EPS:
                    a.verifiable_ties += 1
                    continue
                c = g[i].reward_components.get(component, 0.0) - g[j].reward_components.get(component, 0.0)
                if abs(c) <= TIE_EPS:
                    a.critic_ties += 1
                elif (c > 0) == (d > 0):
                    a.agree += 1
                else:
                    a.disagree += 1
    return a


class TrainingMonitors:
    """The monitors of one run; see module doc."""

    def __init__(self, mix: RewardMix, out: str | Path) -> None:
        self.format_key: str | None = None
        for name in FORMAT_COMPONENTS:
            for c in mix.components:
                if c.reward.name == name:
                    self.format_key = ("gate/" if c.gate else "") + name
                    break
            if self.format_key:
                break
        self.format = FormatVsSuccessMonitor(format_key="format", success_key="success")
        self.critic = next(
            (c.reward.name for c in mix.components if isinstance(c.reward, SelfCritiqueReward)), None
        )
        self.history = AgreementHistory(Path(out) / "critic_agreement.jsonl") if self.critic else None
        self._warned = False

    def _feed(self, step: int, metrics: Mapping[str, float]) -> dict[str, float]:
        if self.format_key is None:
            return {}
        key = f"reward/{self.format_key}"
        if key not in metrics or "pass_rate" not in metrics:
            return {}
        alert = self.format.observe(step, {"format": metrics[key], "success": metrics["pass_rate"]})
        out = {"monitor/format_vs_success": float(alert is not None), **self.format.metrics()}
        if alert is not None and not self._warned:
            self._warned = True
            log.warning("monitor %s fired at step %d: %s", alert.monitor, step, alert.message)
        return out

    def replay(self, rows: Iterable[Mapping[str, Any]]) -> None:
        """Feed earlier steps (no warnings, no metrics) so trends continue after a resume."""
        warned, self._warned = self._warned, True
        for r in rows:
            self._feed(int(r["step"]), r)
        self._warned = warned or bool(self.format.alerts)

    def observe(
        self, step: int, metrics: Mapping[str, float], groups: Sequence[Sequence[Trajectory]]
    ) -> dict[str, float]:
        out = self._feed(step, metrics)
        if self.critic is not None and self.history is not None:
            a = critic_agreement(groups, self.critic)
            self.history.record(step, a, component=self.critic)
            out["monitor/critic_agreement/judged"] = float(a.judged)
            out["monitor/critic_agreement/agree"] = float(a.agree)
            out["monitor/critic_agreement/disagree"] = float(a.disagree)
            out["monitor/critic_agreement/critic_ties"] = float(a.critic_ties)
            if a.rate is not None:
                out["monitor/critic_agreement"] = a.rate
        return out
