"""A multi-turn task end to end with the embedded model as the agent and as the simulated user."""

from __future__ import annotations

import asyncio

import pytest

from agentgym.env.tool_env import EnvConfig, ToolUseEnv
from agentgym.env.user import ModelUser
from agentgym.models import SamplingParams, load_model
from agentgym.policies import ModelPolicy
from agentgym.runner import run_episode
from agentgym.suites import load_suite


@pytest.mark.slow
def test_embedded_agent_and_embedded_user():
    suite = load_suite("agentic-multiturn")
    model = load_model("embedded")
    user = ModelUser(model, sampling=SamplingParams(max_new_tokens=48), max_user_turns=2)
    env = ToolUseEnv(suite, config=EnvConfig(max_turns=3), user=user)
    task = next(t for t in suite if t.split == "test")
    policy = ModelPolicy(model, SamplingParams(max_new_tokens=48))
    traj = asyncio.run(run_episode(env, policy, task.id, 0))
    roles = [m.role for m in traj.messages]
    print([(m.role, (m.content or "")[:80]) for m in traj.messages])
    assert traj.terminated or traj.truncated
    assert traj.rubric is not None and 0.0 <= traj.reward <= 1.0
    assistant_texts = [t for t in traj.turns if not t.calls]
    if assistant_texts:  # every reply without tool calls went to the model-played user
        assert user.stats["model_calls"] >= 1
        assert roles.count("user") >= 2
    assert all(t.token_ids for t in traj.turns)  # token-exact capture of what the agent sampled
