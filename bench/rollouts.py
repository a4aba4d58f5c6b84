"""Benchmark the rollout engine against a mock OpenAI-compatible server (issue 6).

    python bench/rollouts.py                       # 1,000 concurrent episodes, 50 ms per request
    python bench/rollouts.py --episodes 2000 --concurrency 1000 --latency-ms 50 --mcp 200

The mock (a separate process, starlette + uvicorn on 127.0.0.1) answers like the verifiers peer's
mock (`../shared/peers/mock_openai_server.py`): with no tool message yet, one call to the offered
weather tool for the city named in the request; then a final answer quoting the tool result —
after sleeping `--latency-ms` per request. The task is the same two-call weather task: a simulated
`weather__get_weather` tool, and a rubric that wants the call and the temperature in the reply.

Episodes run through `agentgym.runner.run_episodes` (one env per worker, `--concurrency` workers)
with `OpenAIChatModel` (native tool calls). `--kill-after S` also SIGKILLs a rollout process
after S seconds and runs it again: no finished episode may be lost or duplicated. The server-bound ideal is what the latency alone
allows: every episode needs two sequential requests, so `ceil(episodes / concurrency) * 2 *
latency` seconds. With `--mcp N`, N more episodes run with the weather tool served by a real MCP
server process started for each episode (stdio, the process sandbox): forked from a fork server
that imported the SDK once (`agentgym.mcp.prefork`, the default), or with `--no-mcp-prefork`
spawned as a fresh Python each time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

MOCK = r"""
import asyncio, json, re, sys, uuid
import uvicorn
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route
LAT = float(sys.argv[2]) / 1000
STATS = {"requests": 0}
async def chat(request):
    body = await request.json()
    STATS["requests"] += 1
    await asyncio.sleep(LAT)
    msgs = body.get("messages", [])
    tools = body.get("tools") or []
    done = [m for m in msgs if m.get("role") == "tool"]
    if done or not tools:
        msg = {"role": "assistant", "content": "<answer>" + (done[-1].get("content") if done else "") + "</answer>"}
        finish = "stop"
    else:
        name = next((t["function"]["name"] for t in tools if "weather" in t["function"]["name"]), tools[0]["function"]["name"])
        user = " ".join(m.get("content") or "" for m in msgs if m.get("role") == "user")
        m = re.search(r"\bin ([A-Z][A-Za-z]+)", user)
        call = {"id": "call_" + uuid.uuid4().hex[:12], "type": "function",
                "function": {"name": name, "arguments": json.dumps({"city": m.group(1) if m else "Paris"})}}
        msg, finish = {"role": "assistant", "content": None, "tool_calls": [call]}, "tool_calls"
    return JSONResponse({"id": "x", "object": "chat.completion", "model": body.get("model"),
                         "choices": [{"index": 0, "message": msg, "finish_reason": finish}],
                         "usage": {"prompt_tokens": 10, "completion_tokens": 5}})
async def health(request):
    return JSONResponse(STATS)
app = Starlette(routes=[Route("/v1/chat/completions", chat, methods=["POST"]), Route("/health", health)])
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", backlog=4096, limit_concurrency=100000)
"""

WEATHER_MCP = r'''
import sys
from mcp.server.mcpserver import MCPServer
TEMPS = {"Paris": 10, "Tokyo": 13, "Berlin": 16, "Lima": 19, "Cairo": 22, "Oslo": 25, "Delhi": 28, "Quito": 31}
app = MCPServer("weather")
@app.tool()
def get_weather(city: str) -> str:
    """Get the current weather for a city."""
    return f"{city}: {TEMPS.get(city, 0)} C, clear"
app.run()
'''

CITIES = {
    "Paris": 10,
    "Tokyo": 13,
    "Berlin": 16,
    "Lima": 19,
    "Cairo": 22,
    "Oslo": 25,
    "Delhi": 28,
    "Quito": 31,
}


def weather_world(temps: dict[str, int], city_doc: str | None = None):
    """A world with one simulated tool, weather__get_weather, that knows `temps` ("<t> C, clear")."""
    from agentgym.world.domain import World, domain_from_dict

    city: dict = {"type": "string"} | ({"description": city_doc} if city_doc else {})
    domain = domain_from_dict(
        {
            "name": "weather",
            "category": "Weather",
            "entities": [
                {
                    "collection": "weather.cities",
                    "id_prefix": "city",
                    "record_schema": {
                        "type": "object",
                        "required": ["id", "forecast"],
                        "properties": {"id": {"type": "string"}, "forecast": {"type": "string"}},
                    },
                }
            ],
            "tools": [
                {
                    "name": "get_weather",
                    "description": "Get the current weather for a city.",
                    "input_schema": {"type": "object", "required": ["city"], "properties": {"city": city}},
                    "semantics": {"operation": "get", "collection": "weather.cities", "id_arg": "city"},
                }
            ],
            "seed": {"weather.cities": [{"id": c, "forecast": f"{t} C, clear"} for c, t in temps.items()]},
        }
    )
    return World([domain])


def weather_suite():
    from agentgym.spec.agent import AgentSpec
    from agentgym.spec.task import TaskSpec
    from agentgym.suites.suite import TaskSuite

    world = weather_world(CITIES)
    agent = AgentSpec(
        id="wx",
        name="Weather",
        system_prompt="You answer weather questions.",
        tools=("weather__get_weather",),
    )
    tasks = {}
    for city, temp in CITIES.items():
        tid = f"weather-{city.lower()}"
        tasks[tid] = TaskSpec.model_validate(
            {
                "id": tid,
                "agent_id": "wx",
                "instruction": f"What is the weather in {city} right now?",
                "initial_state": world.seed.model_dump(),
                "gold": [
                    {"calls": [{"tool": "weather__get_weather", "arguments": {"city": city}}]},
                    {"answer": f"{city}: {temp} C, clear"},
                ],
                "rubric": {
                    "criteria": [
                        {
                            "id": "called",
                            "kind": "call",
                            "tool": "weather__get_weather",
                            "args": {"city": city},
                            "succeeded": None,
                        },
                        {"id": "temp", "kind": "answer", "facts": [f"{temp} C"]},
                    ]
                },
            }
        )
    return TaskSuite("weather", world, {"wx": agent}, tasks)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_mock(latency_ms: float) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-c", MOCK, str(port), str(latency_ms)])
    url = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            httpx.get(f"{url}/health", timeout=0.5)
            return proc, url
        except httpx.HTTPError:
            time.sleep(0.05)
    raise RuntimeError("the mock server did not start")


def run(suite, url: str, episodes: int, concurrency: int, backends=None, out: Path | None = None) -> dict:
    from agentgym.env.tool_env import ToolUseEnv
    from agentgym.models.openai_compat import OpenAIChatModel
    from agentgym.policies import ModelPolicy
    from agentgym.runner import run_episodes

    model = OpenAIChatModel(f"{url}/v1", "mock", max_concurrency=concurrency)
    ids = sorted(suite.tasks)
    jobs = [(ids[i % len(ids)], i) for i in range(episodes)]
    out = out or Path(tempfile.mkdtemp()) / "trajectories.jsonl"
    t0 = time.perf_counter()
    trajs = asyncio.run(
        run_episodes(
            lambda: ToolUseEnv(suite, backends=backends() if backends else None),
            lambda: ModelPolicy(model),
            jobs,
            out=out,
            concurrency=concurrency,
        )
    )
    wall = time.perf_counter() - t0
    lines = out.read_text().splitlines()
    return {
        "episodes": len(trajs),
        "concurrency": concurrency,
        "wall_s": round(wall, 2),
        "episodes_per_s": round(len(trajs) / wall, 1),
        "passed": sum(1 for t in trajs if t.rubric and t.rubric.passed),
        "saved_lines": len(lines),
        "requests": model.requests,
        "retries": model.retries,
    }


def mcp_backends(script: Path, prefork: bool = True):
    from agentgym.backends.defaults import default_backends
    from agentgym.mcp.backend import MCPBackend, MCPServerConfig

    cfg = MCPServerConfig(spec=f"{sys.executable} {script}", container=False, prefork=prefork)

    def make():
        backends = default_backends(weather_suite().world)
        backends.insert(0, MCPBackend({"weather": cfg}))
        return backends

    return make


def kill_and_resume(url: str, episodes: int, concurrency: int, after_s: float) -> dict:
    """SIGKILL a rollout process midway, run it again: nothing finished is lost or done twice."""
    import signal

    out = Path(tempfile.mkdtemp()) / "trajectories.jsonl"
    here = str(Path(__file__).parent)
    code = (
        f"import sys; sys.path.insert(0, {here!r}); import rollouts; "
        f"rollouts.run(rollouts.weather_suite(), {url!r}, {episodes}, {concurrency}, out=__import__('pathlib').Path({str(out)!r}))"
    )
    child = subprocess.Popen([sys.executable, "-c", code])
    time.sleep(after_s)
    child.send_signal(signal.SIGKILL)
    child.wait()
    before = out.read_bytes().splitlines() if out.exists() else []
    finished_before = [ln for ln in before if ln.endswith(b"}")]
    subprocess.run([sys.executable, "-c", code], check=True)
    after = out.read_bytes().splitlines()
    ids = [json.loads(ln)["id"] for ln in after]
    return {
        "episodes": episodes,
        "killed_after_s": after_s,
        "finished_before_kill": len(finished_before),
        "after_resume": len(after),
        "unique_ids": len(set(ids)),
        "lost": len({json.loads(ln)["id"] for ln in finished_before} - set(ids)),
        "duplicated": len(ids) - len(set(ids)),
        "kept_in_place": after[: len(finished_before)] == finished_before,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--episodes", type=int, default=1000)
    ap.add_argument("--concurrency", type=int, default=1000)
    ap.add_argument("--latency-ms", type=float, default=50.0)
    ap.add_argument(
        "--mcp", type=int, default=100, help="episodes with a real MCP server process each (0: skip)"
    )
    ap.add_argument("--mcp-concurrency", type=int, default=16)
    ap.add_argument(
        "--mcp-prefork",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="fork each episode's MCP server from a fork server that imported the SDK once "
        "(agentgym.mcp.prefork); --no-mcp-prefork spawns a fresh Python per episode",
    )
    ap.add_argument(
        "--sweep",
        default="",
        help="also run the simulated-tool rollout at these concurrencies (comma-separated) and report "
        "each one's share of the server-bound ideal",
    )
    ap.add_argument(
        "--kill-after",
        type=float,
        default=0.0,
        help="also SIGKILL a run after this many seconds and resume it",
    )
    args = ap.parse_args()
    suite = weather_suite()
    proc, url = start_mock(args.latency_ms)
    try:
        sim = run(suite, url, args.episodes, args.concurrency)
        ideal = math.ceil(args.episodes / args.concurrency) * 2 * args.latency_ms / 1000
        sim["ideal_wall_s"] = round(ideal, 3)
        sim["of_ideal"] = round(ideal / sim["wall_s"], 3)
        out = {"simulated_tools": sim}
        if args.sweep:
            out["sweep"] = []
            for c in [int(x) for x in args.sweep.split(",") if x]:
                r = run(suite, url, args.episodes, c)
                ideal_c = math.ceil(args.episodes / c) * 2 * args.latency_ms / 1000
                r["ideal_wall_s"] = round(ideal_c, 3)
                r["of_ideal"] = round(ideal_c / r["wall_s"], 3)
                out["sweep"].append(r)
        if args.mcp:
            with tempfile.TemporaryDirectory() as tmp:
                script = Path(tmp) / "weather_mcp.py"
                script.write_text(WEATHER_MCP)
                out["mcp_server_per_episode"] = {
                    "prefork": args.mcp_prefork,
                    **run(suite, url, args.mcp, args.mcp_concurrency, mcp_backends(script, args.mcp_prefork)),
                }
        if args.kill_after:
            out["kill_and_resume"] = kill_and_resume(url, args.episodes, args.concurrency, args.kill_after)
        out["mock_requests"] = httpx.get(f"{url}/health").json()["requests"]
        peers = {
            "verifiers_0.4.0_shared_tool_server_eps": 0.697,
            "verifiers_0.4.0_tool_server_per_episode_eps": 0.283,
        }
        out["vs_verifiers (recorded, ../shared/peers/README.md)"] = {
            "simulated_vs_shared": round(
                sim["episodes_per_s"] / peers["verifiers_0.4.0_shared_tool_server_eps"], 1
            ),
            **(
                {
                    "mcp_vs_per_episode": round(
                        out["mcp_server_per_episode"]["episodes_per_s"]
                        / peers["verifiers_0.4.0_tool_server_per_episode_eps"],
                        1,
                    )
                }
                if args.mcp
                else {}
            ),
        }
        print(json.dumps(out, indent=2))
    finally:
        proc.terminate()
        proc.wait(10)


if __name__ == "__main__":
    main()
