"""`agentgym serve mcp --agent ID`: an agent's simulated tools as a real MCP server, driven by the mcp client."""

from __future__ import annotations

import asyncio
import json
import shlex
import socket
import subprocess
import sys
import time

from agentgym.mcp.client import connect


def spec(*extra: str) -> str:
    return shlex.join(
        [sys.executable, "-m", "agentgym", "serve", "mcp", "--agent", "calendar_assistant", *extra]
    )


def test_stdio_server_lists_and_runs_the_agents_tools():
    async def go():
        async with connect(spec(), timeout=60) as conn:
            tools = {t.name: t for t in await conn.list_tools()}
            found = await conn.call_tool("calendar__search_events", {"query": "product demo"})
            cancel = await conn.call_tool("calendar__cancel_event", {"event_id": "evt_0011"})
            again = await conn.call_tool("calendar__get_event", {"event_id": "evt_0011"})
            bad = await conn.call_tool("calendar__get_event", {"nope": 1})
            missing = await conn.call_tool("calendar__get_event", {"event_id": "evt_9999"})
            return tools, found, cancel, again, bad, missing

    tools, found, cancel, again, bad, missing = asyncio.run(go())
    assert "calendar__cancel_event" in tools and tools["calendar__search_events"].annotations.read_only_hint
    assert json.loads(found.content[0].text)["items"][0]["id"] == "evt_0011"
    assert (
        not cancel.is_error and again.structured_content["status"] == "cancelled"
    )  # state kept in the session
    assert bad.is_error and "invalid_arguments" in bad.content[0].text
    assert missing.is_error and "not_found" in missing.content[0].text


def test_each_session_starts_from_the_same_world():
    async def session(cancel: bool):
        async with connect(spec(), timeout=60) as conn:
            if cancel:
                await conn.call_tool("calendar__cancel_event", {"event_id": "evt_0011"})
            return (await conn.call_tool("calendar__get_event", {"event_id": "evt_0011"})).structured_content[
                "status"
            ]

    assert asyncio.run(session(True)) == "cancelled"
    assert asyncio.run(session(False)) != "cancelled"


def test_streamable_http():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(shlex.split(spec("--http", str(port))), stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                assert time.time() < deadline and proc.poll() is None
                time.sleep(0.2)

        async def go():
            async with connect(f"http://127.0.0.1:{port}/mcp", timeout=30) as conn:
                names = [t.name for t in await conn.list_tools()]
                r = await conn.call_tool("calendar__search_events", {"query": "dentist"})
                return names, r

        names, r = asyncio.run(go())
        assert "calendar__search_events" in names and not r.is_error and "Dentist" in r.content[0].text
    finally:
        proc.terminate()
        proc.wait(10)
