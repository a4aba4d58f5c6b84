"""Property test: ≥ 10,000 random and malformed actions through env.step — nothing escapes,
every observation is well-formed, every error is counted."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agentgym.env import EnvConfig, ToolUseEnv, decode_observation

TOOLS = [
    "calendar__get_event",
    "calendar__list_events",
    "calendar__cancel_event",
    "calendar__create_event",
    "calendar__add_attendee",
    "calendar__search_events",
    "nope",
    "",
]
json_scalar = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=12)
)
json_value = st.recursive(
    json_scalar,
    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=8), c, max_size=3),
    max_leaves=6,
)
args = st.dictionaries(
    st.sampled_from(
        ["event_id", "query", "title", "start", "end", "email", "calendar_id", "limit", "cursor", "x"]
    ),
    json_value,
    max_size=4,
)
call = st.tuples(st.sampled_from(TOOLS), args)


@st.composite
def actions(draw):
    kind = draw(st.integers(0, 9))
    calls = draw(st.lists(call, min_size=1, max_size=3))
    if kind == 0:
        return draw(st.text(max_size=200))
    if kind == 1:
        return "".join(f"<tool_call>{json.dumps({'name': n, 'arguments': a})}</tool_call>" for n, a in calls)
    if kind == 2:  # truncated / corrupted hermes
        s = "".join(f"<tool_call>{json.dumps({'name': n, 'arguments': a})}</tool_call>" for n, a in calls)
        cut = draw(st.integers(0, len(s)))
        return s[:cut] + draw(st.text(max_size=5))
    if kind == 3:
        return "".join(
            f"<tool_call>{n}\n"
            + "".join(f"<arg_key>{k}</arg_key><arg_value>{json.dumps(v)}</arg_value>" for k, v in a.items())
            + "</tool_call>"
            for n, a in calls
        )
    if kind == 4:
        return (
            "["
            + ", ".join(
                f"{n or 'f'}(" + ", ".join(f"{k}={v!r}" for k, v in a.items()) + ")" for n, a in calls
            )
            + "]"
        )
    if kind == 5:
        return json.dumps([{"name": n, "arguments": a} for n, a in calls])
    if kind == 6:
        return {
            "role": "assistant",
            "content": draw(st.one_of(st.none(), st.text(max_size=20))),
            "tool_calls": [
                {
                    "id": draw(st.sampled_from(["a", "b", ""])),
                    "type": "function",
                    "function": {
                        "name": n,
                        "arguments": draw(st.sampled_from([json.dumps(a), "{", "[]", "null"])),
                    },
                }
                for n, a in calls
            ],
        }
    if kind == 7:
        return (
            "<think>"
            + draw(st.text(max_size=30))
            + draw(st.sampled_from(["</think>", ""]))
            + draw(st.text(max_size=30))
        )
    if kind == 8:
        return {
            "role": "assistant",
            "tool_calls": draw(
                st.one_of(st.text(max_size=5), st.integers(), st.lists(st.integers(), max_size=2))
            ),
        }
    return draw(
        st.sampled_from(
            [
                "<tool_call>",
                "</tool_call>",
                "<tool_call></tool_call>",
                '{"name": 1}',
                "f(",
                "[f()]",
                "<tool_call>x<arg_key>a</arg_key></tool_call>",
                "\x00\x01",
                "{" * 50,
            ]
        )
    )


ENV = ToolUseEnv(
    "starter",
    task_ids=["calendar-cancel-demo", "calendar-sick-thursday", "calendar-create-gym"],
    config=EnvConfig(max_turns=50, faults={"default": {"timeout": 0.05, "partial_result": 0.1}}),
)
COUNT = {"n": 0}


@settings(
    max_examples=10_000,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    database=None,
    derandomize=True,
)
@given(actions(), st.integers(0, 2))
def test_random_and_malformed_actions(action, task):
    if ENV.done or ENV.task is None:
        ENV.reset(seed=COUNT["n"], options={"task_index": task})
    before_errors = sum(ENV._errors.values())
    obs, reward, term, trunc, info = ENV.step(action)
    COUNT["n"] += 1
    assert isinstance(obs, str) and ENV.observation_space.contains(obs)
    msgs = decode_observation(obs)
    assert isinstance(reward, float) and 0.0 <= reward <= 1.0
    assert isinstance(term, bool) and isinstance(trunc, bool)
    assistant = ENV._messages[-1 - len(msgs)]
    assert assistant["role"] == "assistant"
    calls = assistant.get("tool_calls") or []
    tool_msgs = [m for m in msgs if m["role"] == "tool"]
    assert [m["tool_call_id"] for m in tool_msgs] == [c["id"] for c in calls]  # every call answered, in order
    n_err = sum(1 for m in tool_msgs if m["content"].startswith('{"error"'))
    assert sum(info["errors"].values()) == n_err
    assert sum(ENV._errors.values()) == before_errors + n_err
    if term or trunc:
        assert "rubric" in info and ENV.trajectory().messages


def test_property_ran_ten_thousand():
    assert COUNT["n"] >= 10_000
