"""The env server: episodes over HTTP, so RL code in another process or language can drive them.

`app(suite, max_sessions, idle_s)` (starlette; `agentgym serve env` runs it with uvicorn):

    POST /reset  {"task_id"?, "task_index"?, "seed"?, "faults"?}   → {"session_id", "observation", "info"}
    POST /step   {"session_id", "action"}                          → {"observation", "reward", "terminated", "truncated", "info"}
    POST /close  {"session_id"}                                    → {"closed": true}
    GET  /trajectory?session_id=…                                  → the episode as a Trajectory (JSON)
    GET  /health                                                   → {"sessions", "max_sessions", "suite"}

A session is one `ToolUseEnv` (reset again to play another episode in it). `action` is what
`ToolUseEnv.step` takes: the raw assistant text, or an OpenAI message dict. At most
`max_sessions` live at once — one more is a 429 — and a session idle for `idle_s` is closed.
Errors are JSON `{"error": ...}` with a status: 400 bad request (unknown task, malformed body),
404 unknown session, 409 a step after the episode ended.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from agentgym.env.tool_env import EnvConfig, ResetNeeded, ToolUseEnv, decode_observation
from agentgym.suites.suite import TaskSuite


def _err(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def app(
    suite: TaskSuite, *, max_sessions: int = 256, idle_s: float = 600.0, config: EnvConfig | None = None
) -> Starlette:
    sessions: dict[str, tuple[ToolUseEnv, float]] = {}
    lock = asyncio.Lock()

    def reap_idle() -> None:
        now = time.monotonic()
        for sid, (env, seen) in list(sessions.items()):
            if now - seen > idle_s:
                env.close()
                sessions.pop(sid, None)

    async def body(request: Request) -> dict[str, Any]:
        try:
            data = await request.json()
        except ValueError:
            raise ValueError("the body is not JSON") from None
        if not isinstance(data, dict):
            raise ValueError("the body must be a JSON object")
        return data

    async def reset(request: Request) -> JSONResponse:
        try:
            data = await body(request)
        except ValueError as e:
            return _err(400, str(e))
        async with lock:
            reap_idle()
            sid = data.get("session_id")
            if sid is not None and sid not in sessions:
                return _err(404, f"no session {sid!r}")
            if sid is None:
                if len(sessions) >= max_sessions:
                    return _err(429, f"{max_sessions} sessions are open (the limit); close one first")
                sid = uuid.uuid4().hex
                sessions[sid] = (ToolUseEnv(suite, config=config), time.monotonic())
        env = sessions[sid][0]
        options = {k: data[k] for k in ("task_id", "task_index", "faults") if k in data}
        try:
            obs, info = await env.areset(seed=data.get("seed"), options=options or None)
        except (KeyError, ValueError) as e:
            return _err(400, str(e).strip('"'))
        sessions[sid] = (env, time.monotonic())
        return JSONResponse({"session_id": sid, "observation": decode_observation(obs), "info": info})

    async def step(request: Request) -> JSONResponse:
        try:
            data = await body(request)
        except ValueError as e:
            return _err(400, str(e))
        sid = data.get("session_id")
        if sid not in sessions:
            return _err(404, f"no session {sid!r}")
        if "action" not in data:
            return _err(400, "a step needs an action")
        env = sessions[sid][0]
        try:
            obs, reward, terminated, truncated, info = await env.astep(data["action"])
        except ResetNeeded as e:
            return _err(409, str(e))
        sessions[sid] = (env, time.monotonic())
        return JSONResponse(
            {
                "observation": decode_observation(obs),
                "reward": reward,
                "terminated": terminated,
                "truncated": truncated,
                "info": info,
            }
        )

    async def close(request: Request) -> JSONResponse:
        try:
            data = await body(request)
        except ValueError as e:
            return _err(400, str(e))
        entry = sessions.pop(data.get("session_id"), None)
        if entry is None:
            return _err(404, f"no session {data.get('session_id')!r}")
        entry[0].close()
        return JSONResponse({"closed": True})

    async def trajectory(request: Request) -> JSONResponse:
        entry = sessions.get(request.query_params.get("session_id", ""))
        if entry is None:
            return _err(404, "no such session")
        try:
            return JSONResponse(entry[0].trajectory(policy="remote").model_dump(mode="json"))
        except ResetNeeded as e:
            return _err(409, str(e))

    async def health(request: Request) -> JSONResponse:
        return JSONResponse({"sessions": len(sessions), "max_sessions": max_sessions, "suite": suite.name})

    return Starlette(
        routes=[
            Route("/reset", reset, methods=["POST"]),
            Route("/step", step, methods=["POST"]),
            Route("/close", close, methods=["POST"]),
            Route("/trajectory", trajectory, methods=["GET"]),
            Route("/health", health, methods=["GET"]),
        ]
    )
