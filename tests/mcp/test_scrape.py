"""`repository.scrape`: local servers scraped into `ScrapeResult`s, failures as results (never raised,
never stopping the others), and results turned into licence-checked, namespaced live domains."""

from __future__ import annotations

import time

import jsonschema
import pytest
from local_servers import local

from agentgym.repository.scrape import (
    UNCATEGORIZED,
    ScrapeResult,
    domain_label,
    live_domains,
    merge_domains,
    nearest_category,
    scrape,
    scrape_many,
)
from agentgym.repository.store import ToolRepository
from agentgym.spec.tool import ToolSpec
from agentgym.spec.world import DomainSpec


@pytest.fixture(scope="module")
def toy() -> ScrapeResult:
    import asyncio

    return asyncio.run(scrape(local("toy_server.py"), timeout=20))


def test_the_toy_server_is_scraped_whole(toy):
    assert toy.ok and toy.error is None
    assert (toy.server, toy.server_name, toy.server_version) == ("toy", "toy", "1.2.3")
    assert toy.description == "A toy server for agentgym's tests." == toy.instructions
    assert {"tools", "resources", "prompts"} <= set(toy.capabilities)
    assert toy.network_isolated is not None
    tools = {t.provenance.original_name: t for t in toy.tools}
    assert set(tools) == {"add", "create_note", "list_notes", "env", "crash", "sleep", "spawn", "probe"}
    add = tools["add"]
    assert add.name == "toy__add" and add.description == "Add two integers."
    assert add.provenance.source == "live" and add.provenance.server == "toy"
    assert add.annotations.read_only_hint is True and add.title == "Add numbers"
    assert add.output_schema["properties"]["total"]["type"] == "integer"
    assert add.input_schema["required"] == ["a", "b"]
    assert add.taxonomy.category == UNCATEGORIZED and add.taxonomy.domain == "toy"
    assert [(r.uri, r.description) for r in toy.resources] == [("toy://readme", "What this server is.")]
    assert [t.uri_template for t in toy.resource_templates] == ["toy://notes/{note_id}"]
    (prompt,) = toy.prompts
    assert prompt.name == "summarise" and [(a.name, a.required) for a in prompt.arguments] == [
        ("topic", True)
    ]
    assert toy.timings.total_s >= toy.timings.connect_s > 0
    assert toy.license is None and not toy.permissive  # a local command has no package metadata


def test_a_result_round_trips_through_json(toy):
    assert ScrapeResult.model_validate_json(toy.model_dump_json()) == toy


def test_every_shipped_schema_is_meta_valid(toy):
    for t in toy.tools:
        jsonschema.Draft202012Validator.check_schema(t.input_schema)
        if t.output_schema is not None:
            jsonschema.Draft202012Validator.check_schema(t.output_schema)


async def test_bad_tools_are_skipped_or_repaired_and_refusals_are_warnings():
    r = await scrape(local("lowlevel_server.py", "paged"), timeout=20)
    assert r.ok
    assert [t.provenance.original_name for t in r.tools] == ["echo", "loose", "dup", "odd_output"]
    assert {s.name: s.reason.split(":")[0] for s in r.skipped_tools} == {"broken": "input schema", "dup": "name listed twice (the first is kept)"}  # fmt: skip
    tools = {t.provenance.original_name: t for t in r.tools}
    assert tools["dup"].description == "Listed twice: first copy."
    assert tools["loose"].input_schema["properties"]["city"] == {"type": "string"}
    assert tools["loose"].input_schema["required"] == ["city"]
    assert set(r.schema_repairs["loose"]) == {"loose_type", "required_absent"}
    assert tools["odd_output"].output_schema is None and tools["odd_output"].annotations.destructive_hint
    assert tools["echo"].annotations.idempotent_hint is True
    assert any("odd_output: output schema dropped" in w for w in r.warnings)
    assert any("Method not found" in w for w in r.warnings)  # templates refused, resources still listed
    assert [res.uri for res in r.resources] == ["low://a"] and r.resource_templates == ()


async def test_tools_the_protocol_refuses_are_repaired_from_what_was_sent():
    r = await scrape(local("raw_server.py"), timeout=20)
    assert r.ok
    assert sorted(t.provenance.original_name for t in r.tools) == ["good", "paged_only", "shorthand"]
    shorthand = next(t for t in r.tools if t.provenance.original_name == "shorthand")
    assert shorthand.input_schema == {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    }
    assert [(s.name, s.reason) for s in r.skipped_tools] == [("array_schema", "input schema: top-level type is 'array', not 'object'")]  # fmt: skip
    assert any("break the protocol" in w for w in r.warnings)


@pytest.mark.parametrize(
    "spec, kind, timeout",
    [
        (local("bad_server.py", "silent"), "timeout", 2),
        (local("bad_server.py", "garbage"), "protocol_error", 20),
        (local("bad_server.py", "exit"), "crashed", 20),
        (local("lowlevel_server.py", "crash_on_list"), "crashed", 20),
        ("agentgym-no-such-command-1b7d", "start_failed", 20),
        ("npm:", "start_failed", 20),
    ],
)
async def test_a_failure_is_a_result_with_its_kind(spec, kind, timeout):
    t0 = time.monotonic()
    r = await scrape(spec, timeout=timeout)
    assert not r.ok and r.error.kind == kind and r.tools == ()
    assert r.spec == spec and r.server
    # none of them waits for its time-out but the silent one
    assert time.monotonic() - t0 < min(timeout, 10) + 5


async def test_scrape_many_keeps_order_and_one_failure_stops_nothing():
    specs = [local("bad_server.py", "exit"), local("toy_server.py"), "agentgym-no-such-command-1b7d",
             local("raw_server.py")]  # fmt: skip
    seen: list[int] = []
    results = await scrape_many(specs, concurrency=2, timeout=20, on_done=lambda i, r: seen.append(i))
    assert [r.spec for r in results] == specs
    assert [r.ok for r in results] == [False, True, False, True]
    assert sorted(seen) == [0, 1, 2, 3]


async def test_scrape_many_runs_servers_side_by_side():
    specs = [local("bad_server.py", "silent"), local("bad_server.py", "silent", "again")]
    t0 = time.monotonic()
    results = await scrape_many(specs, concurrency=2, timeout=2)
    assert [r.error.kind for r in results] == ["timeout", "timeout"]
    assert time.monotonic() - t0 < 2 * 2 + 3  # concurrently: not one time-out after the other plus grace


# ---- domains --------------------------------------------------------------------------------------


def licensed(r: ScrapeResult, license: str = "MIT") -> ScrapeResult:
    return r.model_copy(update={"license": license})


def test_only_permissive_servers_ship(toy):
    out = live_domains([toy, licensed(toy, "GPL-3.0-only").model_copy(update={"spec": "gpl"})])
    assert out.domains == [] and [why for _, why in out.excluded] == [
        "licence unspecified is not permissive",
        "licence GPL-3.0-only is not permissive",
    ]


def test_a_shipped_server_is_one_domain_with_inferred_semantics(toy):
    out = live_domains([licensed(toy)], categories={"toy": "Productivity"})
    (domain,) = out.domains
    assert isinstance(domain, DomainSpec) and domain.name == "toy" and domain.category == "Productivity"
    assert {t.taxonomy.category for t in domain.tools} == {"Productivity"}
    assert [t.name for t in domain.tools] == [t.name for t in toy.tools]
    notes = {t.provenance.original_name: t for t in domain.tools}
    assert notes["create_note"].semantics is not None and notes["create_note"].semantics.operation == "create"
    assert notes["add"].semantics is None  # nothing to keep records of: answered by a real backend
    assert out.rescraped == {"toy"} and out.names == {toy.spec: "toy"}
    assert DomainSpec.model_validate(domain.model_dump()) == domain


def test_a_name_another_source_has_is_made_unique(toy):
    out = live_domains([licensed(toy)], taken={"toy", "calendar"})
    (domain,) = out.domains
    assert domain.name == "toy_live"
    assert all(t.name.startswith("toy_live__") and t.provenance.server == "toy_live" for t in domain.tools)


def test_failed_results_are_excluded_with_their_error():
    failed = ScrapeResult(spec="x", server="x", error={"kind": "timeout", "message": "no answer"})
    out = live_domains([failed])
    assert out.domains == [] and out.excluded == [("x", "failed: timeout: no answer")] and not out.rescraped


def test_merge_replaces_rescraped_and_keeps_the_rest(toy):
    (new,) = live_domains([licensed(toy)]).domains
    old_toy = new.model_copy(update={"description": "old"})
    other = new.model_copy(update={"name": "other", "tools": ()})
    gone = new.model_copy(update={"name": "gone", "tools": ()})
    merged = merge_domains([old_toy, other, gone], [new], replace={"toy", "gone"})
    assert [d.name for d in merged] == ["other", "toy"] and merged[1].description != "old"


@pytest.mark.parametrize(
    "package, label",
    [("@modelcontextprotocol/server-memory", "memory"), ("mcp-server-git", "git"), ("weather-mcp", "weather"),
     ("@scope/mcp-server-sequential-thinking", "sequential_thinking"), ("mcp", "mcp")],
)  # fmt: skip
def test_domain_label(package, label):
    assert domain_label(package) == label


def test_the_crawl_votes_a_category():
    crawl = ToolRepository.load(sources=("crawl",))
    if not len(crawl):
        pytest.skip("no crawl data")

    def tool(name: str, description: str) -> ToolSpec:
        return ToolSpec.model_validate({
            "name": f"x__{name}", "description": description, "input_schema": {"type": "object"},
            "provenance": {"source": "live", "server": "x", "original_name": name},
            "taxonomy": {"category": UNCATEGORIZED, "domain": "x"},
        })  # fmt: skip

    memory = [tool("create_entities", "Create multiple new entities in the knowledge graph"),
              tool("read_graph", "Read the entire knowledge graph")]  # fmt: skip
    clock = [tool("get_current_time", "Get current time in a specific timezone"),
             tool("convert_time", "Convert time between timezones")]  # fmt: skip
    assert nearest_category(memory, crawl) == "Memory Management"
    assert nearest_category(clock, crawl) == "Time & Calendar"
    assert nearest_category([tool("zzqx", "qqxyzzy")], crawl) is None
