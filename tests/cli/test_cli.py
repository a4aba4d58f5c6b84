"""The command line: every command listed, clear errors, resumable runs, the demo for real."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from agentgym.cli.main import app
from agentgym.spec import Trajectory, read_jsonl

runner = CliRunner()


def test_help_lists_every_command():
    out = runner.invoke(app, ["--help"]).output
    for cmd in ("demo", "run", "tasks", "tools", "model", "envs"):
        assert cmd in out
    sub = runner.invoke(app, ["tasks", "--help"]).output
    assert "validate" in sub and "list" in sub


def test_tasks_validate_exits_zero_on_the_starter_suite():
    res = runner.invoke(app, ["tasks", "validate"])
    assert res.exit_code == 0, res.output
    assert "tasks valid" in res.output


def test_run_oracle_writes_and_resumes(tmp_path):
    args = [
        "run",
        "--model",
        "oracle",
        "--tasks",
        "calendar-create-gym,calendar-maria-leaves",
        "--seeds",
        "2",
        "--out",
        str(tmp_path),
    ]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    trajs = list(read_jsonl(tmp_path / "trajectories.jsonl", Trajectory))
    assert len(trajs) == 4 and all(t.reward == 1.0 for t in trajs)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["episodes"] == 4 and summary["pass_rate"] == 1.0
    with open(tmp_path / "trajectories.jsonl", "a") as f:
        f.write('{"id": "torn li')  # a crash mid-write
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    lines = (tmp_path / "trajectories.jsonl").read_text().splitlines()
    assert len(lines) == 4  # nothing re-run, nothing duplicated, torn line dropped


@pytest.mark.parametrize(
    "args, msg",
    [
        (["run", "--suite", "nope"], "no suite"),
        (["run", "--model", "oracle", "--tasks", "nope"], "unknown task"),
        (["run", "--model", "oracle", "--faults", "{bad"], "--faults"),
        (["run", "--model", "not-a-model", "--tasks", "calendar-create-gym"], "unknown model"),
    ],
)
def test_bad_input_is_a_clear_error(args, msg, tmp_path):
    res = runner.invoke(app, [*args, "--out", str(tmp_path)])
    assert res.exit_code == 2 and msg in res.output


@pytest.mark.slow
def test_demo_runs_the_embedded_model(tmp_path):
    res = runner.invoke(
        app, ["demo", "--n", "2", "--max-turns", "1", "--max-new-tokens", "16", "--out", str(tmp_path)]
    )
    assert res.exit_code == 0, res.output
    trajs = list(read_jsonl(tmp_path / "trajectories.jsonl", Trajectory))
    assert len(trajs) == 2 and all(t.turns[0].token_ids for t in trajs)
    assert json.loads((tmp_path / "summary.json").read_text())["episodes"] == 2


def test_rollout_resumes_without_repeating(tmp_path):
    from typer.testing import CliRunner

    from agentgym.cli.main import app

    args = [
        "rollout",
        "--suite",
        "agentic",
        "--model",
        "oracle",
        "--n",
        "2",
        "--split",
        "test",
        "--sample",
        "5",
        "--out",
        str(tmp_path),
    ]
    first = CliRunner().invoke(app, args)
    assert first.exit_code == 0, first.output
    lines = (tmp_path / "trajectories.jsonl").read_text().splitlines()
    assert len(lines) == 10
    again = CliRunner().invoke(app, args)
    assert again.exit_code == 0 and (tmp_path / "trajectories.jsonl").read_text().splitlines() == lines
    assert CliRunner().invoke(app, [*args[:-2], "--split", "nope", "--out", str(tmp_path)]).exit_code == 2


def test_train_grpo_set_reaches_every_config_field_and_bad_ones_are_clear(tmp_path):
    from agentgym.cli.train_cmds import _assignments

    assert _assignments(["eps_high=0.28", "lora={r: 8}", "generator=local_int8", "split="]) == {
        "eps_high": 0.28,
        "lora": {"r": 8},
        "generator": "local_int8",
        "split": None,
    }
    out = str(tmp_path / "run")
    res = runner.invoke(app, ["train", "grpo", "--out", out, "--set", "no_such_field=1"])
    assert res.exit_code != 0 and "no_such_field" in res.output
    res = runner.invoke(
        app, ["train", "grpo", "--out", out, "--set", "generator=local_int8", "--set", "sync=none"]
    )
    assert res.exit_code != 0 and "sync: int8" in res.output
    res = runner.invoke(app, ["train", "grpo", "--out", out, "--set", "oops"])
    assert res.exit_code != 0 and "FIELD=VALUE" in res.output
