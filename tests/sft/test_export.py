"""SFT export: rejection sampling, de-duplication, the formats load with `datasets` and render with
the chat template, and DPO pairs come from a passing and a failing rollout of one task."""

from __future__ import annotations

import asyncio
import json

import pytest
from typer.testing import CliRunner

from agentgym.cli.main import app
from agentgym.env.tool_env import ToolUseEnv
from agentgym.policies.oracle import NoopPolicy, OraclePolicy
from agentgym.runner import run_episode
from agentgym.spec.jsonl import write_jsonl

TASKS = ("calendar-cancel-demo", "calendar-create-gym", "calendar-dentist-time")


@pytest.fixture(scope="module")
def trajectories(tmp_path_factory):
    env = ToolUseEnv("starter")
    out = []
    for tid in TASKS:
        out.append(asyncio.run(run_episode(env, OraclePolicy(), tid, 0)))
        out.append(asyncio.run(run_episode(env, OraclePolicy(), tid, 0)))  # an identical copy
        out.append(asyncio.run(run_episode(env, NoopPolicy(), tid, 0)))
    path = tmp_path_factory.mktemp("trajs") / "t.jsonl"
    write_jsonl(path, out)
    return path


def test_export_keeps_passing_unique_trajectories(trajectories, tmp_path):
    res = CliRunner().invoke(app, ["sft", "export", str(trajectories), "--out", str(tmp_path)])
    assert res.exit_code == 0, res.output
    summary = json.loads((tmp_path / "export.json").read_text())
    assert summary["read"] == 9 and summary["kept"] == 3
    assert summary["dropped"] == {"duplicate": 3, "below min_score": 3}
    rows = [json.loads(line) for line in (tmp_path / "sft.openai.jsonl").read_text().splitlines()]
    assert {r["metadata"]["task_id"] for r in rows} == set(TASKS)
    assert rows[0]["tools"][0]["type"] == "function" and rows[0]["messages"][0]["role"] == "system"
    dpo = [json.loads(line) for line in (tmp_path / "dpo.jsonl").read_text().splitlines()]
    assert len(dpo) == 3 and all(
        d["metadata"]["chosen_score"] == 1.0 > d["metadata"]["rejected_score"] for d in dpo
    )
    assert dpo[0]["prompt"][-1]["role"] == "user" and dpo[0]["chosen"][0]["role"] == "assistant"


def test_outputs_load_with_datasets_and_render_with_the_chat_template(trajectories, tmp_path):
    from datasets import load_dataset
    from transformers import AutoTokenizer

    from agentgym.models import embedded
    from agentgym.models.transformers_model import bundled_template

    assert (
        CliRunner().invoke(app, ["sft", "export", str(trajectories), "--out", str(tmp_path)]).exit_code == 0
    )
    chat = load_dataset("json", data_files=str(tmp_path / "sft.openai.jsonl"), split="train")
    parquet = load_dataset("parquet", data_files=str(tmp_path / "sft.parquet"), split="train")
    share = load_dataset("json", data_files=str(tmp_path / "sft.sharegpt.jsonl"), split="train")
    assert len(chat) == len(parquet) == len(share) == 3
    assert json.loads(parquet[0]["messages"]) == chat[0]["messages"]
    assert {c["from"] for c in share[0]["conversations"]} >= {"human", "gpt", "function_call", "observation"}
    tok = AutoTokenizer.from_pretrained(embedded.prepare(log=lambda *_: None))
    row = json.loads((tmp_path / "sft.openai.jsonl").read_text().splitlines()[0])
    for m in row["messages"]:
        for c in m.get("tool_calls") or ():
            c["function"]["arguments"] = json.loads(c["function"]["arguments"])  # templates take dicts
    text = tok.apply_chat_template(
        row["messages"], tools=row["tools"], chat_template=bundled_template(), tokenize=False
    )
    assert "<tool_call>" in text and "calendar__" in text and row["messages"][-1]["content"] in text


def test_bad_input_is_refused(tmp_path):
    res = CliRunner().invoke(app, ["sft", "export", str(tmp_path / "missing.jsonl")])
    assert res.exit_code == 2 and "no file" in res.output
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"not": "a trajectory"}\n')
    assert CliRunner().invoke(app, ["sft", "export", str(bad)]).exit_code == 2
    res = CliRunner().invoke(app, ["sft", "export", str(bad), "--formats", "csv"])
    assert res.exit_code == 2 and "unknown formats" in res.output
