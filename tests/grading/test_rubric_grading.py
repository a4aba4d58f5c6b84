"""Rubric grading against hand-computed values, one kind at a time, then combined."""

from __future__ import annotations

import asyncio

import pytest

from agentgym.env import ToolUseEnv
from agentgym.grading import CallRecord, Evidence, calls_from_trajectory, final_answer, grade
from agentgym.policies import OraclePolicy
from agentgym.runner import run_episode
from agentgym.spec import Rubric, WorldSnapshot
from agentgym.world.state import WorldState

INITIAL = WorldSnapshot(
    collections={
        "t.items": [
            {"id": "i1", "name": "Kettle", "price": 20.0, "tags": ["kitchen"], "seen": "x"},
            {"id": "i2", "name": "Lamp", "price": 35, "tags": []},
        ]
    }
)


def final_state(*edits):
    s = WorldState.from_snapshot(INITIAL)
    for col, rec in edits:
        s.put(col, rec) if rec.get("_del") is None else s.remove(col, rec["id"])
    return s


def ev(calls=(), answer="", final=None):
    return Evidence(
        list(calls),
        answer,
        WorldState.from_snapshot(INITIAL),
        final or final_state(),
        {"t.items": frozenset({"seen"})},
    )


def rubric(*criteria, **kw):
    return Rubric.model_validate({"criteria": list(criteria), **kw})


def score_of(r, e):
    return grade(r, e)


def test_state_exists_absent_count_with_normalised_numbers():
    e = ev(final=final_state(("t.items", {"id": "i3", "name": "Mug", "price": 4, "tags": []})))
    r = rubric(
        {"id": "a", "kind": "state", "collection": "t.items", "where": [{"field": "price", "value": 20}]},
        {
            "id": "b",
            "kind": "state",
            "collection": "t.items",
            "expect": "absent",
            "where": [{"field": "name", "value": "Mug"}],
        },
        {"id": "c", "kind": "state", "collection": "t.items", "expect": "count", "count": 3, "where": []},
    )
    res = grade(r, e)
    assert [c.score for c in res.criteria] == [1.0, 0.0, 1.0]  # 20 == 20.0 after canonicalisation
    assert res.score == pytest.approx(2 / 3)


def test_call_counts_args_outcome_and_globs():
    calls = [
        CallRecord(0, "t__get", {"id": "i1"}, True),
        CallRecord(1, "t__get", {"id": "i1"}, False),
        CallRecord(1, "t__list", {}, True),
    ]
    r = rubric(
        {"id": "a", "kind": "call", "tool": "t__get", "args": {"id": "i1"}},
        {"id": "b", "kind": "call", "tool": "t__get", "args": {"id": "i1"}, "min_count": 2},
        {"id": "c", "kind": "call", "tool": "t__get", "succeeded": None, "min_count": 2},
        {"id": "d", "kind": "call", "tool": "t__*", "min_count": 2, "max_count": 2},
        {"id": "e", "kind": "call", "tool": "t__list", "max_count": 0, "min_count": 0},
    )
    res = grade(r, ev(calls))
    assert [c.score for c in res.criteria] == [1.0, 0.0, 1.0, 1.0, 0.0]
    assert res.criteria[0].turn == 0


def test_call_alternatives_match_any_listed_name_or_glob():
    calls = [CallRecord(0, "t__search", {"q": "k"}, True), CallRecord(1, "u__get", {"id": "i1"}, True)]
    r = rubric(
        {"id": "a", "kind": "call", "tool": "t__get|t__search"},
        {"id": "b", "kind": "call", "tool": "t__get|u__*", "args": {"id": "i1"}},
        {"id": "c", "kind": "call", "tool": "t__get|t__list"},
        {"id": "d", "kind": "call", "tool": "t__get|t__search|u__get", "min_count": 2, "max_count": 2},
        {
            "id": "e",
            "kind": "checkpoint",
            "sequence": [{"tool": "t__search|t__list"}, {"tool": "u__get|t__get"}],
        },
    )
    assert [c.score for c in grade(r, ev(calls)).criteria] == [1.0, 1.0, 0.0, 1.0, 1.0]


def test_checkpoint_partial_order_credit():
    calls = [CallRecord(0, "b", {}, True), CallRecord(1, "a", {}, True), CallRecord(2, "c", {}, True)]
    r = rubric({"id": "k", "kind": "checkpoint", "sequence": [{"tool": "a"}, {"tool": "b"}, {"tool": "c"}]})
    res = grade(r, ev(calls))
    assert res.criteria[0].score == pytest.approx(1 / 3)  # a matched; b happened before a, so the chain stops
    calls.append(CallRecord(3, "b", {}, True))
    r2 = rubric({"id": "k", "kind": "checkpoint", "sequence": [{"tool": "a"}, {"tool": "b"}]})
    assert grade(r2, ev(calls)).criteria[0].turn == 3


def test_answer_facts_partial_and_normalised():
    r = rubric({"id": "f", "kind": "answer", "facts": ["$1,250.50", "Kettle", "07:30", "5"]})
    res = grade(r, ev(answer="The kettle costs 1250.5 and ships at 7:30 on 2025-03-05."))
    assert res.criteria[0].score == pytest.approx(3 / 4)
    assert "'5'" in res.criteria[0].detail


def test_forbidden_gates_call_state_and_collateral():
    changed = final_state(("t.items", {"id": "i2", "name": "Lamp", "price": 36, "tags": []}))
    trace_only = final_state(
        ("t.items", {"id": "i1", "name": "Kettle", "price": 20, "tags": ["kitchen"], "seen": "y"})
    )
    base = {"id": "ok", "kind": "state", "collection": "t.items", "where": [{"field": "id", "value": "i1"}]}
    guard = {"id": "g", "kind": "forbidden", "allow_changes": ["t.items/i1"]}
    assert grade(rubric(base, guard), ev(final=changed)).score == 0.0
    res = grade(rubric(base, guard), ev(final=trace_only))  # a trace field is not a change
    assert res.score == 1.0 and not res.gated
    new_rec = final_state(("t.items", {"id": "i9", "name": "New", "price": 1, "tags": []}))
    assert (
        grade(rubric(base, {**guard, "allow_changes": []}), ev(final=new_rec)).score == 1.0
    )  # creation is not collateral
    no_delete = {"id": "g", "kind": "forbidden", "call": {"tool": "t__delete", "succeeded": None}}
    assert grade(rubric(base, no_delete), ev([CallRecord(0, "t__delete", {}, False)])).score == 0.0
    no_state = {
        "id": "g",
        "kind": "forbidden",
        "collection": "t.items",
        "where": [{"field": "price", "op": "gt", "value": 30}],
    }
    res = grade(rubric(base, no_state), ev())
    assert res.gated and res.score == 0.0 and not res.passed


def test_weights_threshold_and_ungraded_judge():
    r = rubric(
        {
            "id": "a",
            "kind": "state",
            "collection": "t.items",
            "where": [{"field": "id", "value": "i1"}],
            "weight": 3,
        },
        {"id": "b", "kind": "answer", "facts": ["nope"], "weight": 1},
        {"id": "j", "kind": "judge", "criterion": "Polite.", "weight": 5},
        pass_threshold=0.7,
    )
    res = grade(r, ev(answer="hello"))
    assert res.score == pytest.approx(0.75) and res.passed
    assert res.ungraded == ("j",) and res.criteria[2].score is None


def test_saved_trajectory_regrades_to_the_env_score(starter):
    env = ToolUseEnv(starter)
    for tid in ["calendar-maria-leaves", "calendar-lunch-then-invite", "calendar-count-work-week"]:
        traj = asyncio.run(run_episode(env, OraclePolicy("pythonic"), tid, 0))
        task = starter.tasks[tid]
        again = grade(
            task.rubric,
            Evidence(
                calls_from_trajectory(traj),
                final_answer(traj),
                env.initial,
                env.state,
                starter.world.trace_fields,
            ),
        )
        assert again.score == traj.reward == 1.0
        assert [c.score for c in again.criteria] == [c.score for c in traj.rubric.criteria]


def test_answer_scope_any_reads_every_reply_and_boundaries():
    r = rubric({"id": "f", "kind": "answer", "facts": ["shipped"], "scope": "any"})
    assert (
        grade(
            r, Evidence([], "Anything else?", INITIAL, final_state(), {}, None, ["It already shipped."])
        ).score
        == 1.0
    )
    r_final = rubric({"id": "f", "kind": "answer", "facts": ["shipped"]})
    assert (
        grade(
            r_final, Evidence([], "Anything else?", INITIAL, final_state(), {}, None, ["It already shipped."])
        ).score
        == 0.0
    )
    times = rubric({"id": "f", "kind": "answer", "facts": ["18:00", "192.168.1.1"]})
    assert grade(times, ev(answer="Booked 18:00-20:00; router at http://192.168.1.1/admin")).score == 1.0
