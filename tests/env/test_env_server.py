"""The env server: a full episode over HTTP, session limits, clear errors, and a real server process."""

from __future__ import annotations

import socket
import subprocess
import sys
import time

import httpx

from agentgym.env.server import app
from agentgym.suites import load_suite

CALL = '<tool_call>{"name": "calendar__search_events", "arguments": {"query": "product demo"}}</tool_call>'
CANCEL = '<tool_call>{"name": "calendar__cancel_event", "arguments": {"event_id": "evt_0011"}}</tool_call>'


def test_an_episode_over_http_scores_like_the_env():
    import asyncio

    async def go():
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app(load_suite("starter"))), base_url="http://env"
        ) as c:
            r = (await c.post("/reset", json={"task_id": "calendar-cancel-demo", "seed": 0})).json()
            sid = r["session_id"]
            assert [m["role"] for m in r["observation"]] == ["system", "user"] and r["info"]["tools"]
            s1 = (await c.post("/step", json={"session_id": sid, "action": CALL})).json()
            assert s1["observation"][0]["role"] == "tool" and not s1["terminated"]
            await c.post("/step", json={"session_id": sid, "action": CANCEL})
            end = (
                await c.post("/step", json={"session_id": sid, "action": "I cancelled the product demo."})
            ).json()
            traj = (await c.get("/trajectory", params={"session_id": sid})).json()
            again = await c.post("/step", json={"session_id": sid, "action": "more"})
            closed = (await c.post("/close", json={"session_id": sid})).json()
            return end, traj, again, closed

    end, traj, again, closed = asyncio.run(go())
    assert end["terminated"] and end["reward"] == 1.0 and end["info"]["passed"]
    assert traj["reward"] == 1.0 and traj["task_id"] == "calendar-cancel-demo"
    assert again.status_code == 409 and closed == {"closed": True}


def test_limits_and_errors():
    import asyncio

    async def go():
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app(load_suite("starter"), max_sessions=2)),
            base_url="http://env",
        ) as c:
            a = await c.post("/reset", json={})
            b = await c.post("/reset", json={})
            full = await c.post("/reset", json={})
            unknown_task = await c.post(
                "/reset", json={"session_id": a.json()["session_id"], "task_id": "nope"}
            )
            unknown_session = await c.post("/step", json={"session_id": "nope", "action": "x"})
            no_action = await c.post("/step", json={"session_id": b.json()["session_id"]})
            not_json = await c.post("/step", content=b"{{{")
            health = (await c.get("/health")).json()
            return a, b, full, unknown_task, unknown_session, no_action, not_json, health

    a, b, full, unknown_task, unknown_session, no_action, not_json, health = asyncio.run(go())
    assert a.status_code == b.status_code == 200
    assert full.status_code == 429 and "limit" in full.json()["error"]
    assert unknown_task.status_code == 400 and "nope" in unknown_task.json()["error"]
    assert unknown_session.status_code == 404 and no_action.status_code == 400 and not_json.status_code == 400
    assert health == {"sessions": 2, "max_sessions": 2, "suite": "starter"}


def test_a_server_process_driven_from_another_process():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "agentgym", "serve", "env", "--port", str(port)], stderr=subprocess.PIPE
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.time() + 60
        while True:
            try:
                httpx.get(f"{url}/health", timeout=1)
                break
            except httpx.HTTPError:
                assert proc.poll() is None and time.time() < deadline, (
                    proc.stderr.read().decode() if proc.poll() is not None else "timeout"
                )
                time.sleep(0.2)
        r = httpx.post(f"{url}/reset", json={"task_id": "calendar-cancel-demo"}).json()
        sid = r["session_id"]
        for action in (CALL, CANCEL, "Cancelled."):
            out = httpx.post(f"{url}/step", json={"session_id": sid, "action": action}).json()
        assert out["terminated"] and out["reward"] == 1.0
    finally:
        proc.terminate()
        proc.wait(10)
