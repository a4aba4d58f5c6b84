"""agentgym.world.domain: the domain loader, its errors, and World."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from agentgym.spec.tool import ToolAnnotations, ToolSemantics
from agentgym.spec.world import DomainSpec, EntitySpec
from agentgym.world.domain import (
    DomainFileError,
    World,
    annotations_for,
    domain_from_dict,
    load_domain_file,
    output_schema_for,
)
from agentgym.world.state import WorldState

CALENDAR = Path(__file__).resolve().parents[2] / "tools" / "starter" / "calendar.yaml"
S = {"type": "string"}


def base() -> dict[str, Any]:
    return {
        "name": "shop",
        "category": "Commerce",
        "description": "A shop.",
        "entities": [
            {
                "collection": "shop.items",
                "id_prefix": "itm",
                "record_schema": {
                    "type": "object",
                    "properties": {
                        "id": S,
                        "sku": S,
                        "price": {"type": "number"},
                        "tags": {"type": "array"},
                        "status": S,
                        "meta": {"type": "object"},
                        "seen": S,
                    },
                },
            }
        ],
        "tools": [
            {
                "name": "list_items",
                "description": "  List items.\n",
                "input_schema": {
                    "type": "object",
                    "properties": {"status": S, "limit": {"type": "integer"}, "cursor": S, "q": S},
                },
                "semantics": {
                    "operation": "list",
                    "collection": "shop.items",
                    "filters": {"status": {"field": "status"}},
                    "limit_arg": "limit",
                    "cursor_arg": "cursor",
                },
            },
            {
                "name": "get_item",
                "description": "Get.",
                "input_schema": {"type": "object", "properties": {"item_id": S, "tag": S, "new_sku": S}},
                "semantics": {"operation": "get", "collection": "shop.items", "id_arg": "item_id"},
            },
            {
                "name": "ping",
                "description": "No semantics.",
                "input_schema": {"type": "object", "properties": {}},
            },
        ],
        "seed": {"shop.items": [{"id": "itm_0001", "sku": "a", "price": 1.5}]},
    }


def sem(raw: dict[str, Any], i: int = 0) -> dict[str, Any]:
    return raw["tools"][i]["semantics"]


# ---- a well-formed file ----------------------------------------------------------------------


def test_loader_fills_names_provenance_taxonomy() -> None:
    d = domain_from_dict(base())
    assert isinstance(d, DomainSpec)
    assert [t.name for t in d.tools] == ["shop__list_items", "shop__get_item", "shop__ping"]
    t = d.tools[0]
    assert t.description == "List items."
    assert t.provenance.model_dump() == {
        "source": "starter",
        "server": "shop",
        "original_name": "list_items",
        "package": None,
        "license": "MIT",
    }
    assert (t.taxonomy.category, t.taxonomy.domain) == ("Commerce", "shop")
    assert d.description == "A shop."
    assert d.seed.now == "2026-03-02T09:00:00Z"
    assert d.seed.collections == {"shop.items": [{"id": "itm_0001", "sku": "a", "price": 1.5}]}


def test_loader_header_overrides() -> None:
    raw = base()
    raw.update(source="synthetic", package="pkg==1.0", license="Apache-2.0", now="2030-01-01T00:00:00Z")
    d = domain_from_dict(raw)
    p = d.tools[1].provenance
    assert (p.source, p.package, p.license) == ("synthetic", "pkg==1.0", "Apache-2.0")
    assert d.seed.now == "2030-01-01T00:00:00Z"


def test_tool_without_semantics() -> None:
    ping = domain_from_dict(base()).tools[2]
    assert ping.semantics is None
    assert ping.output_schema is None
    assert ping.annotations == ToolAnnotations()


def test_explicit_annotations_and_output_schema_kept() -> None:
    raw = base()
    raw["tools"][0]["annotations"] = {"title": "L", "read_only_hint": False}
    raw["tools"][0]["output_schema"] = {"type": "object", "properties": {"x": S}}
    t = domain_from_dict(raw).tools[0]
    assert t.annotations == ToolAnnotations(title="L", read_only_hint=False)
    assert t.output_schema == {"type": "object", "properties": {"x": S}}


@pytest.mark.parametrize(
    ("op", "ro", "destructive", "idempotent"),
    [
        ("get", True, False, True),
        ("list", True, False, True),
        ("search", True, False, True),
        ("create", False, False, False),
        ("update", False, False, True),
        ("delete", False, True, True),
        ("action", False, False, False),
    ],
)
def test_annotations_for(op: str, ro: bool, destructive: bool, idempotent: bool) -> None:
    a = annotations_for(ToolSemantics(operation=op, collection="c"))  # type: ignore[arg-type]
    assert (a.read_only_hint, a.destructive_hint, a.idempotent_hint, a.open_world_hint) == (
        ro,
        destructive,
        idempotent,
        False,
    )


def test_output_schema_for() -> None:
    ent = EntitySpec(
        collection="c.x", id_prefix="x", record_schema={"type": "object", "properties": {"id": S}}
    )
    rec = output_schema_for(ToolSemantics(operation="get", collection="c.x"), ent)
    assert rec == ent.record_schema
    page = output_schema_for(ToolSemantics(operation="search", collection="c.x"), ent)
    assert page["required"] == ["items", "next_cursor"]
    assert page["properties"]["items"] == {"type": "array", "items": ent.record_schema}
    assert page["properties"]["next_cursor"]["type"] == ["string", "null"]
    ack = output_schema_for(ToolSemantics(operation="delete", collection="c.x"), ent)
    assert ack["properties"] == {"ok": {"const": True}, "id": S}
    assert output_schema_for(ToolSemantics(operation="create", collection="c.x", returns="id"), ent) == {
        "type": "object",
        "properties": {"id": S},
        "required": ["id"],
    }
    assert output_schema_for(ToolSemantics(operation="list", collection="c.x", returns="record"), ent) == rec
    assert output_schema_for(ToolSemantics(operation="action", collection="c.x", returns="ack"), ent) == ack
    assert output_schema_for(ToolSemantics(operation="update", collection="c.x"), ent) == rec


def test_calendar_file_loads() -> None:
    d = load_domain_file(CALENDAR)
    assert d.name == "calendar" and d.category == "Productivity"
    assert len(d.tools) == 10
    assert [e.collection for e in d.entities] == ["calendar.calendars", "calendar.events"]
    assert len(d.seed.collections["calendar.calendars"]) == 3
    assert len(d.seed.collections["calendar.events"]) == 14
    tools = {t.name: t for t in d.tools}
    events = d.entities[1].record_schema
    assert tools["calendar__get_event"].output_schema == events
    assert tools["calendar__list_events"].output_schema["properties"]["items"]["items"] == events
    assert tools["calendar__delete_event"].annotations.destructive_hint is True
    assert tools["calendar__list_events"].read_only is True
    assert tools["calendar__cancel_event"].read_only is False
    assert all(t.provenance.source == "starter" and t.provenance.license == "MIT" for t in d.tools)
    # the seed is a valid world state
    WorldState.from_snapshot(d.seed)


# ---- refused files -------------------------------------------------------------------------


def _set(path: list[Any], value: Any) -> Callable[[dict[str, Any]], None]:
    def f(raw: dict[str, Any]) -> None:
        cur: Any = raw
        for p in path[:-1]:
            cur = cur[p]
        cur[path[-1]] = value

    return f


def _del(path: list[Any]) -> Callable[[dict[str, Any]], None]:
    def f(raw: dict[str, Any]) -> None:
        cur: Any = raw
        for p in path[:-1]:
            cur = cur[p]
        del cur[path[-1]]

    return f


T0 = ["tools", 0, "semantics"]
T1 = ["tools", 1, "semantics"]
REFUSED = {
    # semantics naming an argument missing from input_schema
    "filter_arg": (
        _set([*T0, "filters"], {"colour": {"field": "status"}}),
        "semantics names argument 'colour' missing from input_schema",
    ),
    "id_arg": (_set([*T1, "id_arg"], "id"), "semantics names argument 'id' missing from input_schema"),
    "limit_arg": (_set([*T0, "limit_arg"], "size"), "argument 'size' missing"),
    "cursor_arg": (_set([*T0, "cursor_arg"], "page"), "argument 'page' missing"),
    "query_arg": (_set([*T0, "query_arg"], "query"), "argument 'query' missing"),
    "field_arg_key": (_set([*T1, "field_args"], {"sku_new": "sku"}), "argument 'sku_new' missing"),
    # semantics naming a field missing from the entity
    "filter_field": (
        _set([*T0, "filters"], {"status": {"field": "colour"}}),
        "semantics names field 'colour' missing from shop.items",
    ),
    "filter_field_dotted": (_set([*T0, "filters"], {"status": {"field": "nope.x"}}), "field 'nope' missing"),
    "precondition": (_set([*T1, "preconditions"], [{"field": "state", "value": 1}]), "field 'state' missing"),
    "effect": (_set([*T1, "effects"], [{"op": "set", "field": "flag", "value": 1}]), "field 'flag' missing"),
    "default": (_set([*T1, "defaults"], {"colour": "red"}), "field 'colour' missing"),
    "touch": (_set([*T1, "touch"], {"opened_at": {"$now": True}}), "field 'opened_at' missing"),
    "search_field": (_set([*T0, "search_fields"], ["title"]), "field 'title' missing"),
    "field_arg_value": (_set([*T1, "field_args"], {"new_sku": "code"}), "field 'code' missing"),
    # unknown collection
    "collection": (_set([*T0, "collection"], "shop.nope"), "acts on unknown collection 'shop.nope'"),
    # get/update/delete/action without id_arg
    "get_without_id_arg": (_del([*T1, "id_arg"]), "a get tool needs id_arg"),
    "update_without_id_arg": (
        lambda r: (_del([*T1, "id_arg"])(r), _set([*T1, "operation"], "update")(r)),
        "a update tool needs id_arg",
    ),
    "delete_without_id_arg": (
        lambda r: (_del([*T1, "id_arg"])(r), _set([*T1, "operation"], "delete")(r)),
        "a delete tool needs id_arg",
    ),
    "action_without_id_arg": (
        lambda r: (_del([*T1, "id_arg"])(r), _set([*T1, "operation"], "action")(r)),
        "a action tool needs id_arg",
    ),
    # invalid input_schema
    "schema_bad_type": (
        _set(["tools", 0, "input_schema", "properties", "status"], {"type": "strng"}),
        "invalid input_schema",
    ),
    "schema_bad_keyword": (
        _set(["tools", 0, "input_schema", "properties", "status"], {"minLength": -1}),
        "invalid input_schema",
    ),
    "schema_not_object": (
        _set(["tools", 2, "input_schema"], {"type": "array"}),
        "input_schema must describe",
    ),
    # structural problems
    "missing_category": (_del(["category"]), "KeyError"),
    "missing_tools": (_del(["tools"]), "KeyError"),
    "tool_missing_description": (_del(["tools", 0, "description"]), "needs a non-empty description"),
    "bad_operation": (_set([*T0, "operation"], "frobnicate"), "operation"),
    "bad_entity": (_del(["entities", 0, "id_prefix"]), "id_prefix"),
    "seed_unknown_collection": (_set(["seed"], {"shop.nope": []}), "seed records for unknown collection"),
}


@pytest.mark.parametrize(("mutate", "needle"), REFUSED.values(), ids=REFUSED.keys())
def test_refused(mutate: Callable[[dict[str, Any]], Any], needle: str) -> None:
    raw = base()
    mutate(raw)
    with pytest.raises(DomainFileError) as ei:
        domain_from_dict(raw, "shop.yaml")
    assert needle in str(ei.value)


def test_long_tool_names_truncated_and_cleaned() -> None:
    raw = base()
    raw["tools"][2]["name"] = "p.i n g" + "x" * 70
    t = domain_from_dict(raw).tools[2]
    assert t.name == ("shop__p_i_n_g" + "x" * 70)[:64]
    assert len(t.name) == 64
    assert t.provenance.original_name == "p.i n g" + "x" * 70


def test_errors_name_domain_and_tool() -> None:
    raw = base()
    sem(raw, 1)["touch"] = {"opened_at": "x"}
    with pytest.raises(DomainFileError, match=r"domain 'shop', tool 'get_item'"):
        domain_from_dict(raw)
    raw = base()
    sem(raw)["collection"] = "shop.nope"
    with pytest.raises(
        DomainFileError, match=r"^shop\.yaml: domain 'shop', tool 'list_items': acts on unknown collection"
    ):
        domain_from_dict(raw, "shop.yaml")
    raw = base()
    del raw["category"]
    with pytest.raises(DomainFileError, match=r"^shop\.yaml: KeyError"):
        domain_from_dict(raw, "shop.yaml")


def test_dotted_filter_on_existing_field_accepted() -> None:
    raw = base()
    sem(raw)["filters"] = {"status": {"field": "meta.colour", "op": "eq"}}
    assert domain_from_dict(raw).tools[0].semantics.filters["status"].field == "meta.colour"


def test_load_file_errors_name_file(tmp_path: Path) -> None:
    raw = base()
    del raw["category"]
    p = tmp_path / "broken.yaml"
    p.write_text(yaml.safe_dump(raw), encoding="utf-8")
    with pytest.raises(DomainFileError, match=r"broken\.yaml"):
        load_domain_file(p)


def test_load_file_semantic_errors_name_file(tmp_path: Path) -> None:
    raw = base()
    sem(raw)["filters"] = {"colour": {"field": "status"}}
    p = tmp_path / "broken_args.yaml"
    p.write_text(yaml.safe_dump(raw), encoding="utf-8")
    with pytest.raises(DomainFileError, match=r"broken_args\.yaml"):
        load_domain_file(p)


def test_sort_on_unknown_field_refused() -> None:
    raw = base()
    sem(raw)["sort"] = "-colour"
    with pytest.raises(DomainFileError, match="colour"):
        domain_from_dict(raw)


def test_arg_reference_to_unknown_argument_refused() -> None:
    raw = base()
    raw["tools"][1]["semantics"] = {
        "operation": "action",
        "collection": "shop.items",
        "id_arg": "item_id",
        "effects": [{"op": "append", "field": "tags", "value": {"$arg": "tga"}}],
    }
    with pytest.raises(DomainFileError, match="tga"):
        domain_from_dict(raw)


def test_non_mapping_input_schema_is_a_domain_file_error() -> None:
    raw = base()
    raw["tools"][0]["input_schema"] = "object"
    try:
        domain_from_dict(raw)
    except DomainFileError:
        return
    except Exception as e:
        raise AssertionError(f"{type(e).__name__}: {e}") from e
    raise AssertionError("accepted")


def test_null_description_is_a_domain_file_error() -> None:
    raw = base()
    raw["tools"][0]["description"] = None
    try:
        domain_from_dict(raw)
    except DomainFileError:
        return
    except Exception as e:
        raise AssertionError(f"{type(e).__name__}: {e}") from e
    raise AssertionError("accepted")


# ---- World -----------------------------------------------------------------------------------


def test_world_unites_domains() -> None:
    cal = load_domain_file(CALENDAR)
    shop = domain_from_dict(base())
    w = World([cal, shop])
    assert set(w.domains) == {"calendar", "shop"}
    assert len(w.tools) == 13
    assert w.tools["shop__get_item"].semantics.id_arg == "item_id"
    assert set(w.entities) == {"calendar.calendars", "calendar.events", "shop.items"}
    assert set(w.seed.collections) == {"calendar.calendars", "calendar.events", "shop.items"}
    assert w.trace_fields["calendar.events"] == frozenset({"last_viewed_at"})
    assert w.trace_fields["shop.items"] == frozenset()
    assert set(w.engine.entities) == set(w.entities)


def test_world_refuses_duplicates() -> None:
    shop = domain_from_dict(base())
    with pytest.raises(DomainFileError, match="domain 'shop' defined twice"):
        World([shop, shop])
    raw = base()
    raw["name"] = "shop2"
    with pytest.raises(DomainFileError, match=r"collection 'shop\.items' defined twice"):
        World([shop, domain_from_dict(raw)])


def test_world_needs_one_clock() -> None:
    cal = load_domain_file(CALENDAR)
    raw = base()
    raw["now"] = "2030-01-01T00:00:00Z"
    with pytest.raises(DomainFileError, match="one world, one clock"):
        World([cal, domain_from_dict(raw)])
    assert World([domain_from_dict(raw)]).seed.now == "2030-01-01T00:00:00Z"


def test_world_from_dir(tmp_path: Path) -> None:
    with pytest.raises(DomainFileError, match="no domain files"):
        World.from_dir(tmp_path)
    shutil.copy(CALENDAR, tmp_path / "calendar.yaml")
    (tmp_path / "shop.yaml").write_text(yaml.safe_dump(base()), encoding="utf-8")
    (tmp_path / "notes.txt").write_text("ignored", encoding="utf-8")
    w = World.from_dir(tmp_path)
    assert list(w.domains) == ["calendar", "shop"]  # sorted by file name
    assert len(w.tools) == 13


def test_ref_preconditions_must_name_a_reference_argument() -> None:
    raw = base()
    sem(raw)["ref_preconditions"] = {"status": [{"field": "x", "value": 1}]}
    with pytest.raises(DomainFileError, match="not a reference argument"):
        domain_from_dict(raw, "shop.yaml")
