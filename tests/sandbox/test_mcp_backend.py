"""Real MCP servers as episode backends: fresh session per episode, a server inside a container,
failures as observations, and one agent mixing simulated, sandbox and MCP tools."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import pytest

from agentgym.backends.base import Episode
from agentgym.backends.defaults import default_backends
from agentgym.env.tool_env import ToolUseEnv
from agentgym.mcp.backend import MCPBackend, MCPServerConfig
from agentgym.paths import tools_dir
from agentgym.policies.oracle import OraclePolicy
from agentgym.repository.store import ToolRepository
from agentgym.runner import run_episode
from agentgym.spec.agent import AgentSpec
from agentgym.spec.task import TaskSpec
from agentgym.spec.tool import Provenance, Taxonomy, ToolSpec
from agentgym.spec.world import WorldSnapshot
from agentgym.suites.suite import TaskSuite
from agentgym.world.domain import World, load_domain_file
from agentgym.world.state import WorldState

pytestmark = [pytest.mark.usefixtures("image", "no_leftovers"), pytest.mark.network]

MEMORY = "modelcontextprotocol_server-memory"
MEMORY_SPEC = MCPServerConfig(
    spec="npm:@modelcontextprotocol/server-memory@2026.8.31", env={"MEMORY_FILE_PATH": "/work/memory.json"}
)
TOY = Path(__file__).parents[1] / "mcp" / "servers" / "toy_server.py"


@pytest.fixture(scope="module")
def live():
    return ToolRepository.load(sources=["live"]).domain(MEMORY)


def _memory_tools(live):
    return {t.provenance.original_name: t for t in live.tools}


def test_state_persists_within_an_episode_not_across(live, docker):
    tools = _memory_tools(live)
    backend = MCPBackend({MEMORY: MEMORY_SPEC})

    async def episode(create: bool):
        ep = Episode.new(WorldState.from_snapshot(WorldSnapshot()), 0)
        await backend.start_episode(ep)
        try:
            if create:
                made = await backend.call(
                    tools["create_entities"],
                    {"entities": [{"name": "Ada", "entityType": "person", "observations": ["likes tea"]}]},
                    ep,
                )
                assert made.ok, made.content
            graph = await backend.call(tools["read_graph"], {}, ep)
            assert graph.ok
            assert docker.api.containers(filters={"name": "agentgym-mcp-"}), (
                "the server runs inside a container"
            )
            return json.loads(graph.content)
        finally:
            await backend.end_episode(ep)

    first = asyncio.run(episode(create=True))
    assert [e["name"] for e in first["entities"]] == ["Ada"]
    second = asyncio.run(episode(create=False))
    assert second["entities"] == []  # a fresh server per episode: nothing leaked
    assert not docker.api.containers(all=True, filters={"name": "agentgym-mcp-"})


def _toy(name: str) -> ToolSpec:
    return ToolSpec(
        name=f"toy__{name}",
        description=name,
        input_schema={"type": "object", "properties": {"seconds": {"type": "number"}}},
        provenance=Provenance(source="live", server="toy", original_name=name),
        taxonomy=Taxonomy(category="Others", domain="toy"),
    )


def test_crash_and_timeout_are_observations_then_it_recovers():
    backend = MCPBackend(
        {"toy": MCPServerConfig(spec=f"{sys.executable} {TOY}", container=False, timeout_s=3)}
    )

    async def go():
        ep = Episode.new(WorldState.from_snapshot(WorldSnapshot()), 0)
        await backend.start_episode(ep)
        try:
            ok = await backend.call(_toy("list_notes"), {}, ep)
            crashed = await backend.call(_toy("crash"), {}, ep)
            after = await backend.call(_toy("list_notes"), {}, ep)
            slow = await backend.call(_toy("sleep"), {"seconds": 30}, ep)
            return ok, crashed, after, slow
        finally:
            await backend.end_episode(ep)

    ok, crashed, after, slow = asyncio.run(asyncio.wait_for(go(), 90))
    assert ok.ok
    assert crashed.error == "backend_error" and "crashed" in crashed.content
    assert after.ok and "a new one was started" in after.content
    assert slow.error == "timeout"


def test_one_agent_mixes_simulated_sandbox_and_mcp_tools(live):
    world = World([
        load_domain_file(tools_dir() / "starter" / "calendar.yaml"),
        load_domain_file(tools_dir() / "sandbox" / "sandbox.yaml"),
        live,
    ])  # fmt: skip
    tools = (
        "calendar__search_events",
        "sandbox__run_python",
        f"{MEMORY}__create_entities",
        f"{MEMORY}__read_graph",
    )
    agent = AgentSpec(id="mix", name="m", system_prompt="p", tools=tools)
    gold = [
        {"calls": [{"tool": "calendar__search_events", "arguments": {"query": "dentist"}}]},
        {"calls": [{"tool": "sandbox__run_python", "arguments": {"code": "print(7 * 6)"}}]},
        {
            "calls": [
                {
                    "tool": f"{MEMORY}__create_entities",
                    "arguments": {
                        "entities": [
                            {"name": "Dentist", "entityType": "appointment", "observations": ["07:30"]}
                        ]
                    },
                }
            ]
        },
        {"calls": [{"tool": f"{MEMORY}__read_graph", "arguments": {}}]},
        {"answer": "done"},
    ]
    rubric = {"criteria": [
        {"id": "cal", "kind": "call", "tool": "calendar__search_events"},
        {"id": "code", "kind": "call", "tool": "sandbox__run_python"},
        {"id": "mem", "kind": "call", "tool": f"{MEMORY}__read_graph"},
    ]}  # fmt: skip
    task = TaskSpec.model_validate(
        {
            "id": "mix",
            "agent_id": "mix",
            "instruction": "x",
            "initial_state": world.seed.model_dump(),
            "rubric": rubric,
            "gold": gold,
        }
    )
    suite = TaskSuite("mix", world, {"mix": agent}, {"mix": task})
    backends = default_backends(world)
    # first: the real server takes its tools even where the simulator could run an inferred model of them
    backends.insert(0, MCPBackend({MEMORY: MEMORY_SPEC}))
    env = ToolUseEnv(suite, backends=backends)
    traj = asyncio.run(run_episode(env, OraclePolicy(), "mix", 0))
    assert traj.reward == 1.0, traj.rubric
    outs = [m.content for m in traj.messages if m.role == "tool"]
    assert "Dentist" in outs[0] and json.loads(outs[1])["stdout"] == "42\n" and '"Dentist"' in outs[3]
    assert {o.tool: o.ok for t in traj.turns for o in t.calls} == dict.fromkeys(tools, True)


def test_streamable_http_server_as_a_backend():
    """A server reached over streamable HTTP on 127.0.0.1: calls, a tool error, a fresh session per episode."""
    import subprocess

    sys.path.insert(0, str(TOY.parents[1]))
    from local_servers import free_port, wait_for_port

    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, str(TOY), "--http", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        wait_for_port(port, proc)
        backend = MCPBackend({"toy": MCPServerConfig(spec=f"http://127.0.0.1:{port}/mcp", timeout_s=10)})

        async def episode():
            ep = Episode.new(WorldState.from_snapshot(WorldSnapshot()), 0)
            await backend.start_episode(ep)
            try:
                made = await backend.call(_toy("create_note"), {"title": "hello"}, ep)
                listed = await backend.call(_toy("list_notes"), {}, ep)
                missing = await backend.call(_toy("no_such_tool"), {}, ep)
                return made, listed, missing, ep.extras["mcp"]["toy"]
            finally:
                await backend.end_episode(ep)

        made, listed, missing, first = asyncio.run(episode())
        assert made.ok and listed.ok and "hello" in listed.content
        assert missing.error in ("tool_error", "backend_error")
        *_, second = asyncio.run(episode())
        assert first is not second  # each episode opened its own session
    finally:
        proc.kill()
        proc.wait()
