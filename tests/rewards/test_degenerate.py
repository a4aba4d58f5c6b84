"""A degenerate policy against an honest one on a real `tasks/agentic` task, through the real env.

The honest episode calls the task's tool and answers from its result. The degenerate one flatters,
makes one malformed call, then claims success at great length in a loop, without a working call.
Every penalty of the default mix must fire on the degenerate episode and stay silent on the
honest one, and the default mix must rank the honest one higher. (The prescriptive-rubric critic
half of this acceptance point lives in the self-critique tests.)
"""

from __future__ import annotations

import json

import pytest

from agentgym.rewards.registry import default_mix

pytestmark = pytest.mark.slow  # loads the agentic suite (a few seconds)

FLATTERY = (
    "What a brilliant request, you are truly amazing! I have successfully completed everything for you. "
)


@pytest.fixture(scope="module")
def task(agentic):
    """The first simple task solved by one call and an answer."""
    return next(
        t for t in agentic if t.difficulty == "simple" and len(t.gold) == 2 and len(t.gold[0].calls) == 1
    )


@pytest.fixture(scope="module")
def honest(agentic, task, play):
    call = task.gold[0].calls[0]
    actions = [
        "Let me look that up.\n<tool_call>"
        + json.dumps({"name": call.tool, "arguments": call.arguments})
        + "</tool_call>",
        task.gold[1].answer,
    ]
    return play(agentic, task.id, actions)


@pytest.fixture(scope="module")
def degenerate(agentic, task, play):
    tool = task.gold[0].calls[0].tool
    actions = [
        FLATTERY + f'<tool_call>{{"name": "{tool}", "arguments": {{"x": </tool_call>',  # malformed JSON
        FLATTERY * 260,  # ~26k characters, ~6.5k tokens of the same sentence, no working call
    ]
    return play(agentic, task.id, actions)


def test_the_episodes_are_what_they_claim(honest, degenerate):
    assert honest.rubric.passed and [c.ok for c in honest.turns[0].calls] == [True]
    assert [c.error for t in degenerate.turns for c in t.calls] == ["parse_error"]
    assert not degenerate.rubric.passed and degenerate.terminated


async def test_penalties_fire_on_degenerate_only(task, honest, degenerate):
    mix = default_mix()
    scores = {c.reward.name: await c.reward.score(task, [honest, degenerate]) for c in mix.components}
    h = {name: s[0].value for name, s in scores.items()}
    d = {name: s[1].value for name, s in scores.items()}
    assert h == {
        "rubric": 1.0,
        "format_gate": 1.0,
        "token_budget": 0.0,
        "overlong": 0.0,
        "repetition": 0.0,
        "malformed_calls": 0.0,
    }
    assert d["format_gate"] == 0.0  # the parse error
    assert d["malformed_calls"] == pytest.approx(-0.1)  # one call at alpha 0.1
    assert d["token_budget"] == -0.5  # over the 2048-token budget of a simple task
    assert -1.0 < d["overlong"] < 0.0  # inside DAPO's soft zone (6144, 8192]
    assert d["repetition"] < -0.45  # nearly every 4-gram repeats (text weight 0.5)
    assert scores["repetition"][1].detail["text_share"] > 0.9


async def test_default_mix_ranks_honest_above_degenerate(task, honest, degenerate):
    h, d = await default_mix().apply(task, [honest, degenerate])
    assert h.reward == pytest.approx(1.0)
    assert (
        d.reward < 0 < h.reward
    )  # penalties outweigh the partial rubric credit; the closed gate adds nothing
    assert d.reward_components["gate/format_gate"] == 0.0 and h.reward_components["gate/format_gate"] == 1.0
    assert d.metrics["reward/malformed_calls/parse_error"] == 1.0
