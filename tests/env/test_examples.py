"""Few-shot examples (`AgentSpec.examples`): they open every episode, and nothing grades, judges,
exports or trains on them."""

from __future__ import annotations

import pytest

from agentgym.env import ToolUseEnv, decode_observation
from agentgym.grading.rubric import final_answer, replies
from agentgym.rewards.judge import render_trajectory
from agentgym.sft.export import _messages
from agentgym.spec.agent import AgentSpec
from agentgym.suites import load_suite
from agentgym.suites.suite import TaskSuite

TASK = "calendar-cancel-demo"
DEMO = [{"role": "user", "content": "Example question?"}, {"role": "assistant", "content": "DEMO-REPLY"}]


def with_examples(examples) -> TaskSuite:
    s = load_suite("starter")
    aid = s.tasks[TASK].agent_id
    agents = dict(s.agents)
    agents[aid] = AgentSpec.model_validate({**s.agents[aid].model_dump(), "examples": examples})
    return TaskSuite(s.name, s.world, agents, s.tasks)


@pytest.mark.parametrize(
    "roles", [["assistant"], ["user"], ["user", "user"], ["user", "assistant", "assistant", "user"]]
)
def test_examples_must_alternate_from_user_to_assistant(roles):
    with pytest.raises(ValueError, match="must alternate"):
        AgentSpec(
            id="a", name="a", system_prompt="s", tools=("t",),
            examples=[{"role": r, "content": "x"} for r in roles],
        )  # fmt: skip


def test_examples_open_the_episode_and_stay_out_of_grading_and_export():
    env = ToolUseEnv(with_examples(DEMO))
    try:
        obs, _ = env.reset(seed=0, options={"task_id": TASK})
        msgs = decode_observation(obs)
        assert [m["role"] for m in msgs] == ["system", "user", "assistant", "user"]
        assert msgs[1:3] == DEMO
        assert msgs[3]["content"] == env.task.instruction
        env.step("My own answer.")
        traj = env.trajectory(policy="scripted")
    finally:
        env.close()
    assert traj.examples == 2
    assert [m.content for m in traj.messages[1:3]] == ["Example question?", "DEMO-REPLY"]
    assert [m.role for m in traj.dialogue()] == ["system", "user", "assistant"]
    assert replies(traj) == ["My own answer."]
    assert final_answer(traj) == "My own answer."
    assert "DEMO" not in render_trajectory(traj) and "Example question" not in render_trajectory(traj)
    exported = _messages(traj)
    assert [m["role"] for m in exported] == ["system", "user", "assistant"]
    assert "DEMO-REPLY" not in str(exported)


def test_no_examples_leaves_messages_as_they_were(starter):
    env = ToolUseEnv(starter)
    try:
        env.reset(seed=0, options={"task_id": TASK})
        env.step("Done.")
        traj = env.trajectory(policy="scripted")
    finally:
        env.close()
    assert traj.examples == 0 and traj.dialogue() == traj.messages
