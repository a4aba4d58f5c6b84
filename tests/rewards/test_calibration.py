"""Calibration: agreement with the verifiable ordering (ties excluded and counted), critic training
examples from the exact comparison prompts, agreement history, and the agreement -> weight gate."""

from __future__ import annotations

import json

import pytest
from test_critique import Critic, by_honesty

from agentgym.rewards.base import Component, RewardMix, RubricReward
from agentgym.rewards.calibration import (
    Agreement,
    AgreementHistory,
    CriticGate,
    agreement,
    calibrate,
    write_examples,
)
from agentgym.rewards.critique import Comparison, SelfCritiqueReward


def cmp(first: int, second: int, verdict):
    return Comparison(first, second, verdict, "", "", [{"role": "user", "content": f"{first} vs {second}"}])


def test_agreement_hand_computed():
    values = [1.0, 0.5, 0.5, 0.0]
    comps = [
        cmp(0, 1, "A"),  # 0 > 1, critic says 0: agree
        cmp(1, 0, "A"),  # critic says 1 over 0: disagree
        cmp(1, 2, "A"),  # equal scores: excluded
        cmp(2, 1, "tie"),  # equal scores: excluded
        cmp(3, 0, "B"),  # 0 > 3, critic says 0: agree
        cmp(0, 3, "tie"),  # distinct but critic tie: against
        cmp(2, 3, None),  # distinct but unreadable: against
    ]
    a = agreement(comps, values)
    assert (a.agree, a.disagree, a.critic_ties, a.unparseable, a.verifiable_ties) == (2, 1, 1, 1, 2)
    assert a.judged == 5 and a.rate == pytest.approx(2 / 5)
    assert Agreement().rate is None


async def test_calibrate_measures_agreement_and_writes_examples(tb, tmp_path):
    task = tb.task()
    honest = tb.traj(tb.calls(("notes__get", {"id": "n1"})), tb.answer("Note n1 says: buy milk."), rubric=1.0)
    flatter = tb.traj(tb.answer("What a wonderful question! Done, note n1 is great."), rubric=0.0)
    half = tb.traj(tb.answer("I looked, it is about milk."), rubric=0.5)
    same = tb.traj(tb.answer("Nothing."), rubric=0.5)
    group = [honest, flatter, half, same]
    reward = SelfCritiqueReward(Critic(by_honesty), aggregator="win_rate")
    report = await calibrate(reward, [(task, group)])
    a = report.agreement
    # 6 pairs x 2 orders = 12; the (half, same) pair has equal scores: 2 excluded.
    assert a.verifiable_ties == 2 and a.judged == 10
    # Distinct pairs: honest (1.0) vs each other (3), flatter (0.0) vs half and same (0.5) (2) -> 10
    # comparisons. The rule critic ranks honest (tool result) > half = same > flatter (flattery), the
    # verifiable order on every one of them.
    assert a.agree == 10 and a.rate == 1.0
    assert report.per_task[task.id].agree == 10
    assert len(report.examples) == 10
    ex = report.examples[0]
    assert ex["messages"][:-1] == next(
        c.messages
        for c in (await reward.compare_group(task, group)).comparisons
        if c.first == 0 and c.second == 1
    )
    assert ex["messages"][-1]["role"] == "assistant"
    assert ex["messages"][-1]["content"].endswith("<verdict>A</verdict>")  # honest (1.0) shown as A
    assert ex["metadata"]["target"] == "A" and ex["metadata"]["score_a"] == 1.0
    path = tmp_path / "critic_sft.jsonl"
    assert write_examples(path, report.examples) == 10
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert rows[0]["messages"] == ex["messages"] and rows[0]["tools"] == []

    contrary = SelfCritiqueReward(Critic(lambda a, b: "B" if by_honesty(a, b) == "A" else "A"))
    bad = await calibrate(contrary, [(task, group)], only_disagreements=True)
    assert bad.agreement.rate == 0.0 and len(bad.examples) == 10
    good = await calibrate(reward, [(task, group)], only_disagreements=True)
    assert good.examples == []
    with pytest.raises(ValueError, match="no rubric result"):
        await calibrate(reward, [(task, [honest, tb.traj(tb.answer("x"), rubric=None)])])


def test_agreement_history(tmp_path):
    h = AgreementHistory(tmp_path / "agreement.jsonl")
    assert h.read() == []
    h.record(0, Agreement(agree=3, disagree=1), examples=4)
    h.record(10, Agreement(agree=4, verifiable_ties=2))
    rows = h.read()
    assert [r["step"] for r in rows] == [0, 10]
    assert rows[0]["rate"] == 0.75 and rows[0]["examples"] == 4
    assert rows[1]["rate"] == 1.0 and rows[1]["verifiable_ties"] == 2


def test_critic_gate(tb):
    gate = CriticGate(floor=0.6, ceiling=0.8, full_weight=0.5)
    got = [gate.weight(r) for r in (None, 0.3, 0.6, 0.7, 0.8, 0.95)]
    assert got == pytest.approx([0.0, 0.0, 0.0, 0.25, 0.5, 0.5])
    for bad in ({"floor": 0.8, "ceiling": 0.6}, {"floor": -0.1}, {"full_weight": -1.0}):
        with pytest.raises(ValueError):
            CriticGate(**bad)
    critic = SelfCritiqueReward(Critic(by_honesty))
    mix = RewardMix([Component(RubricReward(), 1.0), Component(critic, 0.5)])
    tied = gate.apply(mix, "self_critique", 0.7)
    assert [c.weight for c in tied.components] == pytest.approx([1.0, 0.25])
    assert [c.weight for c in mix.components] == [1.0, 0.5]  # the original is unchanged
    assert gate.apply(mix, "self_critique", 0.5).components[1].weight == 0.0
    with pytest.raises(KeyError, match="no component"):
        gate.apply(mix, "judge", 0.7)
