"""Real MCP servers from npm and PyPI: scraped through `scrape`, and scraped tools called for real.

The packages are installed into agentgym's cache once per run (`real_servers` in conftest) and then
reused; with the cache warm this file takes a few seconds.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime

import jsonschema
import pytest
from local_servers import REAL
from typer.testing import CliRunner

from agentgym.cli.main import app
from agentgym.mcp import ServerSpec, connect
from agentgym.repository.scrape import live_domains, scrape_many
from agentgym.repository.stats import repository_stats
from agentgym.repository.store import ToolRepository

pytestmark = pytest.mark.network


@pytest.fixture(scope="module")
def scraped(real_servers):
    results = asyncio.run(scrape_many(REAL.values(), timeout=60))
    return dict(zip(REAL, results, strict=True))


def tools_of(result) -> dict:
    return {t.provenance.original_name: t for t in result.tools}


def test_every_real_server_is_scraped_with_version_and_licence(scraped, real_servers):
    for name, r in scraped.items():
        assert r.ok, (name, r.error)
        assert r.package_version == real_servers[name].version and r.server_version
        assert r.permissive and r.license == real_servers[name].license
        assert r.tools and all(t.provenance.source == "live" for t in r.tools)
        assert all(t.name.startswith(f"{r.server}__") for t in r.tools)
        assert r.pinned.endswith(r.package_version)
        assert r.network_isolated is not None


def test_memory_tools_carry_annotations_and_output_schemas(scraped):
    r = scraped["memory"]
    tools = tools_of(r)
    assert {"create_entities", "read_graph", "search_nodes", "delete_entities"} <= set(tools)
    assert r.server == "modelcontextprotocol_server-memory"
    assert tools["create_entities"].input_schema["properties"]["entities"]["type"] == "array"
    assert any(t.output_schema is not None for t in tools.values())
    assert any(t.annotations != type(t.annotations)() for t in tools.values())
    assert tools["read_graph"].read_only


def test_everything_offers_resources_templates_and_prompts(scraped):
    r = scraped["everything"]
    assert {"resources", "prompts", "tools"} <= set(r.capabilities)
    assert r.resources and r.resource_templates and r.prompts
    assert "echo" in tools_of(r)
    assert all(p.name for p in r.prompts) and all(res.uri for res in r.resources)


def test_time_and_git_come_from_pypi(scraped):
    assert set(tools_of(scraped["time"])) >= {"get_current_time", "convert_time"}
    assert {"git_status", "git_log", "git_commit"} <= set(tools_of(scraped["git"]))
    assert scraped["git"].server_name == "mcp-git"


def test_real_servers_become_executable_domains(scraped):
    out = live_domains(scraped.values())
    assert len(out.domains) == 4 and not out.excluded
    memory = next(d for d in out.domains if d.name == scraped["memory"].server)
    assert any(t.semantics is not None for t in memory.tools) and memory.entities


async def test_a_scraped_memory_tool_is_called_for_real(scraped):
    tools = tools_of(scraped["memory"])
    create, read = tools["create_entities"], tools["read_graph"]
    args = {
        "entities": [
            {"name": "Ada Lovelace", "entityType": "person", "observations": ["wrote the first program"]}
        ]
    }
    jsonschema.validate(args, create.input_schema)  # the scraped schema describes what the server takes
    spec = ServerSpec.parse(REAL["memory"], env={"MEMORY_FILE_PATH": "{workdir}/memory.jsonl"})
    async with connect(spec, timeout=60) as conn:
        made = await conn.call_tool(create.provenance.original_name, args)
        assert not made.is_error, made
        graph = await conn.call_tool(read.provenance.original_name, {})
    assert not graph.is_error
    data = graph.structured_content or json.loads(graph.content[0].text)
    assert [e["name"] for e in data["entities"]] == ["Ada Lovelace"]
    assert data["entities"][0]["observations"] == ["wrote the first program"]
    if read.output_schema is not None and graph.structured_content is not None:
        jsonschema.validate(graph.structured_content, read.output_schema)


async def test_a_scraped_time_tool_is_called_for_real(scraped):
    tool = tools_of(scraped["time"])["get_current_time"]
    args = {"timezone": "UTC"}
    jsonschema.validate(args, tool.input_schema)
    async with connect(REAL["time"], timeout=60) as conn:
        result = await conn.call_tool(tool.provenance.original_name, args)
    assert not result.is_error, result
    data = result.structured_content or json.loads(result.content[0].text)
    assert data["timezone"] == "UTC"
    told = datetime.fromisoformat(data["datetime"])
    assert abs((told - datetime.now(UTC)).total_seconds()) < 300


def test_the_cli_saves_merges_and_the_repository_loads_it(tmp_path, real_servers):
    runner = CliRunner()
    args = ["tools", "scrape", REAL["memory"], REAL["time"], "--out", str(tmp_path), "--timeout", "60"]
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    again = runner.invoke(app, ["tools", "scrape", REAL["time"], "--out", str(tmp_path), "--timeout", "60"])
    assert again.exit_code == 0, again.output
    repo = ToolRepository.load(tmp_path)
    assert sorted(repo.domain_names("live")) == ["mcp-server-time", "modelcontextprotocol_server-memory"]
    assert repository_stats(repo)["by_source"]["live"] == len(repo) > 10
    report = json.loads((tmp_path / "live" / "report.json").read_text())
    assert sorted(s["spec"] for s in report["servers"]) == sorted([REAL["memory"], REAL["time"]])
    assert all(s["status"] == "shipped" for s in report["servers"])
    repo.domain("modelcontextprotocol_server-memory")  # validates
