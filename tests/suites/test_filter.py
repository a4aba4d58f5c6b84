"""Difficulty filtering: pass rates by hand, verdicts and thresholds, resume, tag vs drop, the
written suite, and `agentgym tasks filter` end to end (oracle, noop, the embedded model)."""

from __future__ import annotations

import asyncio
import shutil

import pytest
import yaml
from typer.testing import CliRunner

from agentgym import runner
from agentgym.cli.main import app
from agentgym.env.tool_env import ToolUseEnv
from agentgym.paths import tasks_dir, tools_dir
from agentgym.policies import NoopPolicy, OraclePolicy
from agentgym.spec import Trajectory, read_jsonl
from agentgym.suites.filter import (
    FilterConfig,
    PassRate,
    apply_filter,
    pass_rates,
    rates_from_trajectories,
    verdict,
    write_filtered,
)
from agentgym.suites.suite import SuiteError, TaskSuite, load_suite_dir

K = 4
cli = CliRunner()


@pytest.fixture(scope="module")
def picked(starter):
    """Four tasks: two simple, one moderate, one complex."""
    by = {d: [t.id for t in starter if t.difficulty == d] for d in ("simple", "moderate", "complex")}
    return {
        "always": by["simple"][0],
        "never": by["moderate"][0],
        "even": by["complex"][0],
        "zero": by["simple"][1],
    }


@pytest.fixture(scope="module")
def solves(picked):
    """Which (task, seed) the test policy solves: always, never, on even seeds, on seed 0 only."""
    rule = {
        "always": lambda s: True,
        "never": lambda s: False,
        "even": lambda s: s % 2 == 0,
        "zero": lambda s: s == 0,
    }
    return {picked[name]: f for name, f in rule.items()}


class SeedPolicy:
    """Oracle where `solves` says so, do-nothing elsewhere; told the episode seed by `seed_aware`."""

    name = "seed-policy"

    def __init__(self, solves):
        self.solves = solves
        self.seed = None

    def start(self, task, messages, tools):
        self.inner = OraclePolicy() if self.solves[task.id](self.seed) else NoopPolicy()
        self.inner.start(task, messages, tools)

    async def act(self, observation):
        return await self.inner.act(observation)


@pytest.fixture
def seed_aware(monkeypatch):
    """The runner hands each episode's seed to the policy before it starts (test-only plumbing)."""
    original = runner.run_episode

    async def run_episode(env, policy, task_id, seed):
        policy.seed = seed
        return await original(env, policy, task_id, seed)

    monkeypatch.setattr(runner, "run_episode", run_episode)


@pytest.fixture(scope="module")
def noop_score(starter, picked):
    env = ToolUseEnv(starter, task_ids=list(picked.values()))
    scores = {i: asyncio.run(runner.run_episode(env, NoopPolicy(), i, 0)).reward for i in picked.values()}
    assert all(s < 0.5 for s in scores.values())
    return scores


def _rate(starter, solves, **kw):
    return asyncio.run(pass_rates(starter, lambda: SeedPolicy(solves), k=K, task_ids=list(solves), **kw))


async def test_pass_rates_by_hand(starter, picked, solves, seed_aware, noop_score):
    rates = await pass_rates(starter, lambda: SeedPolicy(solves), k=K, task_ids=list(solves), concurrency=3)
    passes = {picked["always"]: 4, picked["never"]: 0, picked["even"]: 2, picked["zero"]: 1}
    assert list(rates) == list(solves)
    for task_id, r in rates.items():
        assert (r.task_id, r.policy, r.k, r.passes) == (task_id, "seed-policy", 4, passes[task_id])
        assert r.rate == passes[task_id] / 4
        expected = (passes[task_id] * 1.0 + (4 - passes[task_id]) * noop_score[task_id]) / 4
        assert r.mean_score == pytest.approx(expected)


def test_verdicts_and_thresholds(starter, picked):
    rates = {
        picked["always"]: PassRate(
            task_id=picked["always"], policy="p", k=4, passes=4, mean_score=1, rate=1.0
        ),
        picked["never"]: PassRate(task_id=picked["never"], policy="p", k=4, passes=0, mean_score=0, rate=0.0),
        picked["even"]: PassRate(task_id=picked["even"], policy="p", k=4, passes=2, mean_score=0.5, rate=0.5),
        picked["zero"]: PassRate(
            task_id=picked["zero"], policy="p", k=4, passes=1, mean_score=0.3, rate=0.25
        ),
    }
    default = apply_filter(starter, rates, FilterConfig())
    assert default.verdicts == {
        picked["always"]: "too_easy",
        picked["never"]: "too_hard",
        picked["even"]: "learnable",
        picked["zero"]: "learnable",
    }
    assert default.counts == {"too_hard": 1, "learnable": 2, "too_easy": 1}
    assert default.by_difficulty == {
        "complex": {"too_hard": 0, "learnable": 1, "too_easy": 0},
        "moderate": {"too_hard": 1, "learnable": 0, "too_easy": 0},
        "simple": {"too_hard": 0, "learnable": 1, "too_easy": 1},
    }
    strict = apply_filter(starter, rates, FilterConfig(min_rate=0.25, max_rate=0.5))
    assert strict.verdicts[picked["zero"]] == "too_hard"  # rate == min_rate is too hard
    assert strict.verdicts[picked["even"]] == "too_easy"  # rate == max_rate is too easy
    assert strict.counts == {"too_hard": 2, "learnable": 0, "too_easy": 2}
    assert verdict(0.26, FilterConfig(min_rate=0.25)) == "learnable"
    assert verdict(0.99, FilterConfig()) == "learnable"
    with pytest.raises(ValueError, match="below max_rate"):
        FilterConfig(min_rate=0.5, max_rate=0.5)
    with pytest.raises(ValueError, match="not in suite"):
        apply_filter(
            starter, {"nope": rates[picked["never"]].model_copy(update={"task_id": "nope"})}, FilterConfig()
        )


def test_pass_rate_records_refuse_inconsistency(starter, picked):
    with pytest.raises(ValueError, match="inconsistent"):
        PassRate(task_id="t", policy="p", k=2, passes=3, mean_score=1, rate=1.0)
    with pytest.raises(ValueError, match="inconsistent"):
        PassRate(task_id="t", policy="p", k=4, passes=1, mean_score=0.3, rate=0.5)
    env = ToolUseEnv(starter, task_ids=[picked["always"]])
    t = asyncio.run(runner.run_episode(env, OraclePolicy(), picked["always"], 0))
    fail = t.model_copy(
        update={"id": "x/1/oracle", "reward": 0.2, "rubric": t.rubric.model_copy(update={"passed": False})}
    )
    r = rates_from_trajectories([t, fail, t])[picked["always"]]  # t twice: one episode
    assert (r.k, r.passes, r.rate, r.mean_score) == (2, 1, 0.5, pytest.approx(0.6))
    with pytest.raises(ValueError, match="several policies"):
        rates_from_trajectories([t, fail.model_copy(update={"policy": "other"})])
    with pytest.raises(ValueError, match="at least 1"):
        asyncio.run(pass_rates(starter, OraclePolicy, k=0))


def test_rerun_resumes_and_reruns_only_the_missing_episode(starter, solves, seed_aware, tmp_path):
    out = tmp_path / "rollouts.jsonl"
    played: list[str] = []
    first = _rate(starter, solves, out=out, on_done=lambda t: played.append(t.id))
    assert len(played) == 16 and len(out.read_text().splitlines()) == 16
    played.clear()
    assert _rate(starter, solves, out=out, on_done=lambda t: played.append(t.id)) == first
    assert played == []
    lines = out.read_text().splitlines(keepends=True)
    last = Trajectory.model_validate_json(lines[-1]).id
    out.write_text("".join(lines[:-1]))
    assert _rate(starter, solves, out=out, on_done=lambda t: played.append(t.id)) == first
    assert played == [last]
    out.write_text(out.read_text() + '{"id": "torn')  # a crash mid-write: repaired, nothing re-run
    assert _rate(starter, solves, out=out, on_done=lambda t: played.append(t.id)) == first
    assert played == [last] and len(out.read_text().splitlines()) == 16


def test_tag_keeps_all_drop_keeps_learnable(starter, picked, solves, seed_aware):
    rates = _rate(starter, solves)
    tagged = apply_filter(starter, rates, FilterConfig())
    assert [t.id for t in tagged.kept] == [t.id for t in starter if t.id in rates]
    for t in tagged.kept:
        assert t.tags == (*starter.tasks[t.id].tags, tagged.verdicts[t.id])
    again = apply_filter(
        TaskSuite(starter.name, starter.world, starter.agents, {t.id: t for t in tagged.kept}),
        rates,
        FilterConfig(min_rate=0.25, max_rate=0.5),
    )
    zero = next(t for t in again.kept if t.id == picked["zero"])
    assert zero.tags == (*starter.tasks[picked["zero"]].tags, "too_hard")  # re-tagged, not tagged twice
    dropped = apply_filter(starter, rates, FilterConfig(action="drop"))
    assert {t.id for t in dropped.kept} == {picked["even"], picked["zero"]}
    assert all(t == starter.tasks[t.id] for t in dropped.kept)  # untouched
    assert dropped.counts == tagged.counts == {"too_hard": 1, "learnable": 2, "too_easy": 1}


def test_written_suite_loads_with_the_kept_tasks(starter, picked, solves, seed_aware, tmp_path):
    rates = _rate(starter, solves)
    report = apply_filter(starter, rates, FilterConfig(action="drop"))
    path = write_filtered(report, "starter", tmp_path / "out", command="agentgym tasks filter ...")
    suite = load_suite_dir(path)
    assert suite.name == "starter-filtered"
    assert sorted(suite.tasks) == sorted([picked["even"], picked["zero"]])
    assert suite.tasks[picked["even"]] == starter.tasks[picked["even"]]
    assert suite.agents == starter.agents and set(suite.world.tools) == set(starter.world.tools)
    assert [r.task_id for r in read_jsonl(path / "pass_rates.jsonl", PassRate)] == list(
        t.id for t in starter if t.id in rates
    )
    md = (path / "FILTER.md").read_text()
    assert f"| {picked['zero']} | 1/4 | 0.25 |" in md and "| all | 1 | 2 | 1 | 4 |" in md
    assert "agentgym tasks filter ..." in md
    with pytest.raises(SuiteError, match="nothing to write"):
        write_filtered(
            apply_filter(starter, {picked["never"]: rates[picked["never"]]}, FilterConfig(action="drop")),
            "starter",
            tmp_path / "empty",
        )
    assert not (tmp_path / "empty").exists()


def test_world_entry_and_agents_file_are_copied_verbatim(starter, picked, solves, seed_aware, tmp_path):
    src = tmp_path / "src"
    (src / "tasks").mkdir(parents=True)
    shutil.copy(tasks_dir() / "starter" / "agents.yaml", src / "people.yaml")
    for f in (tasks_dir() / "starter" / "tasks").glob("*.yaml"):
        shutil.copy(f, src / "tasks" / f.name)
    world = str(tools_dir() / "starter")  # an absolute path this time, not a name
    (src / "suite.yaml").write_text(
        yaml.safe_dump(
            {"name": "starter", "world": world, "agents": "people.yaml", "tasks": ["tasks/*.yaml"]}
        )
    )
    report = apply_filter(starter, _rate(starter, solves), FilterConfig())
    path = write_filtered(report, src, tmp_path / "out", name="mine")
    meta = yaml.safe_load((path / "suite.yaml").read_text())
    assert meta == {"name": "mine", "world": world, "agents": "people.yaml", "tasks": ["tasks.jsonl"]}
    assert (path / "people.yaml").read_bytes() == (src / "people.yaml").read_bytes()
    assert len(load_suite_dir(path)) == 4
    (src / "suite.yaml").write_text(yaml.safe_dump({"name": "other", "world": world}))
    with pytest.raises(SuiteError, match="the report is of"):
        write_filtered(report, src, tmp_path / "out2")


def _filter(*args):
    return cli.invoke(app, ["tasks", "filter", "--sample", "3", "--k", "2", *args])


def test_cli_oracle_all_too_easy_and_resumes(tmp_path):
    res = _filter("--model", "oracle", "--out", str(tmp_path))
    assert res.exit_code == 0, res.output
    assert len((tmp_path / "rollouts.jsonl").read_text().splitlines()) == 6
    suite = load_suite_dir(tmp_path / "suite")
    assert len(suite) == 3 and all(t.tags[-1] == "too_easy" for t in suite)
    assert all(r.rate == 1.0 for r in read_jsonl(tmp_path / "suite" / "pass_rates.jsonl", PassRate))
    assert str(tmp_path / "suite") in res.output.replace("\n", "")
    res = _filter("--model", "oracle", "--out", str(tmp_path))
    assert res.exit_code == 0 and "resuming: 6 of 6 episodes" in res.output
    assert len((tmp_path / "rollouts.jsonl").read_text().splitlines()) == 6
    res = _filter("--model", "oracle", "--out", str(tmp_path), "--temperature", "0.5")
    assert res.exit_code == 2 and "other settings" in res.output


def test_cli_noop_all_too_hard_and_drop_keeps_nothing(tmp_path):
    res = _filter("--model", "noop", "--out", str(tmp_path / "tag"))
    assert res.exit_code == 0, res.output
    suite = load_suite_dir(tmp_path / "tag" / "suite")
    assert len(suite) == 3 and all(t.tags[-1] == "too_hard" for t in suite)
    res = _filter("--model", "noop", "--out", str(tmp_path / "drop"), "--action", "drop")
    assert res.exit_code == 1 and "nothing to write" in res.output
    assert not (tmp_path / "drop" / "suite").exists()


@pytest.mark.parametrize(
    "args, msg",
    [
        (["--suite", "nope"], "no suite"),
        (["--k", "0"], "at least 1"),
        (["--min-rate", "0.5", "--max-rate", "0.5"], "below max_rate"),
        (["--action", "keep"], "--action"),
    ],
)
def test_cli_bad_input_is_a_clear_error(args, msg, tmp_path):
    res = cli.invoke(app, ["tasks", "filter", "--model", "oracle", "--out", str(tmp_path), *args])
    assert res.exit_code == 2 and msg in res.output, res.output


@pytest.mark.slow
def test_cli_with_the_embedded_model(tmp_path):
    res = cli.invoke(
        app,
        [
            "tasks",
            "filter",
            "--model",
            "embedded",
            "--k",
            "2",
            "--sample",
            "2",
            "--max-turns",
            "2",
            "--max-new-tokens",
            "48",
            "--out",
            str(tmp_path),
        ],
    )
    assert res.exit_code == 0, res.output
    trajs = list(read_jsonl(tmp_path / "rollouts.jsonl", Trajectory))
    assert len(trajs) == 4 and all(t.turns and t.turns[0].token_ids for t in trajs)
    rates = list(read_jsonl(tmp_path / "suite" / "pass_rates.jsonl", PassRate))
    assert len(rates) == 2 and all(0.0 <= r.rate <= 1.0 and r.k == 2 for r in rates)
    assert len(load_suite_dir(tmp_path / "suite")) == 2
    assert (tmp_path / "suite" / "FILTER.md").exists()
