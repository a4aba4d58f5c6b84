"""The shipped live data (`tools/live/`): real servers' tools, loadable next to every other source,
licence-checked, namespaced, with valid schemas, and remade by the command its report names."""

from __future__ import annotations

import json

import jsonschema
import pytest

from agentgym.cli.scrape_cmd import read_specs
from agentgym.paths import tools_dir
from agentgym.repository.licenses import is_permissive
from agentgym.repository.stats import repository_stats
from agentgym.repository.store import ToolRepository

LIVE = tools_dir() / "live"


@pytest.fixture(scope="module")
def repo() -> ToolRepository:
    return ToolRepository.load()  # every source: a name live shares with starter or crawl would raise


def test_live_domains_load_next_to_every_other_source(repo):
    names = repo.domain_names("live")
    assert len(names) >= 4
    assert (
        repository_stats(repo)["by_source"]["live"]
        == sum(len(repo.raw_domain(n)["tools"]) for n in names)
        > 0
    )


def test_every_live_tool_is_real_permissive_and_namespaced(repo):
    for name in repo.domain_names("live"):
        domain = repo.domain(name)
        assert domain.tools and domain.category
        for t in domain.tools:
            assert t.provenance.source == "live" and t.provenance.server == name
            assert t.name.startswith(f"{name}__") or len(t.name) == 64
            assert is_permissive(t.provenance.license) and t.provenance.package.startswith(("npm:", "pypi:"))
            jsonschema.Draft202012Validator.check_schema(t.input_schema)
            if t.output_schema is not None:
                jsonschema.Draft202012Validator.check_schema(t.output_schema)


def test_the_report_covers_servers_txt_and_names_the_command():
    report = json.loads((LIVE / "report.json").read_text())
    specs = read_specs([], LIVE / "servers.txt")
    assert [s["spec"] for s in report["servers"]] == specs
    assert report["command"] == "agentgym tools scrape --file tools/live/servers.txt"
    assert report["command"] in (LIVE / "REPORT.md").read_text()
    shipped = {s["domain"] for s in report["servers"] if s["status"] == "shipped"}
    assert shipped == set(ToolRepository.load(sources=("live",)).domain_names())
