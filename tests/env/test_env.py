"""ToolUseEnv against the real starter suite: the Gymnasium contract, every error path, budgets."""

from __future__ import annotations

import json

import gymnasium as gym
import pytest
from gymnasium.utils.env_checker import check_env

import agentgym
from agentgym.env import EnvConfig, ResetNeeded, ToolUseEnv, decode_observation
from agentgym.parsing import render_calls

TASK = "calendar-cancel-demo"


def hermes(*calls):
    return render_calls("hermes", list(calls))


@pytest.fixture
def env(starter):
    e = ToolUseEnv(starter)
    yield e
    e.close()


@pytest.mark.parametrize("env_id", agentgym.env_ids())
def test_registered_ids_make_reset_step(env_id):
    env = gym.make(env_id)
    obs, info = env.reset(seed=1)
    msgs = decode_observation(obs)
    assert [m["role"] for m in msgs] == ["system", "user"]
    assert info["tools"] and all(t["type"] == "function" for t in info["tools"])
    obs, reward, term, trunc, info = env.step("I cannot help.")
    if "MultiTurn" in env_id:  # the scripted user answers the first reply with the hidden detail
        assert not term and [m["role"] for m in decode_observation(obs)] == ["user"]
    else:
        assert term and not trunc and reward == 0.0
    env.close()


def test_check_env_passes_on_registered_env():
    env = gym.make("agentgym/Starter-v0")
    check_env(env.unwrapped, skip_render_check=True)
    check_env(
        ToolUseEnv("starter", config={"faults": {"default": {"timeout": 0.3, "partial_result": 0.3}}}),
        skip_render_check=True,
    )


def test_observations_lie_in_space_even_with_unicode(env):
    obs, _ = env.reset(seed=0, options={"task_id": TASK})
    assert env.observation_space.contains(obs)
    obs, *_ = env.step(hermes(("calendar__search_events", {"query": "Café ☕ 日本"})))
    assert env.observation_space.contains(obs)
    assert obs.isascii()


def test_oracle_episode_scores_one_and_reports_breakdown(env, starter):
    obs, info = env.reset(seed=0, options={"task_id": TASK})
    assert info["task_id"] == TASK and info["agent_id"] == "calendar_assistant"
    obs, r, term, trunc, info = env.step(hermes(("calendar__search_events", {"query": "product demo"})))
    (tool_msg,) = decode_observation(obs)
    assert tool_msg["role"] == "tool" and "evt_0011" in tool_msg["content"]
    assert (r, term, trunc) == (0.0, False, False)
    env.step(hermes(("calendar__cancel_event", {"event_id": "evt_0011"})))
    obs, r, term, trunc, info = env.step("Cancelled.")
    assert decode_observation(obs) == []
    assert (r, term, trunc) == (1.0, True, False)
    assert info["end_reason"] == "answered" and info["passed"]
    assert {c["id"] for c in info["rubric"]["criteria"]} == {
        "cancelled",
        "used-cancel",
        "not-deleted",
        "no-collateral",
    }
    traj = env.trajectory(policy="test")
    assert (
        traj.reward == 1.0
        and traj.terminated
        and [m.role for m in traj.messages][:3] == ["system", "user", "assistant"]
    )
    assert any(ch.id == "evt_0011" for t in traj.turns for ch in t.changes)
    assert [c.id for c in traj.state_diff] == ["evt_0011"]


def test_forbidden_gate_zeroes_score(env):
    env.reset(seed=0, options={"task_id": TASK})
    env.step(hermes(("calendar__delete_event", {"event_id": "evt_0011"})))
    *_, info = env.step("Deleted it.")
    assert info["score"] == 0.0 and info["rubric"]["gated"]


@pytest.mark.parametrize(
    "action, kind",
    [
        ('<tool_call>{"name": "calendar__get_event", "arguments": {oops}}</tool_call>', "parse_error"),
        ('<tool_call>{"arguments": {}}</tool_call>', "parse_error"),
        (hermes(("calendar__teleport", {})), "unknown_tool"),
        (hermes(("calendar__get_event", {})), "invalid_arguments"),
        (hermes(("calendar__get_event", {"event_id": 7})), "invalid_arguments"),
        (hermes(("calendar__get_event", {"event_id": "evt_0001", "extra": 1})), "invalid_arguments"),
        (hermes(("calendar__get_event", {"event_id": "evt_9999"})), "not_found"),
        (hermes(("calendar__cancel_event", {"event_id": "evt_0013"})), "precondition_failed"),
        (
            hermes(
                (
                    "calendar__create_event",
                    {
                        "calendar_id": "cal_0001",
                        "title": "x",
                        "start": "2026-03-03T10:00:00Z",
                        "end": "2026-03-03T09:00:00Z",
                    },
                )
            ),
            "invalid_arguments",
        ),
        ("get_event(7)", "parse_error"),
    ],
)
def test_every_bad_call_gets_a_typed_error_and_is_counted(env, action, kind):
    env.reset(seed=0, options={"task_id": TASK})
    obs, r, term, trunc, info = env.step(action)
    msgs = decode_observation(obs)
    assert len(msgs) == 1 and msgs[0]["role"] == "tool"
    err = json.loads(msgs[0]["content"])
    assert err["error"] == kind and err["message"]
    assert info["errors"] == {kind: 1} and info["error_total"] == 1
    assert not term
    traj = env.trajectory()
    (call,) = traj.messages[2].tool_calls
    assert traj.messages[3].tool_call_id == call.id
    assert traj.turns[0].calls[0].error == kind


def test_unknown_tool_error_suggests_close_names(env):
    env.reset(seed=0, options={"task_id": TASK})
    obs, *_ = env.step(hermes(("calendar__cancel_evnt", {"event_id": "evt_0011"})))
    assert "calendar__cancel_event" in decode_observation(obs)[0]["content"]


def test_parallel_calls_run_in_order_and_each_is_answered(env):
    env.reset(seed=0, options={"task_id": "calendar-sick-thursday"})
    obs, *_ = env.step(
        hermes(
            ("calendar__cancel_event", {"event_id": "evt_0006"}),
            ("calendar__cancel_event", {"event_id": "evt_0006"}),
            ("calendar__get_event", {"event_id": "evt_0006"}),
        )
    )
    msgs = decode_observation(obs)
    assert [m["tool_call_id"] for m in msgs] == ["call_0_0", "call_0_1", "call_0_2"]
    assert json.loads(msgs[0]["content"])["status"] == "cancelled"
    assert json.loads(msgs[1]["content"])["error"] == "precondition_failed"  # saw the first call's effect
    assert json.loads(msgs[2]["content"])["status"] == "cancelled"


def test_call_limit_answers_extra_calls_without_running_them(starter):
    env = ToolUseEnv(starter, config=EnvConfig(max_calls_per_turn=2))
    env.reset(seed=0, options={"task_id": TASK})
    obs, *_, info = env.step(hermes(*[("calendar__get_event", {"event_id": "evt_0001"})] * 3))
    msgs = decode_observation(obs)
    assert len(msgs) == 3 and json.loads(msgs[2]["content"])["error"] == "call_limit"
    assert info["errors"] == {"call_limit": 1}


def test_reasoning_is_kept_and_never_executed(env):
    env.reset(seed=0, options={"task_id": TASK})
    think = "<think>maybe " + hermes(("calendar__delete_event", {"event_id": "evt_0011"})) + "</think>"
    obs, r, term, *_ = env.step(think + "I will not do anything.")
    assert term
    traj = env.trajectory()
    assert "delete_event" in traj.messages[2].reasoning_content
    assert traj.messages[2].tool_calls is None and traj.metrics["tool_calls"] == 0
    assert traj.state_diff == ()


def test_structured_openai_action_with_tokens(env):
    env.reset(seed=0, options={"task_id": TASK})
    action = {
        "role": "assistant",
        "content": None,
        "token_ids": [1, 2, 3],
        "logprobs": [-0.1, -0.2, -0.3],
        "tool_calls": [
            {
                "id": "abc",
                "type": "function",
                "function": {"name": "calendar__get_event", "arguments": '{"event_id": "evt_0011"}'},
            }
        ],
    }
    obs, *_ = env.step(action)
    assert decode_observation(obs)[0]["tool_call_id"] == "abc"
    turn = env.trajectory().turns[0]
    assert turn.token_ids == (1, 2, 3) and turn.logprobs == (-0.1, -0.2, -0.3) and turn.num_tokens == 3


def test_truncation_on_max_turns_still_grades(starter):
    env = ToolUseEnv(starter, config=EnvConfig(max_turns=2))
    env.reset(seed=0, options={"task_id": TASK})
    _, _, term, trunc, _ = env.step(hermes(("calendar__cancel_event", {"event_id": "evt_0011"})))
    assert (term, trunc) == (False, False)
    _, r, term, trunc, info = env.step(hermes(("calendar__get_event", {"event_id": "evt_0011"})))
    assert (term, trunc) == (False, True) and info["end_reason"] == "max_turns"
    assert r == 1.0  # the work was done; only the reply was cut off
    with pytest.raises(ResetNeeded):
        env.step("more")


def test_truncation_on_token_budget(starter):
    env = ToolUseEnv(starter, config=EnvConfig(token_budget=10))
    env.reset(seed=0, options={"task_id": TASK})
    *_, term, trunc, info = env.step(hermes(("calendar__get_event", {"event_id": "evt_0011"})))
    assert trunc and not term and info["end_reason"] == "token_budget"


def test_multi_turn_scripted_user(env):
    env.reset(seed=0, options={"task_id": "calendar-lunch-then-invite"})
    env.step(
        hermes(
            (
                "calendar__create_event",
                {
                    "calendar_id": "cal_0002",
                    "title": "Lunch with Ben",
                    "start": "2026-03-09T12:00:00Z",
                    "end": "2026-03-09T13:00:00Z",
                },
            )
        )
    )
    obs, r, term, trunc, _ = env.step("Created.")
    (user,) = decode_observation(obs)
    assert user["role"] == "user" and "ben.carter@mail.example" in user["content"] and not term
    env.step(hermes(("calendar__add_attendee", {"event_id": "evt_0015", "email": "ben.carter@mail.example"})))
    _, r, term, *_ = env.step("Invited.")
    assert term and r == 1.0


def test_step_before_reset_raises(starter):
    with pytest.raises(ResetNeeded):
        ToolUseEnv(starter).step("hi")


def test_bad_options_are_clear_errors(starter):
    env = ToolUseEnv(starter)
    with pytest.raises(KeyError, match="no task"):
        env.reset(options={"task_id": "nope"})
    with pytest.raises(ValueError, match="no such tasks"):
        ToolUseEnv(starter, task_ids=["nope"])


async def test_async_api_matches_sync(starter):
    a, b = ToolUseEnv(starter), ToolUseEnv(starter)
    action = hermes(("calendar__search_events", {"query": "demo"}))
    ra = a.reset(seed=3, options={"task_id": TASK})
    rb = await b.areset(seed=3, options={"task_id": TASK})
    assert ra == rb
    assert a.step(action) == await b.astep(action)


def test_seeded_episodes_replay_exactly_with_faults_on(starter):
    cfg = EnvConfig(
        faults={
            "default": {
                "timeout": 0.2,
                "rate_limited": 0.1,
                "server_error": 0.1,
                "partial_result": 0.3,
                "empty_result": 0.1,
                "page_size": 3,
            }
        }
    )
    script = [
        hermes(("calendar__list_events", {})),
        hermes(("calendar__search_events", {"query": "call"})),
        hermes(
            ("calendar__cancel_event", {"event_id": "evt_0011"}),
            ("calendar__get_event", {"event_id": "evt_0011"}),
        ),
        hermes(("calendar__cancel_event", {"event_id": "evt_0011"})),
        "done",
    ]

    def play(seed):
        env = ToolUseEnv(starter, config=cfg)
        out = [env.reset(seed=seed, options={"task_id": TASK})]
        for a in script:
            out.append(env.step(a))
            if out[-1][2] or out[-1][3]:
                break
        t = env.trajectory().model_dump(exclude={"timings": True, "turns": {"__all__": {"env_ms"}}})
        return out, t, env.state.snapshot()

    a, b = play(11), play(11)
    assert a == b
    errors = [o for t in a[1]["turns"] for o in t["calls"] if o["injected"]]
    assert errors, "faults were configured but none fired; the test would prove nothing"
    c = play(12)
    assert c[0] != a[0]  # a different seed draws different faults


def test_real_tool_without_a_backend_answers_a_typed_error(repo_world_suite):
    """A tool nothing can execute (no semantics, no world model, no MCP backend) is still answered."""
    env = ToolUseEnv(repo_world_suite)
    env.reset(seed=0, options={"task_index": 0})
    call = next(c for g in env.task.gold for c in g.calls if env.tools[c.tool].semantics is None)
    obs, *_, info = env.step(
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {
                    "id": "c0",
                    "type": "function",
                    "function": {"name": call.tool, "arguments": json.dumps(call.arguments)},
                }
            ],
        }
    )
    (msg,) = decode_observation(obs)
    assert '"backend_error"' in msg["content"] and "no world-model or MCP backend" in msg["content"]
    assert info["errors"] == {"backend_error": 1}


@pytest.fixture
def repo_world_suite():
    from agentgym.suites import load_suite

    suite = load_suite("agentic")
    task = next(t for t in suite if "real_tool" in t.tags)
    from agentgym.suites.suite import TaskSuite

    return TaskSuite("one", suite.world, {task.agent_id: suite.agents[task.agent_id]}, {task.id: task})
