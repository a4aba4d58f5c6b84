"""Hacking monitors: trend maths by hand, format-vs-success on synthetic series, judge drift with a
scripted reward whose behaviour changes between checks."""

from __future__ import annotations

import math

import pytest

from agentgym.rewards.base import Score
from agentgym.rewards.monitors import (
    DriftCase,
    DriftMonitor,
    FormatVsSuccessMonitor,
    component_means,
    pairwise_agreement,
    trend,
)


def wiggle(i: int) -> float:
    """Deterministic noise in [-0.03, 0.03]."""
    return 0.03 * math.sin(i * 2.7)


# ---- trend -------------------------------------------------------------------------------------


def test_trend_by_hand():
    # x = 0..3, y = 1 3 2 4: Sxx = 5, Sxy = 4 → slope 0.8; residuals -.3 .9 -.9 .3, SSR = 1.8,
    # se = sqrt(1.8 / 2 / 5) = 0.4243 → t = 1.8856
    tr = trend([0, 1, 2, 3], [1, 3, 2, 4])
    assert tr.slope == pytest.approx(0.8) and tr.t == pytest.approx(0.8 / math.sqrt(0.18)) and tr.n == 4
    assert trend([0, 1, 2], [0, 1, 2]).t == math.inf
    assert trend([0, 1, 2], [5, 5, 5]) == trend([0, 1, 2], [5, 5, 5]).__class__(0.0, 0.0, 3)
    with pytest.raises(ValueError, match=">= 3"):
        trend([0, 1], [0, 1])
    with pytest.raises(ValueError, match="distinct"):
        trend([1, 1, 1], [0, 1, 2])


# ---- format vs success -------------------------------------------------------------------------


def run(monitor, fmt, suc):
    alerts = []
    for i, (f, s) in enumerate(zip(fmt, suc, strict=True)):
        a = monitor.observe(i, {"gate/format_gate": f, "success": s, "rubric": s})
        if a is not None:
            alerts.append(a)
    return alerts


def test_fires_when_format_rises_and_success_is_flat():
    n = 30
    fmt = [0.3 + 0.02 * i + wiggle(i) for i in range(n)]  # +0.02 / step
    suc = [0.2 + wiggle(i + 5) for i in range(n)]  # flat
    m = FormatVsSuccessMonitor(window=10, min_points=10)
    alerts = run(m, fmt, suc)
    assert alerts and alerts[0].step == 9  # the first step with a full window
    a = alerts[0]
    assert a.monitor == "format_vs_success" and "learning the format, not the task" in a.message
    assert a.values["format_slope"] == pytest.approx(0.02, abs=0.006) and a.values["format_t"] > 2
    assert abs(a.values["success_slope"]) < 0.01
    metrics = m.metrics()
    assert metrics["monitor/format_vs_success/fired"] == 1.0
    assert set(metrics) >= {"monitor/format_vs_success/format_slope", "monitor/format_vs_success/success_t"}


@pytest.mark.parametrize(
    ("fmt", "suc"),
    [
        # both rise together: the format is learnt along with the task
        (
            [0.3 + 0.02 * i + wiggle(i) for i in range(30)],
            [0.1 + 0.015 * i + wiggle(i + 5) for i in range(30)],
        ),
        # format flat
        ([0.8 + wiggle(i) for i in range(30)], [0.2 + wiggle(i + 5) for i in range(30)]),
        # format rises, but slower than min_rise (0.005 / step)
        ([0.5 + 0.002 * i for i in range(30)], [0.2] * 30),
        # format only noisy (large swings, no trend): not significant
        ([0.5 + 0.3 * math.sin(i * 1.9) for i in range(30)], [0.2] * 30),
    ],
)
def test_quiet_when_no_hacking(fmt, suc):
    m = FormatVsSuccessMonitor(window=10, min_points=10)
    assert run(m, fmt, suc) == []
    assert m.metrics()["monitor/format_vs_success/fired"] == 0.0


def test_success_rising_too_slowly_still_fires():
    # success rises significantly, but at 0.002 / step while format gains 0.03 / step (keep_up 0.25 → 0.0075)
    fmt = [0.1 + 0.03 * i for i in range(12)]
    suc = [0.1 + 0.002 * i for i in range(12)]
    assert run(FormatVsSuccessMonitor(window=12, min_points=12), fmt, suc)


def test_waits_for_min_points_and_checks_input():
    m = FormatVsSuccessMonitor(window=10, min_points=5)
    assert run(m, [0.1, 0.5, 0.9, 1.0], [0.0] * 4) == []  # only 4 points
    with pytest.raises(KeyError, match="lacks"):
        m.observe(10, {"success": 0.2})
    with pytest.raises(ValueError, match="increase"):
        m.observe(3, {"gate/format_gate": 1.0, "success": 0.0})
    with pytest.raises(ValueError, match="min_points"):
        FormatVsSuccessMonitor(window=4, min_points=5)


def test_component_means_feed_the_monitor(tb):
    trajs = [
        tb.traj(tb.answer("a"), rubric=1.0, components={"rubric": 1.0, "gate/format_gate": 1.0}),
        tb.traj(
            tb.answer("b"), rubric=0.5, passed=False, components={"rubric": 0.5, "gate/format_gate": 0.0}
        ),
        tb.traj(tb.answer("c"), rubric=None, components={"rubric": 0.0}),
    ]
    means = component_means(trajs)
    assert means["rubric"] == pytest.approx(0.5)
    assert means["gate/format_gate"] == pytest.approx(0.5)  # over the two that have it
    assert means["success"] == pytest.approx(0.5)  # 1 of the 2 graded passed
    assert means["reward"] == pytest.approx((1.0 + 0.5 + 0.0) / 3)


# ---- drift -------------------------------------------------------------------------------------


class ScriptedJudge:
    """A reward whose scores are set by the test between checks; records the groups it was given."""

    name = "scripted_judge"

    def __init__(self, scores: dict[str, float]):
        self.scores = scores
        self.groups: list[tuple[str, list[str]]] = []

    async def score(self, task, trajectories):
        self.groups.append((task.id, [t.id for t in trajectories]))
        return [Score(self.scores[t.id]) for t in trajectories]


@pytest.fixture
def cases(tb):
    tasks = [tb.task(task_id="t1"), tb.task(task_id="t2")]
    trajs = [
        tb.traj(tb.answer("good"), task_id="t1", traj_id="a", rubric=1.0),
        tb.traj(tb.answer("bad"), task_id="t1", traj_id="b", rubric=0.0),
        tb.traj(tb.answer("good"), task_id="t2", traj_id="c", rubric=1.0),
        tb.traj(tb.answer("bad"), task_id="t2", traj_id="d", rubric=0.0),
    ]
    return [DriftCase(tasks[i // 2], t) for i, t in enumerate(trajs)]


async def test_drift_over_checks(cases):
    judge = ScriptedJudge({"a": 0.9, "b": 0.1, "c": 0.8, "d": 0.2})
    m = DriftMonitor(judge, cases, max_shift=0.1, max_agreement_drop=0.1)
    r0 = await m.check()
    # known 1 0 1 0: pairs with different outcomes a-b a-d c-b c-d, all ordered right
    assert (r0.check, r0.agreement, r0.mean_shift, r0.fired) == (0, 1.0, 0.0, False)
    assert r0.mae_known == pytest.approx((0.1 + 0.1 + 0.2 + 0.2) / 4)
    assert judge.groups == [("t1", ["a", "b"]), ("t2", ["c", "d"])]  # one call per task group

    judge.scores = {"a": 0.95, "b": 0.1, "c": 0.8, "d": 0.2}  # small wobble: 0.05 / 4
    r1 = await m.check()
    assert r1.mean_shift == pytest.approx(0.0125) and not r1.fired

    judge.scores = {"a": 1.0, "b": 0.5, "c": 1.0, "d": 0.6}  # lenient drift: every score up
    r2 = await m.check()
    assert r2.mean_shift == pytest.approx((0.1 + 0.4 + 0.2 + 0.4) / 4) and r2.agreement == 1.0
    assert r2.fired and "shifted by 0.275" in r2.message

    judge.scores = {"a": 0.5, "b": 0.5, "c": 0.2, "d": 0.8}  # a-b tie, a-d wrong, c-b wrong, c-d wrong
    r3 = await m.check()
    assert r3.agreement == pytest.approx(0.5 / 4) and r3.agreement_drop == pytest.approx(1 - 0.125)
    assert r3.fired and "agreement with known outcomes fell" in r3.message
    assert m.metrics()["monitor/drift/agreement"] == pytest.approx(0.125)
    assert [r.check for r in m.reports] == [0, 1, 2, 3]


async def test_drift_min_agreement_and_within_task_pairs(cases):
    # within-task pairs only: a-b and c-d; c-d is reversed → agreement 1/2 (below 0.75 at the first check)
    judge = ScriptedJudge({"a": 0.9, "b": 0.1, "c": 0.2, "d": 0.8})
    r = await DriftMonitor(judge, cases, min_agreement=0.75, pairs="within_task").check()
    assert r.agreement == 0.5 and r.fired and "< 0.75" in r.message


async def test_explicit_known_outcomes_and_refusals(tb):
    t = tb.task()
    ungraded = tb.traj(tb.answer("x"), rubric=None, traj_id="u")
    with pytest.raises(ValueError, match="neither a known outcome"):
        DriftMonitor(ScriptedJudge({"u": 0.0}), [DriftCase(t, ungraded)])
    m = DriftMonitor(ScriptedJudge({"u": 0.4}), [DriftCase(t, ungraded, known=1.0)])
    r = await m.check()
    assert r.agreement is None and r.mae_known == pytest.approx(0.6) and not r.fired
    with pytest.raises(ValueError, match="at least one"):
        DriftMonitor(ScriptedJudge({}), [])


def test_pairwise_agreement_by_hand():
    assert pairwise_agreement([0.3, 0.3, 0.1], [1, 0, 0], ["", "", ""]) == pytest.approx((0.5 + 1) / 2)
    assert pairwise_agreement([1, 0], [1, 1], ["", ""]) is None
