"""The crawl importer: licences, schema repairs, boilerplate, de-duplication, naming, counts, the CLI,
and the real shipped data in tools/crawl/."""

from __future__ import annotations

import gzip
import json
import random
from collections import defaultdict
from pathlib import Path

import orjson
import pytest
import typer
from typer.testing import CliRunner

from agentgym.cli.crawl_cmd import import_crawl_cmd
from agentgym.paths import tools_dir
from agentgym.repository import ToolRepository
from agentgym.repository.crawl import (
    BUCKETS,
    RESERVED,
    SLUG_MAX,
    annotations_of,
    args_from_docstring,
    assign_names,
    boilerplate_reason,
    clean_description,
    clean_flat_parameters,
    import_crawl,
    meta_error,
    normalize_schema,
    schema_from_parameters,
    server_slug,
)
from agentgym.repository.licenses import PERMISSIVE, is_permissive, normalize_license
from agentgym.spec.tool import TOOL_NAME, qualified_name

# ---- licences -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw, spdx",
    [
        ("MIT", "MIT"),
        ("  mit ", "MIT"),
        ("MIT License", "MIT"),
        ("The MIT License", "MIT"),
        ("Apache-2.0", "Apache-2.0"),
        ("Apache 2.0", "Apache-2.0"),
        ("Apache License 2.0", "Apache-2.0"),
        ("apache license, version 2.0", "Apache-2.0"),
        ("https://www.apache.org/licenses/LICENSE-2.0", "Apache-2.0"),
        ("https://opensource.org/licenses/MIT", "MIT"),
        ("https://spdx.org/licenses/BSD-3-Clause.html", "BSD-3-Clause"),
        ("BSD 3-Clause", "BSD-3-Clause"),
        ("bsd-2-clause", "BSD-2-Clause"),
        ("ISC", "ISC"),
        ("0BSD", "0BSD"),
        ("The Unlicense", "Unlicense"),
        ("CC0", "CC0-1.0"),
        ("zlib", "Zlib"),
        ("Boost Software License 1.0", "BSL-1.0"),
        ("MIT-0", "MIT-0"),
        ("GPL-3.0", "GPL-3.0-only"),
        ("GPLv3", "GPL-3.0-only"),
        ("AGPL-3.0", "AGPL-3.0-only"),
        ("LGPL-2.1", "LGPL-2.1-only"),
        ("MPL-2.0", "MPL-2.0"),
        ("Proprietary", "LicenseRef-Proprietary"),
        ("Smithery", "LicenseRef-Smithery"),
        ("https://smithery.ai/server/@a/b", "LicenseRef-Smithery"),
        ("https://simithery.ai/", "LicenseRef-Smithery"),
        ("@someone/some-mcp-server", "LicenseRef-Unknown"),
        ("SEE LICENSE IN LICENSE", "LicenseRef-Unknown"),
        ("Not specified", None),
        ("", None),
        (None, None),
        (42, None),
    ],
)
def test_normalize_license(raw, spdx):
    assert normalize_license(raw) == spdx


def test_permissive_set():
    for spdx in ("MIT", "Apache-2.0", "BSD-2-Clause", "BSD-3-Clause", "ISC", "0BSD", "Unlicense", "CC0-1.0", "Zlib",
                 "BSL-1.0", "MIT-0"):  # fmt: skip
        assert is_permissive(spdx)
    for spdx in ("GPL-3.0-only", "AGPL-3.0-only", "LGPL-2.1-only", "MPL-2.0", "LicenseRef-Smithery",
                 "LicenseRef-Unknown", "LicenseRef-Proprietary", None, "mit"):  # fmt: skip
        assert not is_permissive(spdx)
    assert len(PERMISSIVE) == 11


# ---- schema repairs -------------------------------------------------------------------------------


def _ok(schema, *kinds):
    res = normalize_schema(schema)
    assert res.error is None, res.error
    assert meta_error(res.schema) is None
    assert res.schema["type"] == "object" and "$schema" not in res.schema
    for k in kinds:
        assert k in res.repairs, (k, res.repairs)
    return res.schema


@pytest.mark.parametrize(
    "loose, strict",
    [("str", "string"), ("String", "string"), ("int", "integer"), ("float", "number"), ("double", "number"),
     ("number", "number"), ("bool", "boolean"), ("list", "array"), ("dict", "object"), ("frobnicator", "string")],
)  # fmt: skip
def test_loose_types_made_explicit(loose, strict):
    s = _ok({"type": "object", "properties": {"x": {"type": loose}}})
    assert s["properties"]["x"]["type"] == strict


def test_any_type_drops_the_constraint():
    s = _ok({"type": "object", "properties": {"v": {"type": "any", "description": "d"}}}, "loose_type")
    assert s["properties"]["v"] == {"description": "d"}


def test_missing_type_required_absent_and_properties():
    s = _ok(
        {"properties": {"a": {"type": "string"}}, "required": ["a", "ghost", "a"]},
        "missing_type",
        "required_absent",
    )
    assert s["required"] == ["a"]
    s = _ok({"type": "object"}, "missing_properties")
    assert s["properties"] == {}


def test_dialect_converted_and_dropped():
    s = _ok(
        {"$schema": "http://json-schema.org/draft-07/schema#", "type": "object",
         "properties": {"pair": {"type": "array", "items": [{"type": "string"}, {"type": "integer"}]},
                        "n": {"type": "integer", "minimum": 0, "exclusiveMinimum": True}}},
        "dialect", "tuple_items", "draft4_exclusive",
    )  # fmt: skip
    assert s["properties"]["pair"]["prefixItems"] == [{"type": "string"}, {"type": "integer"}]
    assert s["properties"]["n"] == {"type": "integer", "exclusiveMinimum": 0}


def test_nested_schema_shorthand_and_json_text():
    inner = {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]}
    s = _ok({"type": "object", "properties": inner}, "nested_schema")
    assert s["properties"] == {"q": {"type": "string"}} and s["required"] == ["q"]
    s = _ok(
        json.dumps({"type": "object", "properties": {"city": "string"}}), "json_text", "property_shorthand"
    )
    assert s["properties"]["city"] == {"type": "string"}
    s = _ok(
        {"type": "object", "properties": {"a": {"type": "string", "required": True}}},
        "property_required_flag",
    )
    assert s["required"] == ["a"]


@pytest.mark.parametrize(
    "schema, error",
    [({"type": "array", "items": {}}, "top-level type"), ("{not json", "not JSON"), (["a"], "not an object"),
     ({"type": "object", "properties": {"a": {"type": "string", "minLength": "x"}}}, "not a valid JSON Schema")],
)  # fmt: skip
def test_unrepairable_schemas(schema, error):
    res = normalize_schema(schema)
    assert res.schema is None and error in res.error


def test_flat_parameters_become_an_object_schema():
    res = schema_from_parameters([{"name": "city", "required": True, "type": "str"}, {"name": "days", "required": False,
                                  "type": "int"}])  # fmt: skip
    assert res.error is None and "flat_parameters" in res.repairs
    assert res.schema == {"type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
                          "required": ["city"]}  # fmt: skip
    assert schema_from_parameters([]).schema == {"type": "object", "properties": {}}
    assert schema_from_parameters("city").error is not None
    assert schema_from_parameters([{"required": True}]).error == "a parameter has no name"


def test_flat_scrape_artefacts_removed():
    params = [
        {"name": "delete_event", "required": False, "type": "string"},  # page header
        {"name": "Delete", "required": False, "type": "string"},  # description words
        {"name": "a", "required": False, "type": "string"},
        {"name": "calendar", "required": False, "type": "string"},
        {"name": "eventId", "required": True, "type": "string"},
        {"name": "notify", "required": False, "type": "string"},
        {"name": "True", "required": False, "type": "string"},  # radio labels
        {"name": "False", "required": False, "type": "string"},
        {"name": "tags", "required": False, "type": "string"},
        {"name": "Add", "required": False, "type": "string"},  # array editor
        {"name": "Item", "required": False, "type": "string"},
        {"name": "list_events", "required": False, "type": "string"},  # a sibling tool's link
    ]
    kept, repairs = clean_flat_parameters("delete_event", "Delete a calendar event", params, ["list_events"])
    assert [(p["name"], p["type"]) for p in kept] == [
        ("eventId", "string"),
        ("notify", "boolean"),
        ("tags", "array"),
    ]
    assert set(repairs) == {
        "scrape_header",
        "scrape_prose",
        "scrape_boolean",
        "scrape_array",
        "scrape_sibling",
    }
    # real lower-case parameters after the prose run are kept
    kept, _ = clean_flat_parameters("f", "Build a Netlify function", [{"name": n, "required": False} for n in
                                    ("Build", "a", "Netlify", "function", "src")])  # fmt: skip
    assert [p["name"] for p in kept] == ["src"]


def test_args_from_docstring():
    desc = (
        "Read data from a worksheet. Args: ctx: The FastMCP context. filepath: Path to Excel file "
        "sheet_name (str): Name of worksheet (see Valid names: a, b) limit (int, optional): Rows (max: 100) "
        "Returns: JSON"
    )
    assert args_from_docstring(desc) == [
        {"name": "filepath", "required": True, "type": "string", "description": "Path to Excel file"},
        {"name": "sheet_name", "required": True, "type": "string",
         "description": "Name of worksheet (see Valid names: a, b)"},
        {"name": "limit", "required": False, "type": "integer", "description": "Rows (max: 100)"},
    ]  # fmt: skip
    # numpy style with newlines; a listing ('Valid periods:') is not a parameter; a default makes it optional
    desc = "Get prices.\nArgs:\n    ticker: str\n        The ticker\n    period: Valid periods: 1d, 5d. Default 1d\n"
    assert [(p["name"], p["type"], p["required"]) for p in args_from_docstring(desc)] == [
        ("ticker", "string", True),
        ("period", "string", False),
    ]
    assert args_from_docstring("Get the weather for a city: returns the forecast") == []


def test_flat_entry_without_parameters_reads_its_docstring():
    res = schema_from_parameters([{"name": "get_post", "required": False, "type": "string"}], "get_post",
                                 "Fetch a post. Args: post_id: Reddit post ID Returns: the post")  # fmt: skip
    assert "docstring_args" in res.repairs and res.schema == {
        "type": "object",
        "properties": {"post_id": {"type": "string", "description": "Reddit post ID"}},
        "required": ["post_id"],
    }


def test_clean_description_drops_name_label():
    assert clean_description("Name: get_ip_report Description: Get an IP report.") == "Get an IP report."
    assert clean_description("  Get\n  an IP report.  ") == "Get\nan IP report."
    assert clean_description(None) == ""


def test_annotations_camel_case():
    a = annotations_of({"title": "T", "readOnlyHint": True, "destructiveHint": False, "idempotentHint": True,
                        "openWorldHint": False, "_def": {}, "streamingHint": True, "read_only_hint": "no"})  # fmt: skip
    assert (a.title, a.read_only_hint, a.destructive_hint, a.idempotent_hint, a.open_world_hint) == (
        "T", True, False, True, False)  # fmt: skip
    assert annotations_of({"readOnlyHint": "yes"}).read_only_hint is None
    assert annotations_of(None).title is None


# ---- descriptions ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, description, reason",
    [
        ("t", "", "empty"),
        ("t", "   \n ", "empty"),
        ("list-databases", "Deploy Server @smithery/notion Try in Playground list-databases", "page_chrome"),
        ("scrape", "Deploy Server Serper @a/b Claim Server Try in Playground google_search", "page_chrome"),
        ("Optional Settings", "Access and manage servers by signing in.", "page_chrome"),
        ("t", "Description not available", "placeholder"),
        ("t", "No description.", "placeholder"),
        ("t", "Tool description not accessible via automated extraction", "placeholder"),
        ("quick-add", "description dueDatetime deadlineDate durationUnit quick-add-task", "field_list"),
        ("list_chapters", "List Chapters", "restates_name"),
        ("getEarningDates", "Get earning dates.", "restates_name"),
        ("web_lookup", "Search", "too_short"),
        ("q", "查询", "too_short"),
        ("add", "Add two numbers", None),
        ("close", "Close the page", None),
        ("get_note", "获取笔记内容", None),
        ("fetch", "Fetch the page at /api/v1 and return its JSON", None),
    ],
)
def test_boilerplate_reason(name, description, reason):
    assert boilerplate_reason(name, description) == reason


# ---- naming ---------------------------------------------------------------------------------------


def test_server_slug():
    assert server_slug("@upstash/context7-mcp") == "upstash_context7-mcp"
    assert server_slug("exa") == "exa"
    assert server_slug("@Foo/Bar Baz!") == "foo_bar_baz"
    long = server_slug("@someone-with-a-long-name/an-even-longer-server-name-for-testing")
    assert len(long) <= SLUG_MAX and TOOL_NAME.match(long)
    assert "__" not in server_slug("@a__b/c")


def test_name_collisions_resolved_deterministically():
    stem = "x" * 70
    pairs = [("srv", stem + "_alpha"), ("srv", stem + "_beta"), ("srv", "short"), ("other", "short")]
    names = assign_names(pairs)
    assert names[2] == qualified_name("srv", "short") and names[3] == qualified_name("other", "short")
    assert names[0] != names[1] and all(TOOL_NAME.match(n) for n in names)
    assert len(set(names)) == len(names)
    assert assign_names(pairs) == names  # deterministic
    assert assign_names(pairs[::-1]) == names[::-1]  # and independent of order
    # characters outside the charset collide too: 'a.b' and 'a b' both become 'a_b'
    assert len(set(assign_names([("s", "a.b"), ("s", "a b")]))) == 2


# ---- synthetic crawl dumps ------------------------------------------------------------------------


def _live(name, desc, props=None, required=(), **extra):
    schema = {"type": "object", "properties": props or {"q": {"type": "string"}}, "required": list(required),
              "$schema": "http://json-schema.org/draft-07/schema#"}  # fmt: skip
    return {"name": name, "description": desc, "input_schema": schema, "annotations": extra.pop("annotations", {}),
            **extra}  # fmt: skip


def _flat(name, desc, *params):
    return {"name": name, "description": desc,
            "parameters": [{"name": p.rstrip("!"), "required": p.endswith("!"), "type": "string"} for p in params]}  # fmt: skip


def write_server(root: Path, sid: str, *, live=(), flat=(), license="MIT", usage="10", category="Weather",
                 label=None, overview="A server.") -> Path:  # fmt: skip
    crawled = [dict(t) for t in live] + list(flat)  # a live server's crawled list repeats the live one
    data = {
        "labels": {"primary_label": category, "custom_label": label, "is_connected": bool(live)},
        "metadata": {
            "server_name": sid, "usage_count": usage, "original_file": f"../crawler/smithery/{sid}.json",
            "remote_server_response": {"is_success": bool(live), "tools": list(live)},
            "server_info_crawled": {
                "name": sid, "overview": overview, "repository_url": f"https://github.com/x/{sid.strip('@')}",
                "homepage": f"https://smithery.ai/server/{sid}", "license": license, "usage_count": usage,
                "tools": crawled,
            },
        },
    }  # fmt: skip
    path = root / f"{len(list(root.glob('*.json'))):04d}.{sid.replace('/', '_')}_labeled.json"
    path.write_text(json.dumps(data))
    return path


LONG = ("Retrieves the hourly weather forecast for a city, including temperature, precipitation probability, "
        "wind speed and humidity, for up to five days ahead")  # fmt: skip
PUSH = (
    "Push multiple files to a {} project in a single commit, creating the branch when it does not exist yet"
)


@pytest.fixture
def dump(tmp_path):
    root = tmp_path / "crawl"
    root.mkdir()
    write_server(root, "@orig/weather", usage="1,000", category="Weather", label="Weather Forecasts", live=[
        _live("get_forecast", LONG, {"city": {"type": "str"}}, ["city"], annotations={"readOnlyHint": True}),
        _live("get_alerts", "Get weather alerts for a state", {"state": {"type": "string"}}),
        _live("empty_one", ""),
    ])  # fmt: skip
    # a fork: one exact copy, one lightly edited copy, one new tool; less used
    write_server(root, "@fork/weather", usage="5", live=[
        _live("get_forecast", LONG, {"city": {"type": "str"}}, ["city"], annotations={"readOnlyHint": True}),
        _live("get-alerts", "Get the weather alerts for a state", {"state": {"type": "string"}}),
        _live("get_radar", "Get the rain radar image for a region", {"region": {"type": "string"}}),
    ])  # fmt: skip
    # the same tool name from a different product, and a non-permissive copy that ranks first by usage
    write_server(root, "@other/gitlab", usage="50", category="Development Tools", live=[
        _live("push_files", PUSH.format("GitLab")),
        _live("get_forecast", LONG, {"city": {"type": "str"}}, ["city"], annotations={"readOnlyHint": True}),
    ])  # fmt: skip
    write_server(root, "@gpl/github", usage="9,999", license="GPL-3.0", category="Development Tools", live=[
        _live("push_files", PUSH.format("GitHub")),
    ])  # fmt: skip
    # flat shape, a Smithery-licensed server, boilerplate, and a reserved slug
    write_server(root, "@flat/notes", category="Daily Productivity", flat=[
        _flat("create_note", "Create a note with a title and a body", "create_note", "Create", "a", "title!", "body"),
        _flat("list_notes", "List all notes", "list_notes"),
        _flat("delete_note", "Description not available", "id!"),
        _flat("share_note", "Deploy Server Notes @flat/notes Try in Playground share_note", "id!"),
        _flat("高德", "中文名称的工具"),
    ])  # fmt: skip
    write_server(
        root, "@hosted/thing", license="Smithery", category="Others", live=[_live("do_it", "Does the thing")]
    )
    write_server(root, "calendar", license="Apache License 2.0", category="Time & Calendar",
                 live=[_live("create_event", "Create a calendar event", {"title": {"type": "string"}})])  # fmt: skip
    (root / "9998.broken_labeled.json").write_text("{not json")
    (root / "9999.no_meta_labeled.json").write_text('{"labels": {}}')
    return root


def _by(result):
    out = defaultdict(list)
    for e in result.entries:
        out[(e.server.server_id, e.name)].append(e)
    return out


def test_synthetic_import_counts_add_up(dump):
    r = import_crawl(dump)
    rep = r.report
    t = rep.totals
    assert rep.files == 9 and rep.servers == 7
    assert sorted(u["file"] for u in rep.unreadable_files) == [
        "9998.broken_labeled.json",
        "9999.no_meta_labeled.json",
    ]
    assert all(u["reason"] for u in rep.unreadable_files)
    assert rep.mirrored == 11  # every live entry is repeated in its crawled list, and read once
    assert t["read"] == 16 == len(r.entries)
    assert sum(t[b] for b in BUCKETS) == t["read"]
    for counts in [*rep.by_category.values(), *rep.by_shape.values()]:
        assert sum(counts[b] for b in BUCKETS) == counts["read"]
    assert sum(c["read"] for c in rep.by_category.values()) == t["read"]
    assert sum(v["shipped"] for v in rep.licences.values()) == t["shipped"]
    assert sum(rep.reasons["boilerplate"].values()) == t["boilerplate"]
    assert all(e.bucket in BUCKETS for e in r.entries)
    assert t["shipped"] == sum(len(d.tools) for d in r.domains)


def test_synthetic_import_buckets_and_keep_best(dump):
    r = import_crawl(dump)
    by = _by(r)
    (orig,) = by[("@orig/weather", "get_forecast")]
    assert orig.bucket == "shipped" and orig.tool.annotations.read_only_hint is True
    assert orig.tool.input_schema["properties"]["city"] == {"type": "string"}
    assert "dialect" in orig.repairs and "loose_type" in orig.repairs
    for sid in ("@fork/weather", "@other/gitlab"):  # exact copies: the more used permissive server keeps it
        (copy,) = by[(sid, "get_forecast")]
        assert (copy.bucket, copy.duplicate_of) == ("duplicate_exact", orig)
    (near,) = by[("@fork/weather", "get-alerts")]
    assert near.bucket == "duplicate_near" and near.duplicate_of is by[("@orig/weather", "get_alerts")][0]
    assert by[("@fork/weather", "get_radar")][0].bucket == "shipped"
    # similar enough, but GitLab and GitHub are different products: not duplicates
    assert by[("@other/gitlab", "push_files")][0].bucket == "shipped"
    gpl = by[("@gpl/github", "push_files")][0]
    assert (gpl.bucket, gpl.reason) == ("licence_excluded", "GPL-3.0-only")
    assert by[("@hosted/thing", "do_it")][0].reason == "LicenseRef-Smithery"
    assert by[("@orig/weather", "empty_one")][0].reason == "empty"
    assert by[("@flat/notes", "delete_note")][0].reason == "placeholder"
    assert by[("@flat/notes", "share_note")][0].reason == "page_chrome"
    assert by[("@flat/notes", "高德")][0].reason == "no_usable_name"
    # the page showed only the tool's own name: arguments unknown, not "no arguments"
    assert (by[("@flat/notes", "list_notes")][0].bucket, by[("@flat/notes", "list_notes")][0].reason) == (
        "invalid",
        "arguments_unknown",
    )
    note = by[("@flat/notes", "create_note")][0]
    assert note.bucket == "shipped" and note.shape == "flat"
    assert note.tool.input_schema == {"type": "object", "properties": {"title": {"type": "string"},
                                      "body": {"type": "string"}}, "required": ["title"]}  # fmt: skip


def test_keep_unknown_arguments_ships_an_empty_schema(dump):
    by = _by(import_crawl(dump, keep_unknown_arguments=True))
    (e,) = by[("@flat/notes", "list_notes")]
    assert e.bucket == "shipped" and e.tool.input_schema == {"type": "object", "properties": {}}


def test_keep_best_prefers_permissive_then_live_then_usage(tmp_path):
    tool = _live("lookup_word", LONG)
    write_server(tmp_path, "@hosted/dict", license="Smithery", usage="9,999", live=[tool])
    write_server(tmp_path, "@flat/dict", usage="5,000", flat=[_flat("lookup_word", LONG, "q!")])
    write_server(tmp_path, "@live/dict", usage="1", live=[tool])
    write_server(tmp_path, "@live/dict-2", usage="2", live=[tool])
    by = _by(import_crawl(tmp_path))
    kept = by[("@live/dict-2", "lookup_word")][0]
    assert kept.bucket == "shipped"
    assert by[("@live/dict", "lookup_word")][0].duplicate_of is kept
    assert by[("@hosted/dict", "lookup_word")][0].duplicate_of is kept  # licence outranks usage
    flat = by[("@flat/dict", "lookup_word")][0]  # live outranks flat; the flat copy is a near duplicate
    assert (flat.bucket, flat.duplicate_of) == ("duplicate_near", kept)


def test_near_duplicates_need_shared_arguments(tmp_path):
    write_server(
        tmp_path, "@a/cal", usage="9", live=[_live("create_event", LONG, {"title": {}, "start": {}})]
    )
    write_server(tmp_path, "@b/cal", usage="1", live=[_live("create_event", LONG + ".", {"event": {}})])
    assert {e.bucket for e in import_crawl(tmp_path).entries} == {"shipped"}


def test_domains_slugs_and_provenance(dump):
    r = import_crawl(dump)
    names = [d.name for d in r.domains]
    assert names == sorted(names) and len(set(names)) == len(names)
    assert not set(names) & RESERVED and "calendar_crawl" in names
    weather = next(d for d in r.domains if d.name == "orig_weather")
    assert weather.category == "Weather" and weather.description == "A server."
    t = weather.tools[0]
    assert t.name == "orig_weather__get_forecast"
    assert (t.provenance.source, t.provenance.server, t.provenance.original_name, t.provenance.license) == (
        "crawl", "orig_weather", "get_forecast", "MIT")  # fmt: skip
    assert t.provenance.package == "https://github.com/x/orig/weather"
    assert (t.taxonomy.category, t.taxonomy.domain) == ("Weather", "weather_forecasts")
    gitlab = next(d for d in r.domains if d.name == "other_gitlab")
    assert gitlab.tools[0].taxonomy.domain == "other_gitlab"  # no custom label: the server slug
    cal = next(d for d in r.domains if d.name == "calendar_crawl")
    assert cal.tools[0].provenance.license == "Apache-2.0"


def test_long_tool_names_collide_and_are_resolved(tmp_path):
    stem = "get_the_extremely_detailed_report_about_everything_in_the_workspace"
    write_server(tmp_path, "@a/reports", live=[_live(stem + "_daily", "Get the daily report of a workspace"),
                                              _live(stem + "_weekly", "Get the weekly report of a workspace")])  # fmt: skip
    (d,) = import_crawl(tmp_path).domains
    names = [t.name for t in d.tools]
    assert len(set(names)) == 2 and all(TOOL_NAME.match(n) and n.startswith("a_reports__") for n in names)


def test_import_is_deterministic(dump):
    a, b = import_crawl(dump), import_crawl(dump)
    assert [d.model_dump() for d in a.domains] == [d.model_dump() for d in b.domains]
    assert a.report == b.report


# ---- the command ----------------------------------------------------------------------------------


def _cli():
    app = typer.Typer()
    app.command()(import_crawl_cmd)
    return app


def test_cli_refuses_missing_or_empty_dir(tmp_path):
    runner = CliRunner()
    res = runner.invoke(_cli(), [str(tmp_path / "nope"), "--out", str(tmp_path)])
    assert res.exit_code == 2 and "not a folder" in " ".join(res.output.split())
    res = runner.invoke(_cli(), [str(tmp_path), "--out", str(tmp_path)])
    assert res.exit_code == 2 and "no *.json" in " ".join(res.output.split())
    assert not (tmp_path / "crawl").exists()


def test_cli_writes_domains_and_reports(dump, tmp_path):
    out = tmp_path / "repo"
    res = CliRunner().invoke(_cli(), [str(dump), "--out", str(out)])
    assert res.exit_code == 0, res.output
    report = json.loads((out / "crawl" / "report.json").read_text())
    assert report["command"].startswith("agentgym tools import-crawl ")
    md = (out / "crawl" / "REPORT.md").read_text()
    assert "## Why tools were dropped" in md and "@gpl/github" in md
    repo = ToolRepository.load(out, sources=["crawl"])
    assert len(repo) == report["totals"]["shipped"]


def test_cli_keep_unknown_arguments(dump, tmp_path):
    res = CliRunner().invoke(_cli(), [str(dump), "--out", str(tmp_path), "--keep-unknown-arguments"])
    assert res.exit_code == 0, res.output
    report = json.loads((tmp_path / "crawl" / "report.json").read_text())
    assert (
        report["command"].endswith(" --keep-unknown-arguments")
        and report["settings"]["keep_unknown_arguments"]
    )
    assert report["shipped_schemas"]["flat_without_parameters"] >= 1
    assert "--keep-unknown-arguments" in (tmp_path / "crawl" / "REPORT.md").read_text()


# ---- the real shipped data ------------------------------------------------------------------------

CRAWL = tools_dir() / "crawl"


@pytest.fixture(scope="module")
def shipped():
    with gzip.open(CRAWL / "domains.jsonl.gz", "rb") as f:
        return [orjson.loads(line) for line in f if line.strip()]


def test_real_report_adds_up(shipped):
    rep = json.loads((CRAWL / "report.json").read_text())
    t = rep["totals"]
    assert sum(t[b] for b in BUCKETS) == t["read"] > 10_000
    for counts in [*rep["by_category"].values(), *rep["by_shape"].values()]:
        assert sum(counts[b] for b in BUCKETS) == counts["read"]
    assert sum(c["read"] for c in rep["by_category"].values()) == t["read"]
    assert sum(c["shipped"] for c in rep["by_category"].values()) == t["shipped"]
    assert sum(v["shipped"] for v in rep["licences"].values()) == t["shipped"]
    assert sum(v["licence_excluded"] for v in rep["licences"].values()) == t["licence_excluded"]
    for bucket, reasons in rep["reasons"].items():
        assert sum(reasons.values()) == t[bucket]
    assert t["shipped"] == sum(len(d["tools"]) for d in shipped) > 3000
    assert t["executable"] == sum(tool.get("semantics") is not None for d in shipped for tool in d["tools"])
    assert rep["domains"] == len(shipped)
    # only a live server's own schema may say "no arguments"; flat entries without any are not shipped
    assert rep["settings"]["keep_unknown_arguments"] is False
    assert "flat_without_parameters" not in rep["shipped_schemas"]
    no_args = sum(not t["input_schema"]["properties"] for d in shipped for t in d["tools"])
    assert no_args <= rep["shipped_schemas"]["live"]
    assert rep["docstring_check"]["tools"] > 100 and rep["docstring_check"]["names_exact"] > 0.85
    assert rep["command"] == "agentgym tools import-crawl ../shared/data/mcp-crawl/smithery-toucan"


def test_real_tools_meta_valid_and_permissive(shipped):
    """Every shipped tool has a meta-valid schema, a permissive licence and a unique name."""
    names = set()
    for d in shipped:
        assert d["name"] not in RESERVED
        for t in d["tools"]:
            assert meta_error(t["input_schema"]) is None, t["name"]
            p = t["provenance"]
            assert p["source"] == "crawl" and p["server"] == d["name"] and is_permissive(p["license"])
            assert t["name"] not in names
            names.add(t["name"])


def test_real_sample_from_every_category(shipped):
    by_cat = defaultdict(list)
    for d in shipped:
        for t in d["tools"]:
            by_cat[t["taxonomy"]["category"]].append(t)
    rep = json.loads((CRAWL / "report.json").read_text())
    assert set(by_cat) == {c for c, v in rep["by_category"].items() if v["shipped"]}
    assert len(by_cat) >= 20
    rng = random.Random(0)
    for tools in by_cat.values():
        for t in rng.sample(tools, min(25, len(tools))):
            assert TOOL_NAME.match(t["name"]) and "__" in t["name"]
            assert t["description"].strip() and boilerplate_reason(t["provenance"]["original_name"],
                                                                  t["description"]) is None  # fmt: skip
            s = t["input_schema"]
            assert s["type"] == "object" and isinstance(s["properties"], dict) and "$schema" not in s


def test_real_domains_load_and_validate():
    repo = ToolRepository.load(sources=["crawl"])
    names = repo.domain_names("crawl")
    assert names
    for n in names:
        d = repo.domain(n)
        assert d.tools and all(t.provenance.source == "crawl" for t in d.tools)
