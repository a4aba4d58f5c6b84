"""Sandbox tools as a ToolBackend: real execution, typed errors, fresh workspace per episode,
hidden tests as the reward, and an agent holding simulated and sandbox tools together."""

from __future__ import annotations

import asyncio
import json

import pytest

from agentgym.env.tool_env import ToolUseEnv, decode_observation
from agentgym.paths import tools_dir
from agentgym.policies.oracle import OraclePolicy
from agentgym.runner import run_episode
from agentgym.spec.agent import AgentSpec
from agentgym.spec.task import TaskSpec
from agentgym.suites.suite import TaskSuite
from agentgym.suites.validate import check_task
from agentgym.world.domain import World, load_domain_file

pytestmark = pytest.mark.usefixtures("image", "no_leftovers")

TESTS = {
    "test_hidden.py": (
        "import unittest\nfrom solution import add\n"
        "class T(unittest.TestCase):\n"
        "    def test_ints(self): self.assertEqual(add(1, 2), 3)\n"
        "    def test_zero(self): self.assertEqual(add(-1, 1), 0)\n"
        "    def test_strings(self): self.assertEqual(add('a', 'b'), 'ab')\n"
    )
}


def call(tool, **args):
    return {"calls": [{"tool": tool, "arguments": args}]}


@pytest.fixture(scope="module")
def suite():
    world = World(
        [
            load_domain_file(tools_dir() / "starter" / "calendar.yaml"),
            load_domain_file(tools_dir() / "sandbox" / "sandbox.yaml"),
        ]
    )
    sandbox_tools = tuple(t for t in world.tools if t.startswith("sandbox__"))
    agent = AgentSpec(
        id="mixed", name="m", system_prompt="p", tools=("calendar__search_events", *sandbox_tools)
    )
    seed = world.seed.model_dump()
    seed["collections"]["sandbox.files"] = [
        {"id": "solution.py", "content": "def add(a, b):\n    raise NotImplementedError\n"}
    ]
    good = "def add(a, b):\n    return a + b\n"
    partial = "def add(a, b):\n    return a + b if isinstance(a, int) else None\n"
    tasks = {
        "code": {"gold": [call("sandbox__write_file", path="solution.py", content=good), {"answer": "done"}]},
        "partial": {
            "gold": [call("sandbox__write_file", path="solution.py", content=partial), {"answer": "done"}]
        },
        "mixed": {
            "gold": [
                call("calendar__search_events", query="dentist"),
                call("sandbox__run_python", code="print('07:30')"),
                call("sandbox__write_file", path="solution.py", content=good),
                {"answer": "done"},
            ]
        },
    }
    specs = {}
    for tid, t in tasks.items():
        criteria = [{"id": "hidden", "kind": "tests", "files": TESTS}]
        if tid == "mixed":
            criteria.append({"id": "looked-up", "kind": "call", "tool": "calendar__search_events"})
        specs[tid] = TaskSpec.model_validate(
            {
                "id": tid,
                "agent_id": "mixed",
                "instruction": "x",
                "initial_state": seed,
                "rubric": {"criteria": criteria},
                **t,
            }
        )
    return TaskSuite("sb", world, {"mixed": agent}, specs)


def test_hidden_tests_are_the_reward(suite):
    env = ToolUseEnv(suite)
    chk = check_task(env, "code")
    assert chk.ok and chk.oracle == 1.0 and chk.noop == 0.0
    partial = asyncio.run(run_episode(env, OraclePolicy(), "partial", 0))
    assert partial.reward == pytest.approx(2 / 3)
    assert "2/3 tests passed" in partial.rubric.criteria[0].detail


def test_an_agent_mixes_simulated_and_sandbox_tools(suite):
    env = ToolUseEnv(suite)
    traj = asyncio.run(run_episode(env, OraclePolicy(), "mixed", 0))
    assert traj.reward == 1.0
    results = [json.loads(m.content) for m in traj.messages if m.role == "tool"]
    assert results[0]["items"][0]["title"].lower().startswith("dentist")  # the simulator answered
    assert results[1]["stdout"] == "07:30\n"  # the sandbox ran real code


def _step(env, tool, **args):
    obs, *_ = env.step(
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {"id": "c", "type": "function", "function": {"name": tool, "arguments": json.dumps(args)}}
            ],
        }
    )
    return json.loads(decode_observation(obs)[0]["content"])


def test_tools_and_their_errors(suite):
    env = ToolUseEnv(suite)
    env.reset(options={"task_id": "code"})
    assert _step(env, "sandbox__list_files") == {"files": ["solution.py"]}
    assert "NotImplementedError" in _step(env, "sandbox__read_file", path="solution.py")["content"]
    assert _step(
        env,
        "sandbox__write_file",
        path="test_x.py",
        content="import unittest\nclass T(unittest.TestCase):\n    def test_ok(self): pass\n",
    )["ok"]
    assert _step(env, "sandbox__run_tests", pattern="test_*.py")["passed"] == 1
    assert _step(env, "sandbox__run_shell", command="echo $((6*7)); exit 4") == {
        "exit_code": 4,
        "stdout": "42\n",
        "stderr": "",
    }
    assert _step(env, "sandbox__read_file", path="../etc/passwd")["error"] == "invalid_arguments"
    assert _step(env, "sandbox__read_file", path="missing.txt")["error"] == "not_found"
    slow = _step(env, "sandbox__run_python", code="while True: pass", timeout_s=1)
    assert "timed out" in slow["error"]
    env.step("done")
    assert env.done


def test_each_episode_gets_a_fresh_workspace(suite):
    env = ToolUseEnv(suite)
    env.reset(options={"task_id": "code"})
    _step(env, "sandbox__write_file", path="left_behind.txt", content="x")
    env.step("done")
    env.reset(options={"task_id": "code"})
    assert _step(env, "sandbox__list_files") == {"files": ["solution.py"]}
    env.step("done")


def test_network_is_opt_in_per_task(suite, docker):
    """Only a task tagged `sandbox-network` gets a network; no traffic is sent here."""
    from agentgym.sandbox.backend import NETWORK_TAG

    base = suite.tasks["code"]
    tagged = base.model_copy(update={"id": "net", "tags": (NETWORK_TAG,)})
    net_suite = TaskSuite("net", suite.world, suite.agents, {"code": base, "net": tagged})
    env = ToolUseEnv(net_suite)
    modes = {}
    for tid in ("code", "net"):
        env.reset(options={"task_id": tid})
        sb = env._episode.extras["sandbox"]
        modes[tid] = docker.api.inspect_container(sb.id)["HostConfig"]["NetworkMode"]
        env.step("done")
    assert modes == {"code": "none", "net": "host"}
