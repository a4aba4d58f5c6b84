"""An episode-wide token budget: `ModelPolicy(token_budget=)` asks each turn for at most what is
left, and `EnvConfig(token_budget=)` truncates the episode once it is spent."""

from __future__ import annotations

import asyncio

import pytest

from agentgym.env import EnvConfig, ToolUseEnv
from agentgym.models.base import Completion, SamplingParams
from agentgym.parsing import render_calls
from agentgym.policies import ModelPolicy
from agentgym.runner import run_episode

TASK = "calendar-cancel-demo"


class Budgeted:
    """Replies with a tool call of `max_new_tokens` fake token ids, recording what each turn asked for."""

    name = "budgeted"
    tool_format = "hermes"

    def __init__(self):
        self.asked: list[int] = []

    async def generate(self, messages, tools=None, sampling=None):
        self.asked.append(sampling.max_new_tokens)
        text = render_calls("hermes", [("calendar__search_events", {"query": "x"})])
        return Completion(text=text, token_ids=[5] * sampling.max_new_tokens, model=self.name)


def test_each_turn_gets_what_is_left_and_the_episode_ends_when_it_is_spent(starter):
    model = Budgeted()
    env = ToolUseEnv(starter, config=EnvConfig(max_turns=10, token_budget=50))
    policy = ModelPolicy(model, SamplingParams(max_new_tokens=20), token_budget=50)
    traj = asyncio.run(run_episode(env, policy, TASK, 0))
    env.close()
    assert model.asked == [20, 20, 10]
    assert traj.truncated and traj.end_reason == "token_budget"
    assert sum(len(t.token_ids) for t in traj.turns) == 50
    # a new episode starts with the whole budget again
    model.asked.clear()
    env = ToolUseEnv(starter, config=EnvConfig(max_turns=2, token_budget=50))
    asyncio.run(run_episode(env, policy, TASK, 1))
    env.close()
    assert model.asked == [20, 20]


def test_a_budget_below_one_is_refused():
    with pytest.raises(ValueError, match="token_budget"):
        ModelPolicy(Budgeted(), token_budget=0)
