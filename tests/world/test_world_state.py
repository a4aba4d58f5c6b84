"""agentgym.world.state: WorldState, diff, same_state."""

from __future__ import annotations

import copy

import pytest

from agentgym.spec.trajectory import Change
from agentgym.spec.world import WorldSnapshot
from agentgym.world.state import WorldState, diff, same_state

NOW = "2026-03-02T09:00:00Z"


def snap_dict() -> dict:
    return {
        "now": NOW,
        "collections": {
            "notes.notes": [
                {"id": "note_0001", "title": "A", "tags": ["x"], "meta": {"n": 1}},
                {"id": "note_0014", "title": "B", "tags": []},
                {"id": "note_draft", "title": "C"},
            ],
            "notes.folders": [{"id": "fld_0003", "name": "Inbox"}],
        },
    }


def fresh() -> WorldState:
    return WorldState.from_snapshot(WorldSnapshot.model_validate(snap_dict()))


# ---- from_snapshot ---------------------------------------------------------------------------


def test_from_snapshot_copies_records() -> None:
    snap = WorldSnapshot.model_validate(snap_dict())
    s = WorldState.from_snapshot(snap)
    assert s.now == NOW
    assert s.version == 0 and s.log == []
    assert set(s.collections) == {"notes.notes", "notes.folders"}
    assert s.get("notes.notes", "note_0001") == {
        "id": "note_0001",
        "title": "A",
        "tags": ["x"],
        "meta": {"n": 1},
    }
    # mutating the source snapshot's (nested) data does not reach the state
    snap.collections["notes.notes"][0]["tags"].append("MUTATED")
    snap.collections["notes.notes"][0]["meta"]["n"] = 99
    snap.collections["notes.notes"].append({"id": "note_0099"})
    assert s.get("notes.notes", "note_0001")["tags"] == ["x"]
    assert s.get("notes.notes", "note_0001")["meta"] == {"n": 1}
    assert s.get("notes.notes", "note_0099") is None
    # and mutating the state does not reach the snapshot
    s.get("notes.folders", "fld_0003")["name"] = "changed"
    assert snap.collections["notes.folders"][0]["name"] == "Inbox"


def test_from_mapping_copies_and_defaults_now() -> None:
    raw = snap_dict()
    del raw["now"]
    s = WorldState.from_snapshot(raw)
    assert s.now == WorldSnapshot().now
    raw["collections"]["notes.notes"][0]["title"] = "Z"
    assert s.get("notes.notes", "note_0001")["title"] == "A"
    assert WorldState.from_snapshot({}).collections == {}


def test_two_states_from_one_snapshot_are_independent() -> None:
    snap = WorldSnapshot.model_validate(snap_dict())
    a, b = WorldState.from_snapshot(snap), WorldState.from_snapshot(snap)
    a.put("notes.notes", {"id": "note_0001", "title": "changed"})
    assert b.get("notes.notes", "note_0001")["title"] == "A"
    assert a.lineage != b.lineage


def test_duplicate_id_rejected() -> None:
    with pytest.raises(ValueError, match="duplicate id 'x_0001'"):
        WorldState.from_snapshot({"collections": {"c": [{"id": "x_0001"}, {"id": "x_0001", "v": 2}]}})


@pytest.mark.parametrize("bad", [{"name": "no id"}, {"id": 7}, {"id": None}])
def test_missing_or_non_string_id_rejected(bad: dict) -> None:
    with pytest.raises(ValueError, match="no string id"):
        WorldState.from_snapshot({"collections": {"c": [{"id": "ok"}, bad]}})


# ---- writes, log, version, lineage -----------------------------------------------------------


def test_put_insert_and_replace_are_logged() -> None:
    s = fresh()
    new = {"id": "note_0100", "title": "N"}
    s.put("notes.notes", new)
    assert s.version == 1
    assert s.log == [("notes.notes", "note_0100", None, new)]
    replaced = {"id": "note_0100", "title": "N2"}
    s.put("notes.notes", replaced)
    assert s.version == 2
    assert s.log[1] == ("notes.notes", "note_0100", new, replaced)
    assert s.get("notes.notes", "note_0100") == replaced


def test_put_into_new_collection() -> None:
    s = fresh()
    s.put("other.things", {"id": "t1"})
    assert s.get("other.things", "t1") == {"id": "t1"}
    assert list(s.iter("other.things")) == [{"id": "t1"}]


def test_remove_logs_and_returns() -> None:
    s = fresh()
    old = s.get("notes.notes", "note_0014")
    lineage0 = s.lineage
    assert s.remove("notes.notes", "note_0014") == old
    assert s.get("notes.notes", "note_0014") is None
    assert s.log == [("notes.notes", "note_0014", old, None)]
    assert s.version == 1
    assert s.lineage != lineage0
    # removing an absent record: None, nothing logged, nothing changes
    lineage1 = s.lineage
    assert s.remove("notes.notes", "note_0014") is None
    assert s.remove("no.such", "x") is None
    assert s.version == 1 and len(s.log) == 1 and s.lineage == lineage1


def test_changes_since() -> None:
    s = fresh()
    s.put("notes.notes", {"id": "n1"})
    mark = len(s.log)
    s.put("notes.notes", {"id": "n1", "v": 2})
    s.remove("notes.folders", "fld_0003")
    ch = s.changes_since(mark)
    assert ch == [
        Change(collection="notes.notes", id="n1", before={"id": "n1"}, after={"id": "n1", "v": 2}),
        Change(
            collection="notes.folders", id="fld_0003", before={"id": "fld_0003", "name": "Inbox"}, after=None
        ),
    ]
    assert s.changes_since(len(s.log)) == []
    assert len(s.changes_since(0)) == 3


def test_lineage_changes_on_every_write() -> None:
    s = fresh()
    seen = [s.lineage]
    s.put("notes.notes", {"id": "n1", "v": 1})
    seen.append(s.lineage)
    s.put("notes.notes", {"id": "n1", "v": 1})  # same record again is still a write
    seen.append(s.lineage)
    s.remove("notes.notes", "n1")
    seen.append(s.lineage)
    s.put("notes.notes", {"id": "n1", "v": 1})
    seen.append(s.lineage)
    assert len(set(seen)) == len(seen) == 5
    assert all(isinstance(x, str) and len(x) == 32 for x in seen)
    assert s.version == 4


def _history(s: WorldState) -> WorldState:
    s.put("notes.notes", {"id": "n1", "b": 2, "a": 1})
    s.remove("notes.notes", "note_0014")
    s.put("notes.folders", {"id": "fld_0003", "name": "Renamed"})
    return s


def test_lineage_equal_for_equal_histories() -> None:
    a, b = _history(fresh()), _history(fresh())
    assert a.lineage == b.lineage
    # key order of records and of the snapshot does not matter
    raw = snap_dict()
    raw["collections"] = dict(reversed(list(raw["collections"].items())))
    raw["collections"]["notes.notes"][0] = dict(reversed(list(raw["collections"]["notes.notes"][0].items())))
    c = WorldState.from_snapshot(raw)
    assert c.lineage == fresh().lineage
    c.put("notes.notes", {"a": 1, "id": "n1", "b": 2})
    c.remove("notes.notes", "note_0014")
    c.put("notes.folders", {"name": "Renamed", "id": "fld_0003"})
    assert c.lineage == a.lineage


def test_lineage_differs_for_different_writes_and_starts() -> None:
    a = fresh()
    b = fresh()
    a.put("notes.notes", {"id": "n1", "v": 1})
    b.put("notes.notes", {"id": "n1", "v": 2})
    assert a.lineage != b.lineage
    c = fresh()
    c.put("notes.notes", {"id": "n2", "v": 1})
    assert c.lineage != a.lineage
    d = fresh()
    d.put("notes.folders", {"id": "n1", "v": 1})  # same record, other collection
    assert d.lineage != a.lineage
    # write order matters
    e, f = fresh(), fresh()
    e.put("x", {"id": "1"})
    e.put("x", {"id": "2"})
    f.put("x", {"id": "2"})
    f.put("x", {"id": "1"})
    assert e.lineage != f.lineage
    # initial state and clock matter
    other_now = snap_dict()
    other_now["now"] = "2026-03-03T09:00:00Z"
    assert WorldState.from_snapshot(other_now).lineage != fresh().lineage
    other_rec = snap_dict()
    other_rec["collections"]["notes.notes"][0]["title"] = "A2"
    assert WorldState.from_snapshot(other_rec).lineage != fresh().lineage


# ---- ids -------------------------------------------------------------------------------------


def test_next_id_above_existing_suffixes() -> None:
    s = fresh()
    assert s.next_id("notes.notes", "note") == "note_0015"
    assert s.next_id("notes.notes", "note") == "note_0015"  # asking reserves nothing; only a put uses an id
    s.put("notes.notes", {"id": "note_0015"})
    assert s.next_id("notes.notes", "note") == "note_0016"
    assert s.next_id("notes.folders", "fld") == "fld_0004"
    assert s.next_id("empty.col", "e") == "e_0001"


def test_next_id_skips_taken_ids() -> None:
    s = WorldState.from_snapshot({"collections": {"c": [{"id": "x_0002"}]}})
    assert s.next_id("c", "x") == "x_0003"
    s.put("c", {"id": "x_0004"})
    s.put("c", {"id": "x_0005"})
    assert s.next_id("c", "x") == "x_0006"


def test_next_id_counts_other_prefixes_and_wide_numbers() -> None:
    s = WorldState.from_snapshot(
        {"collections": {"c": [{"id": "legacy_12345"}, {"id": "x_9"}, {"id": "nosuffix"}]}}
    )
    assert s.next_id("c", "x") == "x_12346"


def test_next_id_above_suffix_put_after_first_call() -> None:
    s = WorldState.from_snapshot({"collections": {"c": [{"id": "x_0001"}]}})
    assert s.next_id("c", "x") == "x_0002"
    s.put("c", {"id": "x_0050"})
    assert s.next_id("c", "x") == "x_0051"


# ---- snapshot ------------------------------------------------------------------------------


def test_snapshot_round_trip() -> None:
    s = fresh()
    s.put("notes.notes", {"id": "n1"})
    s.remove("notes.folders", "fld_0003")
    snap = s.snapshot()
    assert isinstance(snap, WorldSnapshot)
    assert snap.now == NOW
    assert {r["id"] for r in snap.collections["notes.notes"]} == {
        "note_0001",
        "note_0014",
        "note_draft",
        "n1",
    }
    assert snap.collections["notes.folders"] == []
    again = WorldState.from_snapshot(snap)
    assert same_state(again, s)
    assert WorldSnapshot.model_validate_json(snap.model_dump_json()) == snap


def test_table_get_iter() -> None:
    s = fresh()
    assert s.get("nope", "x") is None
    assert list(s.iter("nope")) == []
    assert "nope" not in s.collections
    assert s.table("nope") == {}
    assert "nope" in s.collections
    assert [r["id"] for r in s.iter("notes.notes")] == ["note_0001", "note_0014", "note_draft"]


# ---- diff / same_state ---------------------------------------------------------------------


def _snap(records: dict[str, list[dict]]) -> WorldSnapshot:
    return WorldSnapshot(collections=records)


def test_same_state_normalised() -> None:
    a = _snap({"c": [{"id": "1", "v": 1, "s": "x", "f": 0.30000000000000004}]})
    b = _snap({"c": [{"id": "1", "v": 1.0, "s": " x ", "f": 0.3, "gone": None}]})
    assert same_state(a, b)
    assert diff(a, b) == []
    assert not same_state(a, _snap({"c": [{"id": "1", "v": 2, "s": "x", "f": 0.3}]}))


def test_same_state_ignores_record_order_and_empty_collections() -> None:
    a = _snap({"c": [{"id": "1"}, {"id": "2"}]})
    b = _snap({"c": [{"id": "2"}, {"id": "1"}], "d": []})
    assert same_state(a, b)


def test_trace_fields_ignored_only_when_named() -> None:
    a = _snap({"c": [{"id": "1", "t": "x", "seen": "2026-01-01"}], "d": [{"id": "1", "seen": "a"}]})
    b = _snap({"c": [{"id": "1", "t": "x", "seen": "2026-03-02"}], "d": [{"id": "1", "seen": "b"}]})
    assert not same_state(a, b)
    assert same_state(a, b, {"c": frozenset({"seen"}), "d": frozenset({"seen"})})
    # trace fields are per collection
    ch = diff(a, b, {"c": frozenset({"seen"})})
    assert ch == [
        Change(collection="d", id="1", before={"id": "1", "seen": "a"}, after={"id": "1", "seen": "b"})
    ]


def test_diff_reports_created_deleted_updated_sorted_and_normalised() -> None:
    before = _snap(
        {
            "b.items": [{"id": "i_2", "n": 1.0}, {"id": "i_10", "n": 5}],
            "a.items": [{"id": "z", "t": "keep"}, {"id": "del", "t": " bye ", "trace": "x"}],
        }
    )
    after = _snap(
        {
            "a.items": [{"id": "z", "t": "keep"}, {"id": "new", "t": "hi", "empty": None}],
            "b.items": [{"id": "i_10", "n": 6.0}, {"id": "i_2", "n": 1}],
            "c.items": [{"id": "only", "x": [1.0]}],
        }
    )
    out = diff(before, after, {"a.items": frozenset({"trace"})})
    assert [(c.collection, c.id) for c in out] == [
        ("a.items", "del"),
        ("a.items", "new"),
        ("b.items", "i_10"),
        ("c.items", "only"),
    ]
    deleted, created, updated, created2 = out
    assert deleted.before == {"id": "del", "t": "bye"} and deleted.after is None
    assert created.before is None and created.after == {"id": "new", "t": "hi"}
    assert updated.before == {"id": "i_10", "n": 5} and updated.after == {"id": "i_10", "n": 6}
    assert type(updated.after["n"]) is int
    assert created2.after == {"id": "only", "x": [1]}


def test_diff_between_state_and_snapshot() -> None:
    s = fresh()
    start = WorldSnapshot.model_validate(snap_dict())
    assert diff(start, s) == []
    s.put(
        "notes.notes", {"id": "note_0001", "title": "A", "tags": ["x"], "meta": {"n": 1.0}}
    )  # no real change
    assert same_state(start, s)
    s.put("notes.notes", {"id": "note_0001", "title": "A!", "tags": ["x"], "meta": {"n": 1}})
    assert diff(start, s) == [
        Change(
            collection="notes.notes",
            id="note_0001",
            before={"id": "note_0001", "meta": {"n": 1}, "tags": ["x"], "title": "A"},
            after={"id": "note_0001", "meta": {"n": 1}, "tags": ["x"], "title": "A!"},
        )
    ]
    assert diff(s, start)[0].before["title"] == "A!"


def test_diff_does_not_mutate_inputs() -> None:
    raw = snap_dict()
    raw["collections"]["notes.notes"][0]["x"] = None
    keep = copy.deepcopy(raw)
    snap = WorldSnapshot.model_validate(raw)
    diff(snap, _snap({}))
    assert snap.collections == keep["collections"]


def test_same_state_distinguishes_bool_from_int() -> None:
    assert not same_state(_snap({"c": [{"id": "1", "done": True}]}), _snap({"c": [{"id": "1", "done": 1}]}))


# ---- fork / touched / diff(keys) -------------------------------------------------------------


def test_fork_is_equal_and_independent() -> None:
    s = fresh()
    assert s.next_id("notes.notes", "note") == "note_0015"
    s.put("notes.notes", {"id": "n1", "v": 1})
    f = s.fork()
    assert f.lineage == s.lineage
    assert f.now == s.now
    assert same_state(f, s)
    assert f.log == [] and f.version == 0
    f.put("notes.notes", {"id": "n2"})
    f.remove("notes.notes", "note_0001")
    assert s.get("notes.notes", "n2") is None
    assert s.get("notes.notes", "note_0001") is not None
    s.put("notes.folders", {"id": "fld_0009"})
    assert f.get("notes.folders", "fld_0009") is None
    # the id high-water mark travels with the fork
    assert f.next_id("notes.notes", "note") == "note_0015"
    # equal histories after a fork give equal lineages
    g, h = fresh().fork(), fresh().fork()
    g.put("x", {"id": "1"})
    h.put("x", {"id": "1"})
    assert g.lineage == h.lineage


def test_touched() -> None:
    s = fresh()
    assert s.touched() == set()
    s.put("notes.notes", {"id": "n1"})
    s.put("notes.notes", {"id": "n1", "v": 2})
    s.remove("notes.folders", "fld_0003")
    s.remove("notes.folders", "absent")
    assert s.touched() == {("notes.notes", "n1"), ("notes.folders", "fld_0003")}


def test_diff_restricted_to_keys() -> None:
    base = fresh()
    after = base.fork()
    after.put("notes.notes", {"id": "note_0001", "title": "changed"})
    after.put("notes.notes", {"id": "n_new"})
    after.remove("notes.folders", "fld_0003")
    full = diff(base, after)
    assert [(c.collection, c.id) for c in full] == [
        ("notes.folders", "fld_0003"),
        ("notes.notes", "n_new"),
        ("notes.notes", "note_0001"),
    ]
    assert diff(base, after, keys=after.touched()) == full
    assert [c.id for c in diff(base, after, keys={("notes.notes", "n_new")})] == ["n_new"]
    assert diff(base, after, keys=set()) == []
    # a key whose record was rewritten to an equal value is not a change
    same = base.fork()
    same.put("notes.notes", dict(base.get("notes.notes", "note_0014")))
    assert diff(base, same, keys=same.touched()) == []
