"""Contracts in agentgym.spec: JSON round-trips, frozenness, strictness, validators, docs, JSONL."""

from __future__ import annotations

import gzip
import importlib
import inspect
import json
import pkgutil

import pytest
from pydantic import ValidationError

import agentgym.spec as spec
from agentgym.spec import (
    AgentSpec,
    AnswerCriterion,
    CallCriterion,
    CallOutcome,
    CallPattern,
    Change,
    CheckpointCriterion,
    Condition,
    CriterionResult,
    DomainSpec,
    Effect,
    EntitySpec,
    FilterArg,
    ForbiddenCriterion,
    FunctionCall,
    GoldCall,
    GoldTurn,
    JsonlAppender,
    JsonlError,
    JudgeCriterion,
    Message,
    Provenance,
    Rubric,
    RubricResult,
    StateCriterion,
    TaskSpec,
    Taxonomy,
    ToolAnnotations,
    ToolCall,
    ToolSemantics,
    ToolSpec,
    Trajectory,
    TurnRecord,
    UserProfile,
    WorldSnapshot,
    qualified_name,
    read_jsonl,
    write_jsonl,
)
from agentgym.spec.base import Record

# ---- builders --------------------------------------------------------------------------------


def make_tool(**over: object) -> ToolSpec:
    kw: dict[str, object] = dict(
        name="calendar__create_event",
        title="Create event",
        description="Create an event — with “quotes” and ünïcödé.",
        input_schema={
            "type": "object",
            "required": ["title"],
            "properties": {"title": {"type": "string"}, "n": {"type": "integer", "minimum": 0}},
        },
        output_schema={"type": "object", "properties": {"id": {"type": "string"}}},
        annotations=ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=False),
        provenance=Provenance(
            source="starter",
            server="calendar",
            original_name="create_event",
            package="agentgym==0.1",
            license="MIT",
        ),
        taxonomy=Taxonomy(category="Productivity", domain="calendar"),
        semantics=ToolSemantics(
            operation="action",
            collection="calendar.events",
            id_arg="event_id",
            field_args={"name": "title"},
            filters={"status": FilterArg(field="status", op="ne")},
            preconditions=(
                Condition(field="status", op="ne", value="cancelled", message="nope"),
                Condition(field="end", op="gt", value={"$field": "start"}),
            ),
            effects=(
                Effect(op="append", field="attendees", value={"$arg": "email"}),
                Effect(op="increment", field="n", value=2.5),
            ),
            defaults={"status": "confirmed", "attendees": []},
            touch={"last_viewed_at": {"$now": True}},
            returns="record",
        ),
    )
    kw.update(over)
    return ToolSpec(**kw)  # type: ignore[arg-type]


def all_kinds_rubric() -> Rubric:
    return Rubric(
        criteria=(
            StateCriterion(
                id="s1",
                description="one event titled X",
                collection="calendar.events",
                where=(
                    Condition(field="title", op="eq", value="X"),
                    Condition(field="attendees", op="contains", value={"$arg": "email"}),
                ),
                expect="count",
                count=1,
                weight=2.0,
            ),
            CallCriterion(
                id="c1",
                tool="calendar__*_event",
                args={"title": "X", "n": 3},
                succeeded=None,
                min_count=1,
                max_count=2,
            ),
            CheckpointCriterion(
                id="k1",
                sequence=(
                    CallPattern(tool="calendar__list_events"),
                    CallPattern(tool="calendar__create_event", args={"title": "X"}, succeeded=False),
                ),
            ),
            AnswerCriterion(id="a1", facts=("evt_0015", "$1,250.50")),
            ForbiddenCriterion(id="f1", call=CallPattern(tool="calendar__delete_event", succeeded=None)),
            ForbiddenCriterion(
                id="f2", collection="calendar.events", where=(Condition(field="status", value="cancelled"),)
            ),
            ForbiddenCriterion(id="f3", allow_changes=("calendar.events/evt_00*",)),
            JudgeCriterion(
                id="j1", criterion="The reply is polite.", weight=0.5, choices=("bad", "ok", "good", "great")
            ),
        ),
        pass_threshold=0.75,
    )


def make_task(**over: object) -> TaskSpec:
    kw: dict[str, object] = dict(
        id="cal-001",
        agent_id="calendar_assistant",
        instruction="Book “X” tomorrow at 10 — thanks!",
        initial_state=WorldSnapshot(
            collections={
                "calendar.events": [
                    {
                        "id": "evt_0001",
                        "title": "A",
                        "attendees": ["a@b.example"],
                        "nested": {"k": [1, 2.5, None]},
                    },
                ]
            }
        ),
        rubric=all_kinds_rubric(),
        gold=(
            GoldTurn(
                calls=(
                    GoldCall(tool="calendar__create_event", arguments={"title": "X", "n": 1}),
                    GoldCall(tool="calendar__list_events"),
                )
            ),
            GoldTurn(answer="Done: evt_0015."),
        ),
        difficulty="moderate",
        split="test",
        user=UserProfile(style="terse", hidden_facts={"room": "4.12", "n": 3}, follow_ups=("yes", "no")),
        max_turns=5,
        tags=("calendar", "create"),
    )
    kw.update(over)
    return TaskSpec(**kw)  # type: ignore[arg-type]


def make_trajectory() -> Trajectory:
    change = Change(
        collection="calendar.events",
        id="evt_0015",
        before=None,
        after={"id": "evt_0015", "title": "X", "attendees": []},
    )
    return Trajectory(
        id="ep-1",
        task_id="cal-001",
        agent_id="calendar_assistant",
        seed=7,
        policy="oracle",
        tools=(make_tool().openai_schema(),),
        messages=(
            Message(role="system", content="You are helpful."),
            Message(role="user", content="Book X"),
            Message(
                role="assistant",
                content="",
                reasoning_content="plan: create",
                tool_calls=(
                    ToolCall(
                        id="call_0",
                        function=FunctionCall(name="calendar__create_event", arguments='{"title": "X"}'),
                    ),
                    ToolCall(id="call_1", function=FunctionCall(name="bogus", arguments="{not json")),
                ),
            ),
            Message(
                role="tool",
                content='{"id": "evt_0015"}',
                tool_call_id="call_0",
                name="calendar__create_event",
            ),
            Message(role="assistant", content="Done."),
        ),
        turns=(
            TurnRecord(
                index=0,
                message_index=2,
                token_ids=(1, 2, 3),
                logprobs=(-0.5, -0.125, 0.0),
                policy_version=4,
                finish_reason="stop",
                num_tokens=3,
                calls=(
                    CallOutcome(call_id="call_0", tool="calendar__create_event", ok=True),
                    CallOutcome(
                        call_id="call_1",
                        tool="bogus",
                        ok=False,
                        error="unknown_tool",
                        injected=False,
                        cached=True,
                    ),
                ),
                changes=(change,),
                reward=0.25,
                env_ms=1.5,
                gen_ms=20.0,
            ),
            TurnRecord(index=1, message_index=4),
        ),
        state_diff=(change,),
        rubric=RubricResult(
            score=0.5,
            passed=False,
            gated=False,
            criteria=(
                CriterionResult(id="s1", kind="state", weight=1.0, score=1.0, turn=0),
                CriterionResult(id="j1", kind="judge", weight=0.5, score=None, detail="no judge"),
            ),
            ungraded=("j1",),
        ),
        reward=0.5,
        reward_components={"rubric": 0.5, "format": 0.0},
        terminated=True,
        end_reason="answered",
        metrics={"tool_calls": 2.0},
        timings={"total": 1.25},
        versions={"agentgym": "0.1.0"},
    )


def make_agent() -> AgentSpec:
    return AgentSpec(
        id="calendar_assistant",
        name="Cal",
        system_prompt="You manage calendars.",
        tools=("calendar__create_event", "calendar__list_events"),
        domains=("calendar",),
    )


def make_domain() -> DomainSpec:
    entity = EntitySpec(
        collection="calendar.events",
        id_prefix="evt",
        unique=("title",),
        refs={"calendar_id": "calendar.calendars"},
        trace_fields=("last_viewed_at",),
        invariants=(Condition(field="end", op="gt", value={"$field": "start"}),),
        record_schema={"type": "object", "properties": {"id": {"type": "string"}}},
    )
    cal = EntitySpec(
        collection="calendar.calendars",
        id_prefix="cal",
        record_schema={"type": "object", "properties": {"id": {"type": "string"}}},
    )
    return DomainSpec(
        name="calendar",
        category="Productivity",
        entities=(entity, cal),
        tools=(make_tool(),),
        seed=WorldSnapshot(collections={"calendar.events": [{"id": "evt_0001"}]}),
    )


# ---- JSON round trips ------------------------------------------------------------------------

ROUND_TRIP_CASES = {
    "tool": make_tool,
    "tool_minimal": lambda: ToolSpec(
        name="t",
        description="d",
        input_schema={},
        provenance=Provenance(source="crawl", server="s", original_name="t"),
        taxonomy=Taxonomy(category="c", domain="d"),
    ),
    "agent": make_agent,
    "task": make_task,
    "rubric": all_kinds_rubric,
    "trajectory": make_trajectory,
    "domain": make_domain,
}


@pytest.mark.parametrize("factory", ROUND_TRIP_CASES.values(), ids=ROUND_TRIP_CASES.keys())
def test_json_round_trip(factory) -> None:
    m = factory()
    back = type(m).model_validate_json(m.model_dump_json())
    assert back == m
    assert back.model_dump_json() == m.model_dump_json()


def test_rubric_round_trip_keeps_criterion_kinds() -> None:
    r = all_kinds_rubric()
    back = Rubric.model_validate_json(r.model_dump_json())
    kinds = [type(c) for c in back.criteria]
    assert kinds == [
        StateCriterion,
        CallCriterion,
        CheckpointCriterion,
        AnswerCriterion,
        ForbiddenCriterion,
        ForbiddenCriterion,
        ForbiddenCriterion,
        JudgeCriterion,
    ]
    assert [c.kind for c in back.criteria] == [
        "state",
        "call",
        "checkpoint",
        "answer",
        "forbidden",
        "forbidden",
        "forbidden",
        "judge",
    ]
    assert back.criteria[0].count == 1
    assert back.criteria[0].where[1].value == {"$arg": "email"}
    assert back.criteria[1].args == {"title": "X", "n": 3}
    assert back.criteria[1].succeeded is None
    assert back.criteria[2].sequence[1].succeeded is False
    assert back.criteria[7].choices == ("bad", "ok", "good", "great")


def test_trajectory_round_trip_details() -> None:
    t = make_trajectory()
    back = Trajectory.model_validate_json(t.model_dump_json())
    assert back.turns[0].token_ids == (1, 2, 3)
    assert back.turns[0].logprobs == (-0.5, -0.125, 0.0)
    assert back.turns[0].calls[1].error == "unknown_tool"
    assert back.turns[0].changes[0].before is None
    assert back.messages[2].tool_calls[1].function.arguments == "{not json"
    assert back.messages[2].tool_calls[0].type == "function"
    assert back.rubric is not None and back.rubric.criteria[1].score is None


def test_message_openai_drops_none() -> None:
    m = Message(role="tool", content="x", tool_call_id="c1", name="t")
    assert m.openai() == {"role": "tool", "content": "x", "tool_call_id": "c1", "name": "t"}
    m2 = make_trajectory().messages[2].openai()
    assert "content" in m2 and m2["content"] == ""
    assert "tool_call_id" not in m2
    assert m2["tool_calls"][0] == {
        "id": "call_0",
        "type": "function",
        "function": {"name": "calendar__create_event", "arguments": '{"title": "X"}'},
    }


def test_trajectory_json_is_plain_openai_shapes() -> None:
    data = json.loads(make_trajectory().model_dump_json())
    assert data["messages"][2]["tool_calls"][0]["function"]["arguments"] == '{"title": "X"}'
    assert data["tools"][0]["type"] == "function"
    assert data["tools"][0]["function"]["name"] == "calendar__create_event"


# ---- frozen, extra fields --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("factory", "field", "value"),
    [
        (make_tool, "name", "other"),
        (make_agent, "name", "x"),
        (make_task, "max_turns", 3),
        (all_kinds_rubric, "pass_threshold", 0.5),
        (make_trajectory, "reward", 1.0),
        (lambda: Condition(field="a"), "op", "ne"),
        (lambda: WorldSnapshot(), "now", "2020-01-01T00:00:00Z"),
    ],
)
def test_frozen(factory, field: str, value: object) -> None:
    m = factory()
    before = getattr(m, field)
    with pytest.raises(ValidationError):
        setattr(m, field, value)
    assert getattr(m, field) == before


def test_frozen_nested() -> None:
    t = make_task()
    with pytest.raises(ValidationError):
        t.rubric.criteria[0].weight = 9.0  # type: ignore[misc]
    assert isinstance(t.gold, tuple)
    assert isinstance(t.rubric.criteria, tuple)


@pytest.mark.parametrize("factory", [make_tool, make_agent, make_task, all_kinds_rubric, make_trajectory])
def test_extra_fields_rejected(factory) -> None:
    m = factory()
    data = json.loads(m.model_dump_json())
    data["surprise"] = 1
    with pytest.raises(ValidationError, match="surprise"):
        type(m).model_validate(data)


def test_extra_fields_rejected_nested() -> None:
    data = json.loads(make_task().model_dump_json())
    data["rubric"]["criteria"][0]["colour"] = "red"
    with pytest.raises(ValidationError, match="colour"):
        TaskSpec.model_validate(data)
    data2 = json.loads(make_tool().model_dump_json())
    data2["provenance"]["stars"] = 5
    with pytest.raises(ValidationError, match="stars"):
        ToolSpec.model_validate(data2)


# ---- validators --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["a", "get_weather", "A-b_9", "x" * 64, "calendar__list_events"])
def test_tool_name_valid(name: str) -> None:
    assert make_tool(name=name).name == name


@pytest.mark.parametrize(
    "name", ["", "x" * 65, "has space", "dot.name", "slash/name", "ümlaut", "semi;colon", "tab\tname"]
)
def test_tool_name_invalid(name: str) -> None:
    with pytest.raises(ValidationError, match="must match"):
        make_tool(name=name)


@pytest.mark.parametrize("schema", [{"type": "string"}, {"type": "array"}, {"type": "integer"}])
def test_input_schema_must_be_object(schema: dict) -> None:
    with pytest.raises(ValidationError, match="object"):
        make_tool(input_schema=schema)


@pytest.mark.parametrize("schema", [{}, {"type": "object"}, {"properties": {"a": {"type": "string"}}}])
def test_input_schema_object_accepted(schema: dict) -> None:
    assert make_tool(input_schema=schema).input_schema == schema


def test_tool_read_only_and_openai_schema() -> None:
    t = make_tool()
    assert t.read_only is False  # semantics action wins over annotations
    t2 = make_tool(
        semantics=ToolSemantics(operation="search", collection="c"),
        annotations=ToolAnnotations(read_only_hint=False),
    )
    assert t2.read_only is True
    t3 = make_tool(semantics=None, annotations=ToolAnnotations(read_only_hint=True))
    assert t3.read_only is True
    t4 = make_tool(semantics=None, annotations=ToolAnnotations())
    assert t4.read_only is False
    assert t.openai_schema() == {
        "type": "function",
        "function": {
            "name": "calendar__create_event",
            "description": t.description,
            "parameters": t.input_schema,
        },
    }


def test_rubric_unique_ids() -> None:
    with pytest.raises(ValidationError, match="unique"):
        Rubric(criteria=(AnswerCriterion(id="x", facts=("a",)), JudgeCriterion(id="x", criterion="c")))


def test_rubric_needs_weighted_non_gate() -> None:
    with pytest.raises(ValidationError, match="weighted, non-gate"):
        Rubric(criteria=(ForbiddenCriterion(id="f", call=CallPattern(tool="t")),))
    with pytest.raises(ValidationError, match="weighted, non-gate"):
        Rubric(
            criteria=(
                ForbiddenCriterion(id="f", call=CallPattern(tool="t")),
                AnswerCriterion(id="a", facts=("x",), weight=0.0),
            )
        )
    ok = Rubric(
        criteria=(
            ForbiddenCriterion(id="f", call=CallPattern(tool="t")),
            AnswerCriterion(id="a", facts=("x",), weight=0.0),
            JudgeCriterion(id="j", criterion="c", weight=0.1),
        )
    )
    assert len(ok.criteria) == 3


def test_rubric_bounds() -> None:
    with pytest.raises(ValidationError):
        Rubric(criteria=())
    with pytest.raises(ValidationError):
        Rubric(criteria=(AnswerCriterion(id="a", facts=("x",)),), pass_threshold=1.5)
    with pytest.raises(ValidationError):
        AnswerCriterion(id="a", facts=("x",), weight=-1)
    with pytest.raises(ValidationError):
        AnswerCriterion(id="a", facts=())
    with pytest.raises(ValidationError):
        CheckpointCriterion(id="k", sequence=(CallPattern(tool="a"),))
    with pytest.raises(ValidationError):
        CallCriterion(id="c", tool="t", min_count=-1)


def test_rubric_discriminator_from_dict() -> None:
    r = Rubric.model_validate(
        {
            "criteria": [
                {"kind": "answer", "id": "a", "facts": ["x"]},
                {"kind": "call", "id": "c", "tool": "t"},
            ]
        }
    )
    assert isinstance(r.criteria[0], AnswerCriterion)
    assert isinstance(r.criteria[1], CallCriterion)
    assert (
        r.criteria[1].succeeded is True and r.criteria[1].min_count == 1 and r.criteria[1].max_count is None
    )
    with pytest.raises(ValidationError):
        Rubric.model_validate({"criteria": [{"kind": "vibes", "id": "a"}]})


@pytest.mark.parametrize(
    ("expect", "count", "ok"),
    [
        ("count", 2, True),
        ("count", 0, True),
        ("count", None, False),
        ("exists", None, True),
        ("exists", 1, False),
        ("absent", None, True),
        ("absent", 0, False),
    ],
)
def test_state_criterion_count_iff_expect_count(expect: str, count: int | None, ok: bool) -> None:
    kw = dict(id="s", collection="c", expect=expect, count=count)
    if ok:
        assert StateCriterion(**kw).count == count
    else:
        with pytest.raises(ValidationError, match="count is required"):
            StateCriterion(**kw)


@pytest.mark.parametrize(
    ("kw", "ok"),
    [
        ({}, False),
        ({"call": CallPattern(tool="t")}, True),
        ({"collection": "c"}, True),
        ({"collection": "c", "where": (Condition(field="a"),)}, True),
        ({"allow_changes": ()}, True),
        ({"allow_changes": ("c/*",)}, True),
        ({"call": CallPattern(tool="t"), "collection": "c"}, False),
        ({"call": CallPattern(tool="t"), "allow_changes": ("x",)}, False),
        ({"collection": "c", "allow_changes": ("x",)}, False),
        ({"where": (Condition(field="a"),)}, False),
    ],
)
def test_forbidden_exactly_one_rule(kw: dict, ok: bool) -> None:
    if ok:
        assert ForbiddenCriterion(id="f", **kw).kind == "forbidden"
    else:
        with pytest.raises(ValidationError, match="exactly one"):
            ForbiddenCriterion(id="f", **kw)


def test_gold_turn_calls_xor_answer() -> None:
    with pytest.raises(ValidationError, match="either calls or an answer"):
        GoldTurn()
    with pytest.raises(ValidationError, match="either calls or an answer"):
        GoldTurn(calls=(GoldCall(tool="t"),), answer="x")
    assert GoldTurn(answer="").answer == ""  # empty answer still counts as an answer
    assert GoldTurn(calls=(GoldCall(tool="t"),)).answer is None
    assert GoldCall(tool="t").arguments == {}


def test_task_gold_must_end_with_answer() -> None:
    with pytest.raises(ValidationError, match="end with an answer"):
        make_task(gold=(GoldTurn(answer="first"), GoldTurn(calls=(GoldCall(tool="t"),))))
    with pytest.raises(ValidationError):
        make_task(gold=())
    t = make_task(gold=(GoldTurn(answer="only"),))
    assert t.gold[-1].answer == "only"


def test_task_defaults_and_bounds() -> None:
    t = TaskSpec(
        id="t",
        agent_id="a",
        instruction="i",
        initial_state=WorldSnapshot(),
        rubric=Rubric(criteria=(AnswerCriterion(id="a", facts=("x",)),)),
        gold=(GoldTurn(answer="x"),),
    )
    assert (t.difficulty, t.split, t.max_turns, t.tags) == ("simple", "train", 12, ())
    assert t.user.style == "neutral"
    assert t.initial_state.now == "2026-03-02T09:00:00Z"
    with pytest.raises(ValidationError):
        make_task(max_turns=0)
    with pytest.raises(ValidationError):
        make_task(difficulty="impossible")


def test_agent_needs_a_tool() -> None:
    with pytest.raises(ValidationError):
        AgentSpec(id="a", name="n", system_prompt="p", tools=())


def test_domain_spec_consistency() -> None:
    d = make_domain()
    with pytest.raises(ValidationError, match="unknown collection"):
        DomainSpec(name="x", category="c", entities=d.entities[1:], tools=d.tools)
    with pytest.raises(ValidationError, match="seed records for unknown collection"):
        DomainSpec(
            name="x",
            category="c",
            entities=d.entities,
            tools=(),
            seed=WorldSnapshot(collections={"nope.things": []}),
        )


def test_call_outcome_error_kind_checked() -> None:
    with pytest.raises(ValidationError):
        CallOutcome(call_id="c", tool="t", ok=False, error="kaboom")
    assert CallOutcome(call_id="c", tool="t", ok=False, error="timeout").error == "timeout"


def test_transient_errors() -> None:
    assert frozenset({"timeout", "rate_limited", "server_error"}) == spec.TRANSIENT_ERRORS


# ---- qualified_name ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("server", "tool", "expected"),
    [
        ("calendar", "list_events", "calendar__list_events"),
        ("my server", "get.item", "my_server__get_item"),
        ("gh-api", "repo/list", "gh-api__repo_list"),
        ("café", "tôol", "caf___t_ol"),
    ],
)
def test_qualified_name(server: str, tool: str, expected: str) -> None:
    q = qualified_name(server, tool)
    assert q == expected
    assert make_tool(name=q).name == q


def test_qualified_name_truncates_to_64() -> None:
    q = qualified_name("s" * 40, "t" * 40)
    assert len(q) == 64
    assert q == "s" * 40 + "__" + "t" * 22
    assert make_tool(name=q).name == q


# ---- JSONL -----------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".jsonl", ".jsonl.gz"])
def test_jsonl_round_trip(tmp_path, suffix: str) -> None:
    path = tmp_path / "sub" / f"agents{suffix}"
    agents = [make_agent(), make_agent().model_copy(update={"id": "b", "name": "Bé “quoted”"})]
    assert write_jsonl(path, agents) == 2
    assert list(read_jsonl(path, AgentSpec)) == agents
    assert write_jsonl(path, [make_agent().model_copy(update={"id": "c"})], append=True) == 1
    back = list(read_jsonl(path, AgentSpec))
    assert [a.id for a in back] == ["calendar_assistant", "b", "c"]
    # overwrite (append=False) replaces the content
    assert write_jsonl(path, agents[:1]) == 1
    assert [a.id for a in read_jsonl(path, AgentSpec)] == ["calendar_assistant"]
    if suffix == ".jsonl.gz":
        with gzip.open(path, "rt", encoding="utf-8") as f:
            assert json.loads(f.readline())["id"] == "calendar_assistant"
    else:
        assert path.read_text(encoding="utf-8").count("\n") == 1


def test_jsonl_round_trip_trajectories_and_tasks(tmp_path) -> None:
    p = tmp_path / "t.jsonl"
    write_jsonl(p, [make_trajectory()])
    assert list(read_jsonl(p, Trajectory)) == [make_trajectory()]
    p2 = tmp_path / "tasks.jsonl.gz"
    write_jsonl(p2, [make_task(), make_task(id="cal-002")])
    assert [t.id for t in read_jsonl(p2, TaskSpec)] == ["cal-001", "cal-002"]


def test_jsonl_blank_lines_skipped_and_bad_line_named(tmp_path) -> None:
    p = tmp_path / "a.jsonl"
    good = make_agent().model_dump_json()
    p.write_text(f'{good}\n\n   \n{good}\n{{"id": "x"}}\n{good}\n', encoding="utf-8")
    it = read_jsonl(p, AgentSpec)
    assert next(it) == make_agent()
    assert next(it) == make_agent()
    with pytest.raises(JsonlError) as ei:
        next(it)
    msg = str(ei.value)
    assert f"{p}:5:" in msg
    assert "AgentSpec" in msg
    assert isinstance(ei.value, ValueError)


def test_jsonl_not_json_line_raises(tmp_path) -> None:
    p = tmp_path / "b.jsonl.gz"
    with gzip.open(p, "wt", encoding="utf-8") as f:
        f.write("this is not json\n")
    with pytest.raises(JsonlError, match=r"b\.jsonl\.gz:1:"):
        list(read_jsonl(p, AgentSpec))


def test_jsonl_appender_durable(tmp_path) -> None:
    p = tmp_path / "deep" / "dir" / "traj.jsonl"
    app = JsonlAppender(p)
    try:
        app.append(make_agent())
        # readable by another reader before close: flushed
        assert [a.id for a in read_jsonl(p, AgentSpec)] == ["calendar_assistant"]
        app.append(make_agent().model_copy(update={"id": "second"}))
        assert [a.id for a in read_jsonl(p, AgentSpec)] == ["calendar_assistant", "second"]
    finally:
        app.close()
    with JsonlAppender(p) as app2:  # reopening appends, never truncates
        app2.append(make_agent().model_copy(update={"id": "third"}))
    assert [a.id for a in read_jsonl(p, AgentSpec)] == ["calendar_assistant", "second", "third"]


# ---- field docs ----------------------------------------------------------------------------


def _spec_records() -> list[type[Record]]:
    """Every Record subclass defined in a module of agentgym.spec (exported or not)."""
    out: dict[str, type[Record]] = {}
    for info in pkgutil.iter_modules(spec.__path__):
        mod = importlib.import_module(f"agentgym.spec.{info.name}")
        for obj in vars(mod).values():
            if (
                inspect.isclass(obj)
                and issubclass(obj, Record)
                and obj is not Record
                and obj.__module__.startswith("agentgym.spec.")
            ):
                out[f"{obj.__module__}.{obj.__qualname__}"] = obj
    return [out[k] for k in sorted(out)]


def _field_cases() -> list:
    cases = []
    for cls in _spec_records():
        for field in cls.model_fields:
            cases.append(pytest.param(cls, field, id=f"{cls.__name__}.{field}"))
    return cases


def test_spec_records_found() -> None:
    names = {c.__name__ for c in _spec_records()}
    assert {
        "ToolSpec",
        "AgentSpec",
        "TaskSpec",
        "Rubric",
        "Trajectory",
        "StateCriterion",
        "Message",
        "WorldSnapshot",
        "EntitySpec",
        "DomainSpec",
        "Condition",
        "Effect",
    } <= names
    assert "_Criterion" in names  # private bases are covered too
    exported = {
        n for n in spec.__all__ if inspect.isclass(getattr(spec, n)) and issubclass(getattr(spec, n), Record)
    }
    assert exported <= names


@pytest.mark.parametrize(("cls", "field"), _field_cases())
def test_field_has_schema_description(cls: type[Record], field: str) -> None:
    schema = cls.model_json_schema()
    prop = schema["properties"][field]
    assert isinstance(prop.get("description"), str) and prop["description"].strip()


def test_description_is_the_docstring() -> None:
    assert (
        ToolSpec.model_json_schema()["properties"]["name"]["description"]
        == "Exposed, namespaced name (see `qualified_name`)."
    )
    assert (
        TaskSpec.model_fields["gold"].description == "A path that solves the task (ends with an answer turn)."
    )
    # inherited fields keep their description
    assert CallCriterion.model_fields["tool"].description == CallPattern.model_fields["tool"].description
    assert (
        CallCriterion.model_fields["weight"].description
        == "Relative weight in the score (ignored for gates)."
    )
