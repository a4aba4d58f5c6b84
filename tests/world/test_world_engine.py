"""agentgym.world.engine on the starter calendar domain and on a small inline domain."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from agentgym.schema import validator
from agentgym.spec.tool import Provenance, Taxonomy, ToolSemantics, ToolSpec
from agentgym.world.domain import World, domain_from_dict, load_domain_file
from agentgym.world.engine import MAX_PAGE, Engine, PageShape, ToolFailure
from agentgym.world.state import WorldState, diff, same_state

CALENDAR = Path(__file__).resolve().parents[2] / "tools" / "starter" / "calendar.yaml"
NOW = "2026-03-02T09:00:00Z"
ALL_EVENTS = [f"evt_{i:04d}" for i in range(1, 15)]


@pytest.fixture(scope="module")
def cal() -> World:
    return World([load_domain_file(CALENDAR)])


@pytest.fixture
def state(cal: World) -> WorldState:
    return WorldState.from_snapshot(cal.seed)


def run(
    world: World, tool: str, args: dict[str, Any], state: WorldState, shape: PageShape | None = None
) -> Any:
    name = f"{next(iter(world.domains))}__{tool}"
    return world.engine.run(world.tools[name], args, state, shape)


def fail(world: World, tool: str, args: dict[str, Any], state: WorldState) -> ToolFailure:
    with pytest.raises(ToolFailure) as ei:
        run(world, tool, args, state)
    return ei.value


def ids(page: dict[str, Any]) -> list[str]:
    return [r["id"] for r in page["items"]]


def assert_unchanged(state: WorldState, lineage: str) -> None:
    assert state.version == 0
    assert state.log == []
    assert state.lineage == lineage


NEW_EVENT = {
    "calendar_id": "cal_0001",
    "title": "Launch",
    "start": "2026-03-20T10:00:00Z",
    "end": "2026-03-20T11:00:00Z",
}


# ---- create --------------------------------------------------------------------------------


def test_create_applies_defaults_and_assigns_id(cal: World, state: WorldState) -> None:
    out = run(cal, "create_event", dict(NEW_EVENT), state)
    assert out == {
        "id": "evt_0015",
        "calendar_id": "cal_0001",
        "title": "Launch",
        "start": "2026-03-20T10:00:00Z",
        "end": "2026-03-20T11:00:00Z",
        "status": "confirmed",
        "attendees": [],
        "reminder_minutes": 10,
    }
    assert state.get("calendar.events", "evt_0015") == out
    assert state.version == 1
    assert state.changes_since(0)[0].before is None
    assert state.changes_since(0)[0].after == out
    out2 = run(cal, "create_event", dict(NEW_EVENT), state)
    assert out2["id"] == "evt_0016"


def test_create_keeps_given_values_over_defaults(cal: World, state: WorldState) -> None:
    out = run(
        cal,
        "create_event",
        {**NEW_EVENT, "reminder_minutes": 0, "attendees": ["a@b.example"], "location": "Roof"},
        state,
    )
    assert out["reminder_minutes"] == 0  # 0 is a value, not a missing one
    assert out["attendees"] == ["a@b.example"]
    assert out["location"] == "Roof"
    assert out["status"] == "confirmed"


def test_create_default_lists_are_not_shared(cal: World, state: WorldState) -> None:
    a = run(cal, "create_event", dict(NEW_EVENT), state)
    b = run(cal, "create_event", dict(NEW_EVENT), state)
    assert a["attendees"] is not b["attendees"]
    run(cal, "add_attendee", {"event_id": a["id"], "email": "x@y.example"}, state)
    assert state.get("calendar.events", b["id"])["attendees"] == []
    assert cal.tools["calendar__create_event"].semantics.defaults["attendees"] == []  # seed spec untouched


@pytest.mark.parametrize("end", ["2026-03-20T09:00:00Z", "2026-03-20T10:00:00Z"])
def test_create_invariant_end_after_start(cal: World, state: WorldState, end: str) -> None:
    lineage = state.lineage
    e = fail(cal, "create_event", {**NEW_EVENT, "end": end}, state)
    assert e.kind == "invalid_arguments"
    assert e.message == "an event must end after it starts"
    assert_unchanged(state, lineage)
    assert state.get("calendar.events", "evt_0015") is None


def test_create_unknown_calendar_not_found(cal: World, state: WorldState) -> None:
    lineage = state.lineage
    e = fail(cal, "create_event", {**NEW_EVENT, "calendar_id": "cal_9999"}, state)
    assert e.kind == "not_found"
    assert "calendar_id" in e.message and "cal_9999" in e.message and "calendar.calendars" in e.message
    assert_unchanged(state, lineage)


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        ({"title": ""}, "title"),
        ({"attendees": ["not-an-email"]}, "email"),
        ({"start": "tomorrow", "end": "2026-03-20T11:00:00Z"}, "date-time"),
    ],
)
def test_create_record_schema_enforced(cal: World, state: WorldState, extra: dict, needle: str) -> None:
    e = fail(cal, "create_event", {**NEW_EVENT, **extra}, state)
    assert e.kind == "invalid_arguments"
    assert "would be invalid" in e.message and needle in e.message
    assert state.version == 0


def test_create_ignores_unknown_and_null_arguments(cal: World, state: WorldState) -> None:
    out = run(cal, "create_event", {**NEW_EVENT, "location": None, "colour": "red", "id": "evt_9999"}, state)
    assert out["id"] == "evt_0015"
    assert "location" not in out and "colour" not in out


def test_failed_create_does_not_consume_an_id(cal: World) -> None:
    a = WorldState.from_snapshot(cal.seed)
    b = WorldState.from_snapshot(cal.seed)
    with pytest.raises(ToolFailure):
        run(cal, "create_event", {**NEW_EVENT, "end": "2026-03-20T09:00:00Z"}, a)
    assert a.lineage == b.lineage
    assert (
        run(cal, "create_event", dict(NEW_EVENT), a)["id"]
        == run(cal, "create_event", dict(NEW_EVENT), b)["id"]
    )


# ---- get -----------------------------------------------------------------------------------


def test_get_returns_record_and_touches_trace_field(cal: World, state: WorldState) -> None:
    seed_rec = {r["id"]: r for r in cal.seed.collections["calendar.events"]}["evt_0003"]
    out = run(cal, "get_event", {"event_id": "evt_0003"}, state)
    assert out == {**seed_rec, "last_viewed_at": NOW}
    assert state.get("calendar.events", "evt_0003")["last_viewed_at"] == NOW
    assert state.version == 1
    # a second read stamps the same value: no write
    run(cal, "get_event", {"event_id": "evt_0003"}, state)
    assert state.version == 1
    # the stamp is a trace field: it changes nothing that matters
    assert same_state(cal.seed, state, cal.trace_fields)
    assert [c.id for c in diff(cal.seed, state)] == ["evt_0003"]


@pytest.mark.parametrize("rid", ["evt_9999", "", 3, None])
def test_get_not_found(cal: World, state: WorldState, rid: object) -> None:
    e = fail(cal, "get_event", {"event_id": rid}, state)
    assert e.kind == "not_found"
    assert e.message == f"no event with id {rid!r}"


def test_get_missing_id_argument(cal: World, state: WorldState) -> None:
    assert fail(cal, "get_event", {}, state).kind == "not_found"


# ---- list ----------------------------------------------------------------------------------


def test_list_calendars_sorted_by_name(cal: World, state: WorldState) -> None:
    out = run(cal, "list_calendars", {}, state)
    assert [r["name"] for r in out["items"]] == ["Personal", "Team Platform", "Work"]
    assert ids(out) == ["cal_0002", "cal_0003", "cal_0001"]
    assert out["next_cursor"] is None


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ({}, ALL_EVENTS),
        ({"calendar_id": "cal_0002"}, ["evt_0004", "evt_0007", "evt_0009", "evt_0012"]),
        ({"status": "tentative"}, ["evt_0005", "evt_0011"]),
        ({"status": "cancelled"}, ["evt_0013"]),
        (
            {"start_after": "2026-03-06T00:00:00Z", "start_before": "2026-03-10T00:00:00Z"},
            ["evt_0008", "evt_0009", "evt_0010"],
        ),
        ({"start_after": "2026-03-06T09:00:00Z", "start_before": "2026-03-06T19:00:00Z"}, ["evt_0008"]),
        ({"calendar_id": "cal_0003", "status": "confirmed"}, ["evt_0006", "evt_0010", "evt_0014"]),
        ({"calendar_id": "cal_0003", "start_after": "2026-03-10T00:00:00Z"}, ["evt_0014"]),
        ({"calendar_id": "cal_9999"}, []),
        ({"calendar_id": None, "status": None}, ALL_EVENTS),  # null filters are ignored
    ],
)
def test_list_events_filters(cal: World, state: WorldState, args: dict, expected: list[str]) -> None:
    out = run(cal, "list_events", args, state)
    assert ids(out) == expected
    assert out["next_cursor"] is None
    assert state.version == 0


def test_list_sorted_by_start_not_id(cal: World, state: WorldState) -> None:
    run(
        cal,
        "create_event",
        {**NEW_EVENT, "start": "2026-03-01T08:00:00Z", "end": "2026-03-01T09:00:00Z"},
        state,
    )
    run(
        cal,
        "create_event",
        {**NEW_EVENT, "start": "2026-03-05T16:00:00Z", "end": "2026-03-05T17:00:00Z"},
        state,
    )
    out = run(cal, "list_events", {}, state)
    assert ids(out) == ["evt_0015", *ALL_EVENTS[:6], "evt_0016", *ALL_EVENTS[6:]]


@pytest.mark.parametrize(
    ("args", "limit", "sizes"),
    [
        ({}, 4, [4, 4, 4, 2]),
        ({}, 7, [7, 7]),
        ({}, 1, [1] * 14),
        ({}, 14, [14]),
        ({}, 100, [14]),
        ({"calendar_id": "cal_0001"}, 3, [3, 3, 1]),
    ],
)
def test_list_pagination_covers_every_record_once(
    cal: World, state: WorldState, args: dict, limit: int, sizes: list[int]
) -> None:
    expected = ids(run(cal, "list_events", {**args, "limit": 100}, state))
    seen: list[str] = []
    got_sizes: list[int] = []
    cursor = None
    for _ in range(50):
        page = run(cal, "list_events", {**args, "limit": limit, "cursor": cursor}, state)
        seen += ids(page)
        got_sizes.append(len(page["items"]))
        cursor = page["next_cursor"]
        if cursor is None:
            break
        assert isinstance(cursor, str)
    assert seen == expected
    assert len(set(seen)) == len(seen)
    assert got_sizes == sizes


def test_list_cursor_values(cal: World, state: WorldState) -> None:
    p1 = run(cal, "list_events", {"limit": 5}, state)
    assert p1["next_cursor"] == "5"
    p2 = run(cal, "list_events", {"limit": 5, "cursor": "5"}, state)
    assert ids(p2) == ALL_EVENTS[5:10]
    assert p2["next_cursor"] == "10"
    assert run(cal, "list_events", {"limit": 5, "cursor": ""}, state) == p1  # empty cursor: first page
    beyond = run(cal, "list_events", {"cursor": "500"}, state)
    assert beyond == {"items": [], "next_cursor": None}


@pytest.mark.parametrize("cursor", ["abc", "-1", "1.5", " 3", 3, ["3"]])
def test_list_invalid_cursor(cal: World, state: WorldState, cursor: object) -> None:
    e = fail(cal, "list_events", {"cursor": cursor}, state)
    assert e.kind == "invalid_arguments"
    assert repr(cursor) in e.message


@pytest.mark.parametrize("limit", [0, -3, "5", None])
def test_list_bad_limit_uses_page_size(cal: World, state: WorldState, limit: object) -> None:
    out = run(cal, "list_events", {"limit": limit}, state)
    assert len(out["items"]) == 14  # default page_size 20


def test_max_page() -> None:
    assert MAX_PAGE == 100


# ---- search --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ({"query": "planning"}, ["evt_0001", "evt_0013"]),
        ({"query": "PLANNING weekly"}, ["evt_0001"]),
        ({"query": "weekly  offsite"}, []),  # every word must match
        ({"query": "plan"}, ["evt_0001", "evt_0003", "evt_0013"]),  # substring; evt_0003's description
        ({"query": "budget q1"}, ["evt_0003"]),  # words may match in different fields
        ({"query": "room 4.12"}, ["evt_0001", "evt_0008", "evt_0013"]),  # location
        ({"query": "video call"}, ["evt_0002", "evt_0005", "evt_0010", "evt_0014"]),
        ({"query": "video", "calendar_id": "cal_0003"}, ["evt_0010", "evt_0014"]),
        ({"query": "maria"}, ["evt_0002"]),  # attendees are not searched; the title is
        ({"query": "nordwind"}, ["evt_0005"]),
        ({"query": "xyzzy"}, []),
    ],
)
def test_search_events(cal: World, state: WorldState, args: dict, expected: list[str]) -> None:
    out = run(cal, "search_events", args, state)
    assert ids(out) == expected
    assert out["next_cursor"] is None


def test_search_paginates(cal: World, state: WorldState) -> None:
    p1 = run(cal, "search_events", {"query": "video call", "limit": 3}, state)
    assert ids(p1) == ["evt_0002", "evt_0005", "evt_0010"] and p1["next_cursor"] == "3"
    p2 = run(cal, "search_events", {"query": "video call", "limit": 3, "cursor": "3"}, state)
    assert ids(p2) == ["evt_0014"] and p2["next_cursor"] is None


# ---- update --------------------------------------------------------------------------------


def test_update_changes_only_given_fields(cal: World, state: WorldState) -> None:
    before = dict(state.get("calendar.events", "evt_0001"))
    snap = state.snapshot()
    out = run(
        cal,
        "update_event",
        {"event_id": "evt_0001", "title": "Planning (moved)", "location": None, "reminder_minutes": 0},
        state,
    )
    assert out == {**before, "title": "Planning (moved)", "reminder_minutes": 0}
    assert state.get("calendar.events", "evt_0001") == out
    assert state.version == 1
    # the old record object is replaced, never mutated: an earlier snapshot still holds it
    assert {r["id"]: r for r in snap.collections["calendar.events"]}["evt_0001"] == before
    (change,) = diff(cal.seed, state)
    assert change.id == "evt_0001"
    assert {k for k in change.after if change.after[k] != change.before.get(k)} == {
        "title",
        "reminder_minutes",
    }


def test_update_same_value_is_no_write(cal: World, state: WorldState) -> None:
    lineage = state.lineage
    out = run(cal, "update_event", {"event_id": "evt_0002", "title": "1:1 with Maria"}, state)
    assert out["title"] == "1:1 with Maria"
    assert_unchanged(state, lineage)


@pytest.mark.parametrize(
    "args",
    [
        {"event_id": "evt_0001"},
        {"event_id": "evt_0001", "title": None},
        {"event_id": "evt_0001", "not_a_field": "x"},
    ],
)
def test_update_nothing_to_update(cal: World, state: WorldState, args: dict) -> None:
    e = fail(cal, "update_event", args, state)
    assert e.kind == "invalid_arguments"
    assert e.message == "nothing to update: give at least one field to change"
    assert state.version == 0


def test_update_precondition_failure_message(cal: World, state: WorldState) -> None:
    e = fail(cal, "update_event", {"event_id": "evt_0013", "title": "x"}, state)
    assert e.kind == "precondition_failed"
    assert e.message == "a cancelled event cannot be changed"
    assert state.version == 0


def test_update_checks_not_found_before_preconditions(cal: World, state: WorldState) -> None:
    assert fail(cal, "update_event", {"event_id": "evt_0404", "title": "x"}, state).kind == "not_found"


def test_update_invariant_enforced(cal: World, state: WorldState) -> None:
    e = fail(cal, "update_event", {"event_id": "evt_0001", "end": "2026-03-02T09:59:59Z"}, state)
    assert (e.kind, e.message) == ("invalid_arguments", "an event must end after it starts")
    assert state.get("calendar.events", "evt_0001")["end"] == "2026-03-02T11:00:00Z"
    assert state.version == 0


# ---- delete --------------------------------------------------------------------------------


def test_delete_acks_and_removes(cal: World, state: WorldState) -> None:
    before = state.get("calendar.events", "evt_0002")
    out = run(cal, "delete_event", {"event_id": "evt_0002"}, state)
    assert out == {"ok": True, "id": "evt_0002"}
    assert state.get("calendar.events", "evt_0002") is None
    assert state.changes_since(0)[0].model_dump() == {
        "collection": "calendar.events",
        "id": "evt_0002",
        "before": before,
        "after": None,
    }
    assert fail(cal, "delete_event", {"event_id": "evt_0002"}, state).kind == "not_found"
    assert "evt_0002" not in ids(run(cal, "list_events", {}, state))


# ---- actions -------------------------------------------------------------------------------


def test_cancel_event_sets_status_and_precondition(cal: World, state: WorldState) -> None:
    out = run(cal, "cancel_event", {"event_id": "evt_0001"}, state)
    assert out["status"] == "cancelled"
    assert state.get("calendar.events", "evt_0001")["status"] == "cancelled"
    e = fail(cal, "cancel_event", {"event_id": "evt_0001"}, state)
    assert (e.kind, e.message) == ("precondition_failed", "the event is already cancelled")
    assert state.version == 1


def test_add_and_remove_attendee(cal: World, state: WorldState) -> None:
    snap = state.snapshot()
    out = run(cal, "add_attendee", {"event_id": "evt_0001", "email": "new@acme.example"}, state)
    assert out["attendees"] == ["maria.lopez@acme.example", "jon.berg@acme.example", "new@acme.example"]
    # the seed's list is not mutated in place
    assert {r["id"]: r for r in snap.collections["calendar.events"]}["evt_0001"]["attendees"] == [
        "maria.lopez@acme.example",
        "jon.berg@acme.example",
    ]
    e = fail(cal, "add_attendee", {"event_id": "evt_0001", "email": "new@acme.example"}, state)
    assert (e.kind, e.message) == ("precondition_failed", "that person is already invited")
    out = run(cal, "remove_attendee", {"event_id": "evt_0001", "email": "maria.lopez@acme.example"}, state)
    assert out["attendees"] == ["jon.berg@acme.example", "new@acme.example"]
    e = fail(cal, "remove_attendee", {"event_id": "evt_0001", "email": "maria.lopez@acme.example"}, state)
    assert (e.kind, e.message) == ("precondition_failed", "that person is not invited")
    assert state.version == 2


def test_add_attendee_first_precondition_wins(cal: World, state: WorldState) -> None:
    # evt_0013 is cancelled and maria is already on it: the first failing precondition is reported
    e = fail(cal, "add_attendee", {"event_id": "evt_0013", "email": "maria.lopez@acme.example"}, state)
    assert e.message == "a cancelled event cannot be changed"


def test_add_attendee_invalid_email_refused(cal: World, state: WorldState) -> None:
    e = fail(cal, "add_attendee", {"event_id": "evt_0004", "email": "not an email"}, state)
    assert e.kind == "invalid_arguments"
    assert state.get("calendar.events", "evt_0004")["attendees"] == []


# ---- page shaping --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("shape", "args", "n", "cursor"),
    [
        (PageShape(empty=True), {}, 0, None),
        (PageShape(empty=True, page_size=3), {"limit": 5}, 0, None),
        (PageShape(partial=True), {}, 10, "10"),
        (PageShape(partial=True), {"limit": 4}, 2, "2"),
        (PageShape(partial=True), {"limit": 1}, 1, "1"),
        (PageShape(partial=True), {"limit": 2}, 1, "1"),
        (PageShape(partial=True), {"limit": 3}, 1, "1"),
        (PageShape(page_size=3), {}, 3, "3"),
        (PageShape(page_size=5), {"limit": 2}, 2, "2"),
        (PageShape(page_size=3, partial=True), {}, 1, "1"),
        (PageShape(page_size=20), {}, 14, None),
        (PageShape(), {}, 14, None),
    ],
)
def test_page_shape(
    cal: World, state: WorldState, shape: PageShape, args: dict, n: int, cursor: str | None
) -> None:
    out = run(cal, "list_events", args, state, shape)
    assert ids(out) == ALL_EVENTS[:n]
    assert out["next_cursor"] == cursor


def test_page_shape_on_search_and_following_cursor(cal: World, state: WorldState) -> None:
    out = run(cal, "search_events", {"query": "video"}, state, PageShape(partial=True, page_size=4))
    assert ids(out) == ["evt_0002", "evt_0005"] and out["next_cursor"] == "2"
    rest = run(cal, "search_events", {"query": "video", "cursor": "2"}, state)
    assert ids(rest) == ["evt_0010", "evt_0014"]
    assert run(cal, "search_events", {"query": "video"}, state, PageShape(empty=True)) == {
        "items": [],
        "next_cursor": None,
    }


def test_page_size_shape_pages_through_everything(cal: World, state: WorldState) -> None:
    seen, cursor = [], None
    for _ in range(10):
        page = run(cal, "list_events", {"cursor": cursor}, state, PageShape(page_size=5))
        seen += ids(page)
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ALL_EVENTS


# ---- output schemas ------------------------------------------------------------------------

CALENDAR_CALLS = [
    ("list_calendars", {}),
    ("list_events", {"calendar_id": "cal_0001", "limit": 2}),
    ("search_events", {"query": "call"}),
    ("get_event", {"event_id": "evt_0005"}),
    ("create_event", {**NEW_EVENT, "attendees": ["a@b.example"], "description": "d", "location": "l"}),
    ("update_event", {"event_id": "evt_0001", "location": "Room 1"}),
    ("cancel_event", {"event_id": "evt_0002"}),
    ("add_attendee", {"event_id": "evt_0004", "email": "z@z.example"}),
    ("remove_attendee", {"event_id": "evt_0001", "email": "jon.berg@acme.example"}),
    ("delete_event", {"event_id": "evt_0003"}),
]


def test_calendar_calls_cover_every_tool(cal: World) -> None:
    assert {f"calendar__{t}" for t, _ in CALENDAR_CALLS} == set(cal.tools)


@pytest.mark.parametrize(("tool", "args"), CALENDAR_CALLS, ids=[t for t, _ in CALENDAR_CALLS])
def test_output_validates_against_output_schema(cal: World, state: WorldState, tool: str, args: dict) -> None:
    spec = cal.tools[f"calendar__{tool}"]
    assert spec.output_schema is not None
    out = run(cal, tool, args, state)
    assert validator(spec.output_schema).check(out) is None
    # the schema is not vacuous
    assert validator(spec.output_schema).check({"bogus": 1}) is not None


def test_engine_is_deterministic(cal: World) -> None:
    def episode() -> tuple[list[Any], str, Any]:
        s = WorldState.from_snapshot(cal.seed)
        outs = []
        for tool, args in CALENDAR_CALLS:
            outs.append(run(cal, tool, args, s))
        return outs, s.lineage, s.snapshot()

    a, b = episode(), episode()
    assert a == b


def test_engine_refuses_tools_it_cannot_run(cal: World, state: WorldState) -> None:
    plain = ToolSpec(
        name="x",
        description="d",
        input_schema={},
        provenance=Provenance(source="crawl", server="s", original_name="x"),
        taxonomy=Taxonomy(category="c", domain="d"),
    )
    with pytest.raises(ValueError, match="no semantics"):
        cal.engine.run(plain, {}, state)
    with pytest.raises(ValueError, match="unknown collection"):
        Engine({}).run(cal.tools["calendar__list_events"], {}, state)
    orphan = plain.model_copy(update={"semantics": ToolSemantics(operation="list", collection="nope.x")})
    with pytest.raises(ValueError, match="unknown collection"):
        cal.engine.run(orphan, {}, state)


# ---- a small inline domain -------------------------------------------------------------------


def notes_raw() -> dict[str, Any]:
    s = {"type": "string"}
    folder_arg = {"type": "object", "properties": {"folder_id": s}}
    note_arg = {"type": "object", "properties": {"note_id": s}}
    tag_arg = {"type": "object", "properties": {"note_id": s, "tag": s}}
    return {
        "name": "notes",
        "category": "Productivity",
        "now": NOW,
        "entities": [
            {
                "collection": "notes.folders",
                "id_prefix": "fld",
                "unique": ["name"],
                "record_schema": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["id", "name"],
                    "properties": {
                        "id": s,
                        "name": {"type": "string", "minLength": 1},
                        "note_count": {"type": "integer"},
                    },
                },
            },
            {
                "collection": "notes.notes",
                "id_prefix": "note",
                "refs": {"folder_id": "notes.folders"},
                "trace_fields": ["opened_at"],
                "record_schema": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["id", "folder_id", "title"],
                    "properties": {
                        "id": s,
                        "folder_id": s,
                        "title": s,
                        "tags": {"type": "array", "items": s},
                        "views": {"type": "integer"},
                        "priority": {"type": "integer"},
                        "archived_at": s,
                        "created_at": s,
                        "opened_at": s,
                        "pinned": {"type": "boolean"},
                    },
                },
            },
        ],
        "tools": [
            {
                "name": "create_folder",
                "description": "d",
                "input_schema": {"type": "object", "properties": {"name": s}},
                "semantics": {
                    "operation": "create",
                    "collection": "notes.folders",
                    "defaults": {"note_count": 0},
                },
            },
            {
                "name": "rename_folder",
                "description": "d",
                "input_schema": {"type": "object", "properties": {"folder_id": s, "new_name": s}},
                "semantics": {
                    "operation": "update",
                    "collection": "notes.folders",
                    "id_arg": "folder_id",
                    "field_args": {"new_name": "name"},
                },
            },
            {
                "name": "delete_folder",
                "description": "d",
                "input_schema": folder_arg,
                "semantics": {
                    "operation": "delete",
                    "collection": "notes.folders",
                    "id_arg": "folder_id",
                    "preconditions": [{"field": "note_count", "op": "eq", "value": 0}],
                },
            },
            {
                "name": "create_note",
                "description": "d",
                "input_schema": {
                    "type": "object",
                    "properties": {"folder_id": s, "title": s, "priority": {"type": "integer"}},
                },
                "semantics": {
                    "operation": "create",
                    "collection": "notes.notes",
                    "returns": "id",
                    "defaults": {"tags": [], "views": 0, "pinned": False, "created_at": {"$now": True}},
                },
            },
            {
                "name": "quick_note",
                "description": "d",
                "input_schema": {"type": "object", "properties": {"folder_id": s, "title": s}},
                "semantics": {"operation": "create", "collection": "notes.notes", "returns": "ack"},
            },
            {
                "name": "open_note",
                "description": "d",
                "input_schema": note_arg,
                "semantics": {
                    "operation": "get",
                    "collection": "notes.notes",
                    "id_arg": "note_id",
                    "touch": {"opened_at": {"$now": True}},
                },
            },
            {
                "name": "view_note",
                "description": "d",
                "input_schema": note_arg,
                "semantics": {
                    "operation": "action",
                    "collection": "notes.notes",
                    "id_arg": "note_id",
                    "effects": [{"op": "increment", "field": "views", "value": 1}],
                },
            },
            {
                "name": "archive_note",
                "description": "d",
                "input_schema": note_arg,
                "semantics": {
                    "operation": "action",
                    "collection": "notes.notes",
                    "id_arg": "note_id",
                    "preconditions": [{"field": "archived_at", "op": "missing"}],
                    "effects": [
                        {"op": "set", "field": "archived_at", "value": {"$now": True}},
                        {"op": "set", "field": "pinned", "value": False},
                    ],
                },
            },
            {
                "name": "tag_note",
                "description": "d",
                "input_schema": tag_arg,
                "semantics": {
                    "operation": "action",
                    "collection": "notes.notes",
                    "id_arg": "note_id",
                    "effects": [{"op": "append", "field": "tags", "value": {"$arg": "tag"}}],
                },
            },
            {
                "name": "untag_note",
                "description": "d",
                "input_schema": tag_arg,
                "semantics": {
                    "operation": "action",
                    "collection": "notes.notes",
                    "id_arg": "note_id",
                    "effects": [{"op": "remove", "field": "tags", "value": {"$arg": "tag"}}],
                },
            },
            {
                "name": "edit_note",
                "description": "d",
                "input_schema": {"type": "object", "properties": {"note_id": s, "title": s, "tag": s}},
                "semantics": {
                    "operation": "update",
                    "collection": "notes.notes",
                    "id_arg": "note_id",
                    "effects": [
                        {"op": "append", "field": "tags", "value": {"$arg": "tag"}},
                        {"op": "increment", "field": "views", "value": 1},
                    ],
                },
            },
            {
                "name": "list_notes",
                "description": "d",
                "input_schema": {
                    "type": "object",
                    "properties": {"folder_id": s, "tag": s, "min_priority": {"type": "integer"}},
                },
                "semantics": {
                    "operation": "list",
                    "collection": "notes.notes",
                    "sort": "-title",
                    "filters": {
                        "folder_id": {"field": "folder_id"},
                        "tag": {"field": "tags", "op": "contains"},
                        "min_priority": {"field": "priority", "op": "gte"},
                    },
                },
            },
            {
                "name": "list_by_priority",
                "description": "d",
                "input_schema": {"type": "object", "properties": {}},
                "semantics": {"operation": "list", "collection": "notes.notes", "sort": "priority"},
            },
            {
                "name": "list_by_archived",
                "description": "d",
                "input_schema": {"type": "object", "properties": {}},
                "semantics": {"operation": "list", "collection": "notes.notes", "sort": "archived_at"},
            },
        ],
        "seed": {
            "notes.folders": [
                {"id": "fld_0001", "name": "Work", "note_count": 2},
                {"id": "fld_0002", "name": "Home", "note_count": 0},
            ],
            "notes.notes": [
                {
                    "id": "note_0001",
                    "folder_id": "fld_0001",
                    "title": "Alpha",
                    "tags": ["a"],
                    "views": 0,
                    "priority": 9,
                },
                {
                    "id": "note_0002",
                    "folder_id": "fld_0001",
                    "title": "Beta",
                    "tags": ["a", "b"],
                    "views": 3,
                    "priority": 10,
                },
                {"id": "note_0003", "folder_id": "fld_0002", "title": "Gamma", "tags": [], "priority": 100},
            ],
        },
    }


@pytest.fixture(scope="module")
def notes() -> World:
    return World([domain_from_dict(notes_raw())])


@pytest.fixture
def nstate(notes: World) -> WorldState:
    return WorldState.from_snapshot(notes.seed)


def test_unique_conflict_on_create(notes: World, nstate: WorldState) -> None:
    e = fail(notes, "create_folder", {"name": "Work"}, nstate)
    assert (e.kind, e.message) == ("conflict", "name 'Work' is already used by 'fld_0001'")
    e = fail(notes, "create_folder", {"name": " Work "}, nstate)  # compared in canonical form
    assert e.kind == "conflict"
    assert nstate.version == 0
    clean = WorldState.from_snapshot(notes.seed)
    out = run(notes, "create_folder", {"name": "work"}, clean)  # case differs: no conflict
    assert out == {"id": "fld_0003", "name": "work", "note_count": 0}


def test_unique_conflict_on_update(notes: World, nstate: WorldState) -> None:
    e = fail(notes, "rename_folder", {"folder_id": "fld_0002", "new_name": "Work"}, nstate)
    assert (e.kind, e.message) == ("conflict", "name 'Work' is already used by 'fld_0001'")
    # keeping one's own name is not a conflict (and not a write)
    assert (
        run(notes, "rename_folder", {"folder_id": "fld_0001", "new_name": "Work"}, nstate)["name"] == "Work"
    )
    assert nstate.version == 0
    out = run(notes, "rename_folder", {"folder_id": "fld_0002", "new_name": "House"}, nstate)
    assert out == {"id": "fld_0002", "name": "House", "note_count": 0}


def test_default_precondition_message(notes: World, nstate: WorldState) -> None:
    e = fail(notes, "delete_folder", {"folder_id": "fld_0001"}, nstate)
    assert e.kind == "precondition_failed"
    assert e.message == "folder 'fld_0001' requires note_count eq 0, but note_count is 2"
    assert run(notes, "delete_folder", {"folder_id": "fld_0002"}, nstate) == {"ok": True, "id": "fld_0002"}


def test_create_returns_id_and_ack_and_now_default(notes: World, nstate: WorldState) -> None:
    out = run(notes, "create_note", {"folder_id": "fld_0002", "title": "New", "priority": 5}, nstate)
    assert out == {"id": "note_0004"}
    assert nstate.get("notes.notes", "note_0004") == {
        "id": "note_0004",
        "folder_id": "fld_0002",
        "title": "New",
        "priority": 5,
        "tags": [],
        "views": 0,
        "pinned": False,
        "created_at": NOW,
    }
    out2 = run(notes, "quick_note", {"folder_id": "fld_0002", "title": "Q"}, nstate)
    assert out2 == {"ok": True, "id": "note_0005"}
    for tool, result in (("create_note", out), ("quick_note", out2)):
        assert validator(notes.tools[f"notes__{tool}"].output_schema).check(result) is None
    e = fail(notes, "create_note", {"folder_id": "fld_0404", "title": "x"}, nstate)
    assert (e.kind, e.message) == ("not_found", "folder_id: no record 'fld_0404' in notes.folders")


def test_effects_increment_set_append_remove(notes: World, nstate: WorldState) -> None:
    assert run(notes, "view_note", {"note_id": "note_0002"}, nstate)["views"] == 4
    assert run(notes, "view_note", {"note_id": "note_0003"}, nstate)["views"] == 1  # missing counts as 0
    out = run(notes, "archive_note", {"note_id": "note_0001"}, nstate)
    assert out["archived_at"] == NOW and out["pinned"] is False
    e = fail(notes, "archive_note", {"note_id": "note_0001"}, nstate)
    assert e.kind == "precondition_failed"
    assert e.message == f"note 'note_0001' requires archived_at missing None, but archived_at is {NOW!r}"
    assert run(notes, "tag_note", {"note_id": "note_0003", "tag": "x"}, nstate)["tags"] == ["x"]
    assert run(notes, "tag_note", {"note_id": "note_0003", "tag": "x"}, nstate)["tags"] == ["x", "x"]
    assert run(notes, "untag_note", {"note_id": "note_0003", "tag": " x "}, nstate)["tags"] == []  # canonical
    version = nstate.version
    assert run(notes, "untag_note", {"note_id": "note_0002", "tag": "zzz"}, nstate)["tags"] == ["a", "b"]
    assert nstate.version == version  # no change, no write


def test_get_touch_on_inline_domain(notes: World, nstate: WorldState) -> None:
    out = run(notes, "open_note", {"note_id": "note_0001"}, nstate)
    assert out["opened_at"] == NOW
    assert same_state(notes.seed, nstate, notes.trace_fields)
    assert notes.trace_fields["notes.notes"] == frozenset({"opened_at"})


def test_list_filters_and_descending_sort(notes: World, nstate: WorldState) -> None:
    assert ids(run(notes, "list_notes", {}, nstate)) == ["note_0003", "note_0002", "note_0001"]
    assert ids(run(notes, "list_notes", {"folder_id": "fld_0001"}, nstate)) == ["note_0002", "note_0001"]
    assert ids(run(notes, "list_notes", {"tag": "b"}, nstate)) == ["note_0002"]
    assert ids(run(notes, "list_notes", {"tag": "a"}, nstate)) == ["note_0002", "note_0001"]
    assert ids(run(notes, "list_notes", {"min_priority": 10}, nstate)) == ["note_0003", "note_0002"]
    assert ids(run(notes, "list_notes", {"min_priority": 10.0, "tag": "a"}, nstate)) == ["note_0002"]


def test_sort_puts_missing_values_last(notes: World, nstate: WorldState) -> None:
    run(notes, "archive_note", {"note_id": "note_0002"}, nstate)
    assert ids(run(notes, "list_by_archived", {}, nstate)) == ["note_0002", "note_0001", "note_0003"]


def test_numeric_sort_is_numeric(notes: World, nstate: WorldState) -> None:
    out = run(notes, "list_by_priority", {}, nstate)
    assert [r["priority"] for r in out["items"]] == [9, 10, 100]


def test_update_applies_effects_after_field_changes(notes: World, nstate: WorldState) -> None:
    out = run(notes, "edit_note", {"note_id": "note_0002", "title": "Beta 2", "tag": "z"}, nstate)
    assert out == {
        "id": "note_0002",
        "folder_id": "fld_0001",
        "title": "Beta 2",
        "tags": ["a", "b", "z"],
        "views": 4,
        "priority": 10,
    }
    # an effect reading an omitted optional argument is skipped; the others still apply
    out = run(notes, "edit_note", {"note_id": "note_0002", "title": "Beta 3"}, nstate)
    assert out["tags"] == ["a", "b", "z"] and out["views"] == 5 and out["title"] == "Beta 3"
    assert nstate.version == 2


def test_action_skips_effect_of_omitted_argument(notes: World, nstate: WorldState) -> None:
    lineage = nstate.lineage
    out = run(notes, "tag_note", {"note_id": "note_0001"}, nstate)
    assert out["tags"] == ["a"]
    assert_unchanged(nstate, lineage)


def test_ref_preconditions_guard_the_referenced_record() -> None:
    w = World.from_dir(Path(__file__).parents[2] / "tools" / "starter")
    s = WorldState.from_snapshot(w.seed)
    send = w.tools["messaging__send_message"]
    archived = next(c["id"] for c in s.iter("messaging.channels") if c["archived"])
    active = next(c["id"] for c in s.iter("messaging.channels") if not c["archived"])
    with pytest.raises(ToolFailure) as e:
        w.engine.run(send, {"channel_id": archived, "text": "hi"}, s)
    assert e.value.kind == "precondition_failed" and "archived" in e.value.message
    with pytest.raises(ToolFailure) as e:
        w.engine.run(send, {"channel_id": "ch_9999", "text": "hi"}, s)
    assert e.value.kind == "not_found"
    assert w.engine.run(send, {"channel_id": active, "text": "hi"}, s)["channel_id"] == active
