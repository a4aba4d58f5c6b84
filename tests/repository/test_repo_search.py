"""Tool search: the obviously right tool first, filters, the on-disk cache, speed at 25k tools."""

from __future__ import annotations

import itertools
import json
import time

import pytest
import typer
from typer.testing import CliRunner

from agentgym.cli.repo_cmds import search_cmd
from agentgym.repository import search as search_mod
from agentgym.repository.search import SearchIndex, index_for, search, terms
from agentgym.repository.store import ToolRepository, save_domains
from agentgym.spec.tool import Provenance, Taxonomy, ToolSpec
from agentgym.spec.world import DomainSpec

S = {"type": "string"}

SERVERS = {
    ("calendar_app", "crawl", "Productivity"): [
        (
            "create_event",
            "Create a calendar event with a title, start and end time.",
            ["title", "start", "end"],
        ),
        ("list_events", "List upcoming events of the user's calendar.", ["calendar_id"]),
        ("delete_event", "Delete an event from the calendar.", ["event_id"]),
    ],
    ("slack", "live", "Communication"): [
        ("post_message", "Post a message to a Slack channel.", ["channel", "text"]),
        ("list_channels", "List the channels of the workspace.", []),
    ],
    ("weather", "crawl", "Weather"): [
        ("get_forecast", "Weather forecast for a city for the next days.", ["city", "days"]),
        ("get_alerts", "Active severe weather alerts for a US state.", ["state"]),
    ],
    ("files", "synthetic", "File Management"): [
        ("deleteFile", "Remove a file from the drive permanently.", ["fileId"]),
        ("upload_file", "Upload a file to a folder.", ["folder_id", "content"]),
        ("create_event_log", "Write an entry to the audit log of a file.", ["file_id", "message"]),
    ],
    ("github", "crawl", "Development Tools"): [
        (
            "create_pull_request",
            "Open a pull request in a GitHub repository.",
            ["owner", "repo", "head", "base"],
        ),
        ("search_issues", "Search issues and pull requests across GitHub.", ["q"]),
    ],
}


def build(root, servers=SERVERS):
    by_source: dict[str, list[DomainSpec]] = {}
    for (server, source, category), tools in servers.items():
        specs = tuple(
            ToolSpec(name=f"{server}__{n}", description=d,
                     input_schema={"type": "object", "properties": dict.fromkeys(params, S)},
                     provenance=Provenance(source=source, server=server, original_name=n),
                     taxonomy=Taxonomy(category=category, domain=server))
            for n, d, params in tools
        )  # fmt: skip
        by_source.setdefault(source, []).append(
            DomainSpec(name=server, category=category, entities=(), tools=specs)
        )
    for source, domains in by_source.items():
        save_domains(source, domains, root)
    return ToolRepository.load(root=root)


@pytest.fixture
def repo(tmp_path, monkeypatch):
    monkeypatch.setenv("AGENTGYM_CACHE", str(tmp_path / "cache"))
    return build(tmp_path / "tools")


@pytest.mark.parametrize("query, best", [
    ("create a calendar event", "calendar_app__create_event"),
    ("send a message to a slack channel", "slack__post_message"),
    ("weather forecast for Paris", "weather__get_forecast"),
    ("delete a file", "files__deleteFile"),
    ("open a GitHub pull request", "github__create_pull_request"),
    ("severe weather alerts", "weather__get_alerts"),
    ("which channels exist in my workspace", "slack__list_channels"),
])  # fmt: skip
def test_the_right_tool_comes_first(repo, query, best):
    hits = search(repo, query, k=3)
    assert hits[0].name == best, [h.name for h in hits]
    assert all(a.score >= b.score for a, b in itertools.pairwise(hits))


def test_hit_fields_and_source_filter(repo):
    hit = search(repo, "forecast", k=1)[0]
    assert (hit.server, hit.domain, hit.category, hit.source) == ("weather", "weather", "Weather", "crawl")
    assert hit.description.startswith("Weather forecast") and hit.score > 0
    assert {h.source for h in search(repo, "event", k=10, source="synthetic")} == {"synthetic"}
    assert search(repo, "event", k=10, source="live") == []
    assert search(repo, "zebra quantum", k=5) == [] and search(repo, "event", k=0) == []
    with pytest.raises(ValueError):
        search(repo, "event", source="nowhere")


def test_terms_split_identifiers_and_fold_plurals():
    assert terms("getUserId") == ["getuserid", "get", "user", "id"]
    assert set(terms("GitHub pull_requests")) == {"github", "git", "hub", "pull", "request"}
    assert terms("the events of a calendar") == ["event", "calendar"]


def test_index_is_cached_on_disk_and_keyed_by_content(tmp_path, monkeypatch):
    monkeypatch.setenv("AGENTGYM_CACHE", str(tmp_path / "cache"))
    first = build(tmp_path / "tools")
    search(first, "event")
    files = sorted((tmp_path / "cache" / "search").glob("*.npz"))
    assert len(files) == 1
    again = ToolRepository.load(root=tmp_path / "tools")  # a new process would do the same
    monkeypatch.setattr(SearchIndex, "build", classmethod(lambda cls, rows: pytest.fail("rebuilt")))
    assert [h.name for h in search(again, "event")] == [h.name for h in search(first, "event")]
    monkeypatch.undo()
    monkeypatch.setenv("AGENTGYM_CACHE", str(tmp_path / "cache"))
    changed = dict(SERVERS)
    changed[("weather", "crawl", "Weather")] = [("get_forecast", "Tide tables for a harbour.", ["harbour"])]
    edited = build(tmp_path / "tools2", changed)
    assert search(edited, "tide")[0].name == "weather__get_forecast"
    assert len(list((tmp_path / "cache" / "search").glob("*.npz"))) == 2


def test_a_query_over_25k_tools_is_fast():
    verbs = ("get", "list", "create", "update", "delete", "archive")
    nouns = ("user", "order", "invoice", "ticket", "note", "event", "file", "task")
    rows = []
    for i in range(25_000):
        verb, noun, server = verbs[i % 6], nouns[(i // 6) % 8], f"srv{i // 40}"
        rows.append(("synthetic" if i % 3 else "crawl", server, {
            "name": f"{server}__{verb}_{noun}{i}",
            "description": f"{verb.title()} a {noun} record {i % 97} of app {i // 40}.",
            "input_schema": {"properties": {f"{noun}_id": S, "limit": S}},
            "taxonomy": {"category": f"c{i % 25}", "domain": f"d{i % 500}"},
        }))  # fmt: skip
    idx = SearchIndex.build(rows)
    assert len(idx) == 25_000
    idx.query("warm up", 10)
    t0 = time.perf_counter()
    for q in ("create an invoice", "list open tickets for a user", "delete file", "archive old notes"):
        assert idx.query(q, 10)
    assert (time.perf_counter() - t0) / 4 < 0.1


def test_index_for_reuses_the_memory_copy(repo):
    assert index_for(repo) is index_for(repo)
    assert search_mod._MEMO[repo] is index_for(repo)


def test_search_cli_json(tmp_path, monkeypatch):
    build(tmp_path / "tools")
    monkeypatch.setenv("AGENTGYM_DATA", str(tmp_path))
    monkeypatch.setenv("AGENTGYM_CACHE", str(tmp_path / "cache"))
    app = typer.Typer()
    app.command("search")(search_cmd)
    app.command("noop")(lambda: None)  # two commands, so `search` stays a subcommand
    res = CliRunner().invoke(app, ["search", "slack message", "-k", "2", "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["query"] == "slack message" and out["hits"][0]["name"] == "slack__post_message"
    assert len(out["hits"]) <= 2
    res = CliRunner().invoke(app, ["search", "slack", "--source", "bogus"])
    assert res.exit_code == 2
    res = CliRunner().invoke(app, ["search", "weather alerts"])
    assert res.exit_code == 0 and "weather__get_alerts" in res.stdout
