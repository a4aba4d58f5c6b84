"""`agentgym agents make` and `agentgym tasks generate` end to end into a temporary folder."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from agentgym.cli.main import app
from agentgym.suites.suite import load_suite_dir

runner = CliRunner()


def test_agents_make_json(tmp_path):
    out = runner.invoke(
        app, ["agents", "make", "--n", "60", "--seed", "2", "--out", str(tmp_path / "a.jsonl"), "--json"]
    )
    assert out.exit_code == 0, out.output
    summary = json.loads(out.output)
    assert summary["agents"] == summary["distinct_tool_sets"] == 60
    assert len((tmp_path / "a.jsonl").read_text().splitlines()) == 60
    assert runner.invoke(app, ["agents", "make", "--n", "0"]).exit_code == 2


def test_tasks_generate_writes_a_valid_suite(tmp_path):
    dest = tmp_path / "mini"
    out = runner.invoke(
        app, ["tasks", "generate", "--name", "mini", "--agents", "25", "--per-agent", "4", "--out", str(dest)]
    )
    assert out.exit_code == 0, out.output
    suite = load_suite_dir(dest)
    assert len(suite) >= 50 and (dest / "STATS.md").exists()
    stats = json.loads((dest / "stats.json").read_text())
    assert stats["tasks"] == len(suite) and stats["build"]["counts"]["invalid"] == 0
    assert "--name mini --agents 25 --per-agent 4" in (dest / "STATS.md").read_text()
    val = runner.invoke(app, ["tasks", "validate", "--suite", str(dest)])
    assert val.exit_code == 0 and f"all {len(suite)} tasks valid" in val.output


def test_generate_refuses_unknown_blueprints(tmp_path):
    out = runner.invoke(app, ["tasks", "generate", "--blueprints", "nope", "--out", str(tmp_path / "x")])
    assert out.exit_code == 2 and "unknown blueprints" in out.output


def test_filter_a_generated_suite(tmp_path):
    """`tasks filter` on a generated suite writes a suite over the same repository domains."""
    src = tmp_path / "gen"
    assert (
        runner.invoke(
            app,
            ["tasks", "generate", "--name", "gen", "--agents", "12", "--per-agent", "3", "--out", str(src)],
        ).exit_code
        == 0
    )
    out = runner.invoke(
        app,
        [
            "tasks",
            "filter",
            "--suite",
            str(src),
            "--model",
            "oracle",
            "--k",
            "2",
            "--sample",
            "4",
            "--out",
            str(tmp_path / "f"),
        ],
    )
    assert out.exit_code == 0, out.output
    filtered = load_suite_dir(tmp_path / "f" / "suite")
    assert len(filtered) == 4 and all("too_easy" in t.tags for t in filtered)
