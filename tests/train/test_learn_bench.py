"""`bench/learn.py` and `bench/learn_calls.py` run end to end at smoke size: the embedded model,
the oracle's conversations, a real GRPO step, the greedy evaluations, the plot, the diagnosis."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"


@pytest.mark.slow
def test_learn_writes_every_stage_and_the_diagnosis_reads_it(tmp_path):
    out = tmp_path / "learn"
    run = [sys.executable, str(BENCH / "learn.py"), "--out", str(out), "--threads", "2"]
    smoke = ["--minutes", "4", "--margin-s", "0", "--test-limit", "3", "--sft-examples", "4"]
    subprocess.run([*run, *smoke, "--max-new-tokens", "24", "--max-turns", "2"], check=True, timeout=600)
    result = json.loads((out / "learn.json").read_text())
    assert set(result["eval"]) == {"base", "sft", "grpo"}
    assert all(result["eval"][s]["all"]["tasks"] == 3 for s in result["eval"])
    assert result["sft"]["examples"] == 4 and result["grpo"]["steps"] >= 1
    assert (out / "learn.png").stat().st_size > 10_000
    lines = [json.loads(x) for x in (out / "grpo" / "metrics.jsonl").read_text().splitlines()]
    assert len(lines) == result["grpo"]["steps"]

    shown = subprocess.run(
        [sys.executable, str(BENCH / "learn_calls.py"), str(out), "--stage", "grpo"],
        check=True,
        capture_output=True,
        text=True,
        timeout=300,
    ).stdout.splitlines()
    episodes = [x for x in shown if " pass=" in x]
    assert len(episodes) == 37  # every test task of the compact suite, not only the smoke run's three
    tallies = [x for x in shown if " pass=" not in x]
    assert sum(int(x.split()[0]) for x in tallies) == len(episodes)  # the patterns count each episode once
