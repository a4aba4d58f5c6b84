"""verifiers adapter: one short real vf-eval run (verifiers 0.4.0, its own venv) against a local
OpenAI-compatible server that plays gold paths; tools served by AgentgymToolset over MCP."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
VENV = Path(os.environ.get("AGENTGYM_PEERS_VENV", "/tmp/agentgym-peers"))
GOLD, WRONG = "calendar-cancel-demo", "calendar-dentist-time"

SHIM = 'from agentgym.adapters.verifiers import AgentgymTaskset\n__all__ = ["AgentgymTaskset"]\n'

REPLAY_CHECK = """
import json, sys
from pydantic import TypeAdapter
from verifiers.v1.types import Messages
from agentgym.adapters.verifiers import AgentgymTaskData, ReplayMismatch, replay
trace = json.loads(sys.argv[1])
data = AgentgymTaskData.model_validate(trace["task"]["data"])
nodes = [n["message"] for n in trace["nodes"]]
same = replay(data, TypeAdapter(Messages).validate_python(nodes)).score
tool = next(m for m in nodes if m["role"] == "tool")
tool["content"] = tool["content"].replace("evt_", "evt_X") if isinstance(tool["content"], str) else "tampered"
try:
    replay(data, TypeAdapter(Messages).validate_python(nodes))
    print(json.dumps({"same": same, "mismatch": False}))
except ReplayMismatch:
    print(json.dumps({"same": same, "mismatch": True}))
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _venv_env(tmp_path: Path) -> dict[str, str]:
    if not (VENV / "bin" / "vf-eval").exists():
        pytest.fail(f"no verifiers venv at {VENV}: ./install.sh creates it (or set AGENTGYM_PEERS_VENV)")
    env = dict(os.environ)
    env["PATH"] = f"{VENV / 'bin'}:{env['PATH']}"  # verifiers runs `uv` for its chat harness
    env["PYTHONPATH"] = f"{tmp_path}:{ROOT}"
    env["MOCK_KEY"] = "x"
    return env


@pytest.mark.slow
def test_vf_eval_scores_with_the_agentgym_rubric(tmp_path):
    port = _free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            str(Path(__file__).with_name("gold_openai_server.py")),
            "--suite",
            "starter",
            "--port",
            str(port),
            "--wrong",
            WRONG,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        for _ in range(300):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=1)
                break
            except OSError:
                assert server.poll() is None, server.stderr.read().decode()[-2000:]
                time.sleep(0.1)
        (tmp_path / "agentgym_tasks.py").write_text(SHIM)
        env = _venv_env(tmp_path)
        t0 = time.perf_counter()
        run = subprocess.run(
            [
                *(str(VENV / "bin" / "vf-eval"), "agentgym_tasks", "--env.taskset.suite", "starter"),
                *("--env.taskset.task-ids", json.dumps([GOLD, WRONG])),
                *("--env.agent.harness.id", "null", "--env.agent.runtime.type", "subprocess", "-m", "gold"),
                *("--client.base-url", f"http://127.0.0.1:{port}/v1", "--client.api-key-var", "MOCK_KEY"),
                *(
                    "-n",
                    "2",
                    "-c",
                    "2",
                    "--no-rich",
                    "--no-push",
                    "-o",
                    str(tmp_path / "runs"),
                    "--run.dir",
                    "r",
                ),
            ],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        wall = time.perf_counter() - t0
    finally:
        server.terminate()
        server.wait(timeout=10)
    assert run.returncode == 0, (run.stdout + run.stderr)[-4000:]
    episodes = [json.loads(line) for line in (tmp_path / "runs" / "r" / "traces.jsonl").open()]
    traces = {e["traces"][0]["task"]["data"]["task_id"]: e["traces"][0] for e in episodes}
    assert set(traces) == {GOLD, WRONG}, f"episodes: {list(traces)} ({wall:.0f}s)"
    for tid, tr in traces.items():
        assert tr["ok"] and tr["is_completed"] and not tr["errors"], (tid, tr["errors"])
        rubric = tr["info"]["agentgym"]
        assert tr["rewards"]["agentgym_rubric"]["score"] == rubric["score"]
        assert rubric["criteria"], tid
    gold, wrong = traces[GOLD], traces[WRONG]
    assert gold["info"]["agentgym"]["passed"] and gold["rewards"]["agentgym_rubric"]["score"] == 1.0
    assert not wrong["info"]["agentgym"]["passed"] and wrong["rewards"]["agentgym_rubric"]["score"] < 1.0
    # the gold path's tool results came from the tool server's simulated world
    tool_msgs = [n["message"] for n in gold["nodes"] if n["message"]["role"] == "tool"]
    assert len(tool_msgs) == 2 and "evt_" in tool_msgs[0]["content"]
    assert "cancelled" in tool_msgs[1]["content"]

    # replay is exact on the real trace and refuses a trace whose tool result was altered
    check = subprocess.run(
        [str(VENV / "bin" / "python"), "-c", REPLAY_CHECK, json.dumps(gold)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert check.returncode == 0, check.stderr[-3000:]
    assert json.loads(check.stdout.strip().splitlines()[-1]) == {"same": 1.0, "mismatch": True}
