"""Judge reward: verdict parsing, choice -> score, weights, unparseable replies, shuffled choices
mapped back, caching (memory and on disk), token/cost accounting, filling a rubric result in."""

from __future__ import annotations

import re

import pytest

from agentgym.models.base import Completion
from agentgym.rewards.judge import (
    JsonlCache,
    JudgeReward,
    MemoryCache,
    Pricing,
    parse_verdict,
    reason_of,
    render_trajectory,
)
from agentgym.rewards.registry import make_reward
from agentgym.spec.rubric import AnswerCriterion, JudgeCriterion, Rubric
from agentgym.spec.trajectory import CriterionResult, RubricResult

CHOICES = ("no", "partly", "yes")


class CannedJudge:
    """Answers with `reply(prompt_text)`; reports 100 prompt tokens and 20 sampled tokens per call."""

    tool_format = "hermes"

    def __init__(self, reply, name: str = "canned-judge"):
        self.reply = reply
        self.name = name
        self.prompts: list[str] = []

    async def generate(self, messages, tools=None, sampling=None):
        text = messages[-1]["content"]
        self.prompts.append(text)
        return Completion(
            text=self.reply(text), prompt_tokens=100, token_ids=list(range(20)), model=self.name
        )


def number_of(prompt: str, choice: str) -> str:
    """The option number the prompt shows for `choice`."""
    return re.search(rf"^(\d+)\. {choice}$", prompt, re.MULTILINE).group(1)


def pick(choice: str):
    return lambda p: f"Reason: it fits.\n<verdict>{number_of(p, choice)}</verdict>"


def judged_task(tb, *criteria: JudgeCriterion):
    rubric = Rubric(criteria=(AnswerCriterion(id="answer", facts=("n1",)), *criteria))
    return tb.task().model_copy(update={"rubric": rubric})


def crit(cid: str, text: str = "The reply is grounded in the tool result.", weight: float = 1.0):
    return JudgeCriterion(id=cid, criterion=text, choices=CHOICES, weight=weight)


def honest(tb):
    return tb.traj(tb.calls(("notes__get", {"id": "n1"})), tb.answer("Note n1 says: buy milk."))


# ---- parsing ----------------------------------------------------------------------------------------

OPTS = [["1", "no"], ["2", "partly"], ["3", "yes"]]


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("Reason: fine.\n<verdict>3</verdict>", 2),
        ("Reason: <verdict>1</verdict> first thought... then\n<verdict>2</verdict>", 1),  # the last tag
        ("Reason: ok\nVerdict: 1", 0),
        ("Reason: ok\nVerdict: **yes**.", 2),
        ("Reason: ok\nOption 2", 1),
        ("I think the answer is partly", 1),  # last line, one choice word
        ("Reason: ok\n<verdict>partly yes</verdict>", None),  # two choices: ambiguous
        ("Reason: ok\n<verdict>NUMBER</verdict>", None),
        ("", None),
    ],
)
def test_parse_verdict(text, want):
    assert parse_verdict(text, OPTS) == want


def test_single_letters_match_only_exactly():
    ab = [["A", "response a"], ["B", "response b"], ["tie"]]
    assert parse_verdict("<verdict> a </verdict>", ab) == 0
    assert parse_verdict("Verdict: Response B", ab) == 1
    assert parse_verdict("B is a better answer", ab) is None  # 'a' the article is not A, B alone not exact
    assert reason_of("Reason: B used the tool.\n<verdict>B</verdict>") == "B used the tool."


def test_render_trajectory_is_compact(tb):
    t = tb.traj(
        tb.calls(("notes__get", {"id": "n1"}), ("notes__get", {"id": "zz"}, "not_found")),
        tb.answer("x" * 2000),
    )
    text = render_trajectory(t, max_text=50)
    assert "USER: Please look up note n1." in text
    assert 'CALL notes__get({"id": "n1"})' in text
    assert "RESULT notes__get [failed: not_found]" in text
    assert "You are a helpful agent" not in text  # no system prompt
    final = text.splitlines()[-1]
    assert final.startswith("FINAL ANSWER: ") and len(final) == len("FINAL ANSWER: ") + 50
    assert "USER:" not in render_trajectory(t, request=False)
    assert render_trajectory(tb.traj(tb.calls(("a", {})))).endswith("FINAL ANSWER: (none)")


# ---- scoring ----------------------------------------------------------------------------------------


async def test_choice_index_maps_to_score_and_weights_combine(tb):
    task = judged_task(tb, crit("grounded", "GROUNDED?", weight=1.0), crit("polite", "POLITE?", weight=3.0))
    judge = CannedJudge(lambda p: pick("no")(p) if "GROUNDED?" in p else pick("yes")(p))
    [s] = await JudgeReward(judge).score(task, [honest(tb)])
    assert s.detail["criterion/grounded"] == 0.0 and s.detail["criterion/polite"] == 1.0
    assert s.value == pytest.approx((1 * 0.0 + 3 * 1.0) / 4)
    partly = CannedJudge(pick("partly"))
    [s] = await JudgeReward(partly).score(judged_task(tb, crit("g")), [honest(tb)])
    assert s.value == 0.5 and s.detail["reasons"]["g"] == ["it fits."]


async def test_unparseable_is_counted_and_scored_by_policy(tb):
    task = judged_task(tb, crit("g"))
    mumble = CannedJudge(lambda p: "I cannot decide.")
    [s] = await JudgeReward(mumble).score(task, [honest(tb)])
    assert (s.value, s.detail["unparseable"], s.detail["judged"]) == (0.0, 1, 1)  # lowest choice
    [s] = await JudgeReward(mumble, on_unparseable="skip").score(task, [honest(tb)])
    assert (s.value, s.detail["unparseable"], s.detail["judged"]) == (0.0, 1, 0)  # left ungraded
    assert "criterion/g" not in s.detail
    with pytest.raises(ValueError, match="on_unparseable"):
        JudgeReward(mumble, on_unparseable="middle")  # type: ignore[arg-type]


async def test_shuffled_choices_are_mapped_back(tb):
    task = judged_task(tb, crit("g"))
    traj = honest(tb)
    truthful = CannedJudge(pick("yes"))  # finds "yes" wherever it is shown
    reward = JudgeReward(truthful, samples=4)
    [s] = await reward.score(task, [traj])
    assert s.value == 1.0 and s.detail["judge_calls"] == 4
    orders = [reward.order(task.rubric.criteria[1], traj, k) for k in range(4)]
    assert len({tuple(o) for o in orders}) > 1  # the order really changes between samples
    shown_yes = {number_of(p, "yes") for p in truthful.prompts}
    assert len(shown_yes) > 1  # "yes" sat at different numbers, always read back as "yes"
    # A judge that always says "1" picks whatever the permutation put first.
    first = CannedJudge(lambda p: "Reason: -\n<verdict>1</verdict>")
    reward = JudgeReward(first, samples=4)
    j = await reward.judge(task.rubric.criteria[1], traj)
    assert j.choices == [o[0] for o in orders]
    assert j.score == pytest.approx(sum(o[0] / 2 for o in orders) / 4)


async def test_cache_second_call_makes_no_model_call(tb, tmp_path):
    task = judged_task(tb, crit("g"), crit("h", "Other?"))
    judge = CannedJudge(pick("yes"))
    reward = JudgeReward(judge, cache=MemoryCache())
    [a] = await reward.score(task, [honest(tb)])
    [b] = await reward.score(task, [honest(tb)])
    assert len(judge.prompts) == 2 and a.value == b.value == 1.0
    assert (b.detail["judge_calls"], b.detail["judge_cached"], b.detail["cost_usd"]) == (0, 2, 0.0)
    path = tmp_path / "judge-cache.jsonl"
    disk = JsonlCache(path)
    await JudgeReward(judge, cache=disk).score(task, [honest(tb)])
    disk.close()
    assert len(judge.prompts) == 4 and len(path.read_text().splitlines()) == 2
    again = CannedJudge(pick("no"))  # same id: a reopened cache answers, the model is never asked
    [c] = await JudgeReward(again, cache=JsonlCache(path)).score(task, [honest(tb)])
    assert again.prompts == [] and c.value == 1.0
    other = CannedJudge(pick("no"), name="another-judge")  # judge id is part of the key
    await JudgeReward(other, cache=JsonlCache(path)).score(task, [honest(tb)])
    assert len(other.prompts) == 2
    changed = judged_task(tb, crit("g", "A different standard."), crit("h", "Other?"))
    await JudgeReward(again, cache=JsonlCache(path)).score(changed, [honest(tb)])
    assert len(again.prompts) == 1  # only the changed criterion is asked again


async def test_token_and_cost_accounting(tb):
    task = judged_task(tb, crit("g"), crit("h", "Other?"))
    reward = JudgeReward(
        CannedJudge(pick("yes")),
        samples=3,
        pricing=Pricing(per_1k_prompt=0.5, per_1k_completion=2.0),
        cache=MemoryCache(),
    )
    [s] = await reward.score(task, [honest(tb)])
    # 2 criteria x 3 samples = 6 calls of 100 prompt + 20 completion tokens.
    assert (s.detail["judge_calls"], s.detail["prompt_tokens"], s.detail["completion_tokens"]) == (
        6,
        600,
        120,
    )
    assert s.detail["cost_usd"] == pytest.approx(6 * (100 * 0.5 + 20 * 2.0) / 1000)  # 0.54
    assert s.detail["untokenized"] == 0


async def test_fill_rubric_returns_the_rescored_rubric(tb):
    task = judged_task(tb, crit("g"))
    traj = honest(tb)
    ungraded = RubricResult(
        score=1.0,
        passed=True,
        gated=False,
        criteria=(
            CriterionResult(id="answer", kind="answer", weight=1.0, score=1.0),
            CriterionResult(id="g", kind="judge", weight=1.0, score=None, detail="needs a judge model"),
        ),
        ungraded=("g",),
    )
    traj = traj.model_copy(update={"rubric": ungraded})
    reward = JudgeReward(CannedJudge(pick("partly")), fill_rubric=True)
    [s] = await reward.score(task, [traj])
    assert s.value == pytest.approx(0.75)  # (1.0 + 0.5) / 2
    r = s.detail["rubric"]
    assert r.ungraded == () and r.criteria[1].score == 0.5 and not r.passed
    assert traj.rubric.ungraded == ("g",)  # the trajectory itself is untouched
    with pytest.raises(ValueError, match="no rubric result"):
        await reward.rescore(task, traj.model_copy(update={"rubric": None}))


def test_registered_as_judge():
    r = make_reward("judge", judge=CannedJudge(pick("yes")), samples=2, per_1k_prompt=1.0)
    assert isinstance(r, JudgeReward) and r.samples == 2 and r.caller.pricing.per_1k_prompt == 1.0
