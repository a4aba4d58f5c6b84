"""RewardMix aggregation by hand: weights, gates, the recorded components and metrics, the errors."""

from __future__ import annotations

import pytest

from agentgym.rewards.base import Component, RewardMix, RubricReward, Score


class Fixed:
    """A reward giving fixed values, one per trajectory, with a detail per value."""

    def __init__(self, name, values, detail=None):
        self.name, self.values, self.detail = name, list(values), detail or {}
        self.calls = 0

    async def score(self, task, trajectories):
        self.calls += 1
        return [Score(v, dict(self.detail)) for v in self.values[: len(trajectories)]]


def group(tb, n):
    return [tb.traj(tb.answer(f"answer {i}"), rubric=None) for i in range(n)]


async def test_weighted_sum_times_gates(tb):
    mix = RewardMix(
        [
            Component(Fixed("a", [1.0, 0.5, 0.0]), weight=2.0),
            Component(Fixed("b", [-0.25, 0.5, 1.0]), weight=0.5),
            Component(Fixed("fmt", [1.0, 0.0, 1.0]), gate=True),
            Component(Fixed("lang", [1.0, 1.0, 0.5]), gate=True),
        ]
    )
    out = await mix.apply(tb.task(), group(tb, 3))
    # 1: (2*1 + 0.5*-0.25) * 1 * 1 = 1.875; 2: (1 + 0.25) * 0 = 0; 3: (0 + 0.5) * 1 * 0.5 = 0.25
    assert [t.reward for t in out] == pytest.approx([1.875, 0.0, 0.25])
    assert out[0].reward_components == {"a": 1.0, "b": -0.25, "gate/fmt": 1.0, "gate/lang": 1.0}
    assert out[1].reward_components["gate/fmt"] == 0.0


async def test_a_gate_never_raises_a_negative_sum(tb):
    mix = RewardMix(
        [
            Component(Fixed("task", [0.0, 0.0])),
            Component(Fixed("penalty", [-0.6, -0.6]), weight=0.5),
            Component(Fixed("fmt", [0.0, 1.0]), gate=True),
        ]
    )
    out = await mix.apply(tb.task(), group(tb, 2))
    # sum = -0.3 both times; the closed gate leaves it at -0.3 instead of raising it to 0
    assert [t.reward for t in out] == pytest.approx([-0.3, -0.3])


def test_combine_by_hand():
    mix = RewardMix([Component(Fixed("x", []), weight=3.0), Component(Fixed("g", []), gate=True)])
    assert mix.combine({"x": Score(0.5), "g": Score(0.5)}) == pytest.approx(0.75)
    assert mix.combine({"x": Score(-0.5), "g": Score(0.5)}) == pytest.approx(-1.5)
    assert mix.combine({"x": Score(0.0), "g": Score(0.0)}) == 0.0


async def test_numeric_details_become_metrics(tb):
    mix = RewardMix(
        [
            Component(Fixed("a", [0.5], {"tokens": 12, "hit": True, "why": "words", "ratio": 0.25})),
            Component(Fixed("g", [1.0], {"parse_errors": 0}), gate=True),
        ]
    )
    traj = tb.traj(tb.answer("x"))
    traj = traj.model_copy(update={"metrics": {"tool_calls": 3.0}})
    (out,) = await mix.apply(tb.task(), [traj])
    assert out.metrics == {
        "tool_calls": 3.0,
        "reward/a/tokens": 12.0,
        "reward/a/hit": 1.0,
        "reward/a/ratio": 0.25,
        "reward/g/parse_errors": 0.0,
    }
    assert traj.metrics == {"tool_calls": 3.0} and traj.reward_components == {"rubric": 1.0}  # not mutated


async def test_rubric_reward_reads_the_grading(tb):
    mix = RewardMix([Component(RubricReward())])
    graded = tb.traj(tb.answer("x"), rubric=0.75, passed=False)
    ungraded = tb.traj(tb.answer("x"), rubric=None)
    a, b = await mix.apply(tb.task(), [graded, ungraded])
    assert (a.reward, b.reward) == (0.75, 0.0)
    assert a.metrics["reward/rubric/passed"] == 0.0 and b.metrics["reward/rubric/graded"] == 0.0


def test_names_must_be_unique_and_mix_nonempty():
    with pytest.raises(ValueError, match="unique"):
        RewardMix([Component(Fixed("a", [])), Component(Fixed("a", []), gate=True)])
    with pytest.raises(ValueError, match="at least one"):
        RewardMix([])


async def test_score_count_mismatch_is_refused(tb):
    mix = RewardMix([Component(Fixed("short", [1.0]))])
    with pytest.raises(ValueError, match=r"'short' returned 1 scores for 2 trajectories"):
        await mix.apply(tb.task(), group(tb, 2))


async def test_each_component_scores_the_group_once(tb):
    a = Fixed("a", [1.0, 1.0, 1.0])
    await RewardMix([Component(a)]).apply(tb.task(), group(tb, 3))
    assert a.calls == 1
