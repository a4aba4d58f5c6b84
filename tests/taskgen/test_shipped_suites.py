"""The shipped generated suites: sizes, splits, decontamination, and a re-validated sample."""

from __future__ import annotations

import json
import random

import pytest
from typer.testing import CliRunner

from agentgym.cli.main import app
from agentgym.env.tool_env import ToolUseEnv
from agentgym.suites import load_suite
from agentgym.suites.validate import check_task
from agentgym.taskgen.split import near_duplicates

runner = CliRunner()


@pytest.fixture(scope="module")
def agentic():
    return load_suite("agentic")


@pytest.fixture(scope="module")
def multiturn():
    return load_suite("agentic-multiturn")


def test_sizes_and_levels(agentic, multiturn):
    assert len(agentic) >= 1000
    assert len({t.agent_id for t in agentic}) >= 100
    assert 200 <= len(agentic.agents) <= 1000  # a few hundred agents shipped
    for split in ("train", "test"):
        levels = {t.difficulty for t in agentic if t.split == split}
        assert levels == {"simple", "moderate", "complex"}, split
    assert all(t.user.follow_ups and t.user.hidden_facts for t in multiturn)
    assert {t.split for t in multiturn} == {"train", "test"}


def test_heldout_domains_never_in_train(agentic):
    from agentgym.paths import tasks_dir

    heldout = set(
        json.loads((tasks_dir() / "agentic" / "stats.json").read_text())["build"]["heldout_domains"]
    )
    assert heldout
    for t in agentic:
        if t.split == "train":
            assert not heldout & set(agentic.agents[t.agent_id].domains)
    assert any("heldout_domain" in t.tags for t in agentic if t.split == "test")


@pytest.mark.parametrize("name", ["agentic", "agentic-multiturn"])
def test_no_near_duplicate_across_splits(name):
    s = load_suite(name)
    train = [t.instruction for t in s if t.split == "train"]
    test = [t.instruction for t in s if t.split == "test"]
    assert not near_duplicates(train, test, 0.8)


@pytest.mark.parametrize("name", ["agentic", "agentic-multiturn"])
def test_a_sample_revalidates(name):
    s = load_suite(name)
    env = ToolUseEnv(s)
    ids = random.Random(0).sample(sorted(s.tasks), min(150, len(s)))
    bad = [c for c in (check_task(env, i) for i in ids) if not c.ok]
    assert not bad, [(c.task_id, c.problems) for c in bad[:5]]


def test_stats_json_interface():
    out = runner.invoke(app, ["tasks", "stats", "--json"])
    assert out.exit_code == 0, out.output
    stats = json.loads(out.output)
    assert {"tasks", "agents", "by_difficulty", "by_split"} <= set(stats)
    assert stats["tasks"] >= 1000 + 67 and set(stats["by_split"]) == {"train", "test"}
    assert stats["suites"]["starter"] == 67


def test_agents_list_json():
    out = runner.invoke(app, ["agents", "list", "--json"])
    assert out.exit_code == 0, out.output
    rows = json.loads(out.output)
    assert len(rows) >= 300 and all(r["id"] for r in rows)


def test_validate_sample_command():
    out = runner.invoke(app, ["tasks", "validate", "--sample", "40", "--seed", "3"])
    assert out.exit_code == 0, out.output
    assert "all 40 tasks valid" in out.output
    bad = runner.invoke(app, ["tasks", "validate", "--sample", "0"])
    assert bad.exit_code == 2


def test_registered_splits():
    import gymnasium as gym

    env = gym.make("agentgym/Agentic-Test-v0")
    assert {env.unwrapped.suite.tasks[i].split for i in env.unwrapped.task_ids} == {"test"}
    env.close()
