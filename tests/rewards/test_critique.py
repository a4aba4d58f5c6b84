"""Self-critique reward: aggregators on fixed comparison matrices (hand-computed and closed form),
both orders cancelling a position-biased critic, pair selection, rubric files, and a degenerate
policy losing to an honest one under the prescriptive rubric with a scripted critic."""

from __future__ import annotations

import itertools
import math
import re

import pytest

from agentgym.models.base import Completion
from agentgym.rewards.critique import (
    AGGREGATORS,
    SelfCritiqueReward,
    bradley_terry,
    bradley_terry_strengths,
    choose_pairs,
    load_rubric,
    task_rubric,
    win_rate,
)
from agentgym.rewards.judge import MemoryCache
from agentgym.rewards.registry import make_reward
from agentgym.spec.rubric import CallCriterion, ForbiddenCriterion, Rubric
from agentgym.spec.rubric import CallPattern as Pattern


class Critic:
    """Answers every comparison prompt with `rule(a_text, b_text) -> 'A' | 'B' | 'tie' | raw text`."""

    tool_format = "hermes"

    def __init__(self, rule, name: str = "rule-critic"):
        self.rule = rule
        self.name = name
        self.prompts: list[str] = []

    async def generate(self, messages, tools=None, sampling=None):
        text = messages[-1]["content"]
        self.prompts.append(text)
        a = text.split("RESPONSE A:\n", 1)[1].split("\n\nRESPONSE B:\n", 1)[0]
        b = text.split("\n\nRESPONSE B:\n", 1)[1].split("\n\nWhich response", 1)[0]
        v = self.rule(a, b)
        reply = f"Reason: by rule.\n<verdict>{v}</verdict>" if v in ("A", "B", "tie") else v
        return Completion(text=reply, prompt_tokens=50, token_ids=[1, 2, 3], model=self.name)


FLATTERY = re.compile(r"wonderful|amazing|great question|brilliant", re.IGNORECASE)


def honesty(text: str) -> int:
    """The scripted critic's rule: tool results shown count for, flattery against."""
    return 2 * ("RESULT " in text) - len(FLATTERY.findall(text))


def by_honesty(a: str, b: str) -> str:
    ha, hb = honesty(a), honesty(b)
    return "A" if ha > hb else "B" if hb > ha else "tie"


# ---- aggregators on a fixed matrix --------------------------------------------------------------------

# 3 rollouts: 0 beats 1 twice, 1 beats 0 once; 0 beats 2 four times, 2 beats 0 once; 1 and 2 tie once
# and 1 beats 2 twice.
MATRIX = (
    [(0, 1, 1.0), (0, 1, 1.0), (1, 0, 1.0), (0, 2, 1.0)] * 1
    + [(2, 0, 0.0)] * 3
    + [
        (2, 0, 1.0),
        (1, 2, 0.5),
        (1, 2, 1.0),
        (2, 1, 0.0),
    ]
)


def test_win_rate_hand_computed():
    # rollout 0: 2 of 3 vs 1, 4 of 5 vs 2 -> 6/8; rollout 1: 1/3 vs 0, 2.5/3 vs 2 -> 3.5/6;
    # rollout 2: 1/5 vs 0, 0.5/3 vs 1 -> 1.5/8.
    assert win_rate(3, MATRIX) == pytest.approx([6 / 8, 3.5 / 6, 1.5 / 8])
    assert win_rate(2, []) == [0.5, 0.5]


def test_bradley_terry_two_players_closed_form():
    # i wins w of n: the MLE ratio is p_i / p_j = w / (n - w); with prior c virtual games per pair,
    # (w + c/2) / (n - w + c/2). 3 wins of 4 with c = 1: 3.5 / 1.5.
    out = [(0, 1, 1.0)] * 3 + [(0, 1, 0.0)]
    p = bradley_terry_strengths(2, out, prior=1.0)
    assert p[0] / p[1] == pytest.approx(3.5 / 1.5)
    assert p[0] * p[1] == pytest.approx(1.0)  # normalised to geometric mean 1
    assert bradley_terry(2, out, prior=1.0) == pytest.approx([3.5 / 5, 1.5 / 5])
    # With no prior, a clean sweep would send p to infinity; the tiny default prior keeps it finite.
    sweep = bradley_terry_strengths(2, [(0, 1, 1.0)] * 5)
    assert math.isfinite(sweep[0]) and sweep[0] / sweep[1] == pytest.approx(5.05 / 0.05)


def test_bradley_terry_recovers_known_strengths():
    # Counts drawn exactly from strengths (4, 2, 1): P(0>1) = 2/3 (2 of 3), P(0>2) = 4/5 (4 of 5),
    # P(1>2) = 2/3 (2 of 3). The MLE is then exactly proportional to (4, 2, 1).
    out = (
        [(0, 1, 1.0)] * 2
        + [(0, 1, 0.0)]
        + [(0, 2, 1.0)] * 4
        + [(0, 2, 0.0)]
        + [(1, 2, 1.0)] * 2
        + [(1, 2, 0.0)]
    )
    p = bradley_terry_strengths(3, out, prior=0.0)
    assert p[0] / p[2] == pytest.approx(4.0) and p[1] / p[2] == pytest.approx(2.0)
    want = [(4 / 6 + 4 / 5) / 2, (2 / 6 + 2 / 3) / 2, (1 / 5 + 1 / 3) / 2]
    assert bradley_terry(3, out, prior=0.0) == pytest.approx(want)


def test_bradley_terry_mle_conditions_on_the_fixed_matrix():
    # At the MLE every rollout's expected wins equal its observed wins (ties half).
    p = bradley_terry_strengths(3, MATRIX, prior=0.0)
    wins, games = [0.0] * 3, [[0] * 3 for _ in range(3)]
    for i, j, s in MATRIX:
        wins[i] += s
        wins[j] += 1 - s
        games[i][j] += 1
        games[j][i] += 1
    for i in range(3):
        expected = sum(games[i][j] * p[i] / (p[i] + p[j]) for j in range(3) if j != i)
        assert expected == pytest.approx(wins[i])
    cyclic = [(0, 1, 1.0), (0, 1, 1.0), (0, 1, 0.0), (1, 2, 1.0), (1, 2, 1.0), (1, 2, 0.0)]
    cyclic += [(2, 0, 1.0), (2, 0, 1.0), (2, 0, 0.0)]
    assert bradley_terry(3, cyclic) == pytest.approx([0.5, 0.5, 0.5])
    assert set(AGGREGATORS) >= {"win_rate", "bradley_terry"}


def test_choose_pairs_all_or_seeded_subset():
    assert choose_pairs(4, 28, seed=1) == list(itertools.combinations(range(4), 2))
    assert len(choose_pairs(8, 28, seed=1)) == 28  # every pair up to G = 8
    sub = choose_pairs(10, 28, seed=1)
    assert len(sub) == len(set(sub)) == 28 and sub == choose_pairs(10, 28, seed=1)
    assert sub != choose_pairs(10, 28, seed=2)


# ---- rubrics --------------------------------------------------------------------------------------------


def test_rubric_files(tmp_path):
    core = load_rubric("core")
    assert [c.id for c in core.criteria] == ["clarity_relevance", "fluency_engagement", "objective_grounded"]
    pres = load_rubric("prescriptive")
    assert {"no_flattery", "no_padding", "no_unsupported_success", "no_ignoring"} <= {
        c.id for c in pres.criteria
    }
    mine = tmp_path / "mine.yaml"
    mine.write_text("name: mine\ncriteria:\n  - {id: short, text: Shorter is better.}\n")
    assert load_rubric(mine).criteria[0].text == "Shorter is better."
    with pytest.raises(FileNotFoundError):
        load_rubric(tmp_path / "absent.yaml")
    mine.write_text("name: mine\ncriteria: []\n")
    with pytest.raises(ValueError):
        load_rubric(mine)


def test_task_rubric_in_words(tb):
    task = tb.task().model_copy(
        update={
            "rubric": Rubric(
                criteria=(
                    CallCriterion(id="c", tool="notes__get", args={"id": "n1"}),
                    ForbiddenCriterion(id="f", call=Pattern(tool="notes__delete", succeeded=None)),
                    CallCriterion(id="d", tool="x", description="Looks the note up."),
                )
            )
        }
    )
    text = task_rubric(task)
    assert "'Please look up note n1.'" in text
    assert "- calls notes__get with id='n1'" in text
    assert "- never calls notes__delete" in text
    assert "- Looks the note up." in text


# ---- the reward -----------------------------------------------------------------------------------------


async def test_both_orders_cancel_a_position_biased_critic(tb):
    task = tb.task()
    group = [tb.traj(tb.answer(f"Answer {k}.")) for k in range(4)]
    always_a = Critic(lambda a, b: "A")
    for agg in ("win_rate", "bradley_terry"):
        reward = SelfCritiqueReward(always_a, aggregator=agg)
        scores = await reward.score(task, group)
        assert [s.value for s in scores] == pytest.approx([0.5] * 4)
        assert all(s.detail["wins"] == s.detail["losses"] == 3 for s in scores)
        assert scores[0].detail["group_position_consistency"] == 0.0
    assert len(always_a.prompts) == 2 * 2 * 6  # two aggregators x 6 pairs x both orders


async def test_unparseable_verdicts_are_dropped_and_counted(tb):
    task = tb.task()
    group = [tb.traj(tb.answer("a")), tb.traj(tb.answer("b"))]
    mumble = Critic(lambda a, b: "Both have merit.")
    scores = await SelfCritiqueReward(mumble, aggregator="win_rate").score(task, group)
    assert [s.value for s in scores] == [0.5, 0.5]
    assert scores[0].detail["group_unparseable"] == 2 and scores[0].detail["comparisons"] == 0
    assert "group_position_consistency" not in scores[0].detail
    [alone] = await SelfCritiqueReward(mumble).score(task, group[:1])
    assert alone.value == 0.5 and alone.detail["group_comparisons"] == 0


async def test_degenerate_policy_scores_below_honest_under_prescriptive_rubric(tb):
    task = tb.task()
    degenerate = tb.traj(
        tb.answer(
            "What a wonderful question, you are brilliant! I have successfully looked up note n1 and "
            "everything is done exactly as you wanted. It is an amazing note and I am glad to help! " * 3
        )
    )
    honest = tb.traj(tb.calls(("notes__get", {"id": "n1"})), tb.answer("Note n1 says: buy milk."))
    group = [
        degenerate,
        honest,
        degenerate.model_copy(update={"id": "deg-2"}),
        honest.model_copy(update={"id": "hon-2"}),
    ]
    critic = Critic(by_honesty)
    reward = SelfCritiqueReward(critic, rubrics=["prescriptive"], cache=MemoryCache())
    scores = await reward.score(task, group)
    v = [s.value for s in scores]
    assert min(v[1], v[3]) > 0.5 > max(v[0], v[2])
    assert v[1] == pytest.approx(v[3]) and v[0] == pytest.approx(v[2])
    assert scores[1].detail["wins"] == 4 and scores[1].detail["ties"] == 2  # beats both, ties its twin
    prompt = critic.prompts[0]
    assert "PRESCRIPTIVE RUBRIC" in prompt and "no_flattery" in prompt and "CORE RUBRIC" not in prompt
    assert "RESULT notes__get" in prompt or "RESULT notes__get" in critic.prompts[1]
    assert scores[0].detail["group_position_consistency"] == 1.0
    # The cached group is free the second time.
    n = len(critic.prompts)
    again = await reward.score(task, group)
    assert len(critic.prompts) == n and [s.value for s in again] == v
    assert again[0].detail["group_critic_cached"] == 12 and again[0].detail["group_cost_usd"] == 0.0


async def test_registered_as_self_critique(tb):
    critic = Critic(by_honesty)
    r = make_reward("self_critique", critic=critic, aggregator="win_rate", max_pairs=3)
    assert isinstance(r, SelfCritiqueReward) and r.max_pairs == 3
    with pytest.raises(ValueError, match="aggregator"):
        SelfCritiqueReward(critic, aggregator="elo")
