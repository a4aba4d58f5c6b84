"""`connect`: real sessions with local servers over stdio and streamable HTTP, and every way a server
can fail mapped to one `MCPServerError` kind — promptly, never a hang, never a leftover process."""

from __future__ import annotations

import json
import socket
import threading
import time

import pytest
from local_servers import alive, free_port, local

from agentgym.mcp import MCPServerError, ServerSpec, connect


async def failure(spec: str, timeout: float = 5.0, **kw) -> tuple[MCPServerError, float]:
    """The error connecting to (and listing the tools of) `spec` raises, and the seconds it took."""
    t0 = time.monotonic()
    with pytest.raises(MCPServerError) as info:
        async with connect(spec, timeout=timeout, **kw) as conn:
            await conn.list_tools()
    return info.value, time.monotonic() - t0


async def test_a_session_with_the_toy_server_lists_and_calls():
    async with connect(local("toy_server.py"), timeout=20) as conn:
        assert (conn.server_info.name, conn.server_info.version) == ("toy", "1.2.3")
        assert conn.capabilities.tools is not None and conn.capabilities.prompts is not None
        tools = {t.name: t for t in await conn.list_tools()}
        assert {"add", "create_note", "list_notes", "crash", "sleep"} <= set(tools)
        assert tools["add"].annotations.read_only_hint is True
        assert tools["add"].output_schema["properties"]["total"]["type"] == "integer"
        assert [r.uri for r in await conn.list_resources()] == ["toy://readme"]
        assert [t.uri_template for t in await conn.list_resource_templates()] == ["toy://notes/{note_id}"]
        assert [p.name for p in await conn.list_prompts()] == ["summarise"]
        result = await conn.call_tool("add", {"a": 2, "b": 40})
        assert not result.is_error and result.structured_content == {"total": 42}
        await conn.call_tool("create_note", {"title": "groceries"})
        listed = await conn.call_tool("list_notes", {})
        assert "groceries" in json.dumps(listed.structured_content)
        assert conn.process is not None and conn.process.returncode is None
        pid = conn.process.pid
    assert not alive(pid)


async def test_a_tool_error_is_a_result_not_an_exception():
    async with connect(local("toy_server.py"), timeout=20) as conn:
        result = await conn.call_tool("add", {"a": "not a number", "b": 1})
        assert result.is_error


async def test_every_page_of_tools_is_listed():
    async with connect(local("lowlevel_server.py", "paged"), timeout=20) as conn:
        names = [t.name for t in await conn.list_tools()]
    assert names == ["echo", "broken", "loose", "dup", "dup", "odd_output"]


async def test_a_cursor_that_repeats_is_a_protocol_error():
    err, _ = await failure(local("lowlevel_server.py", "repeat_cursor"), timeout=20)
    assert err.kind == "protocol_error" and "repeated cursor" in err.message


async def test_a_tool_the_protocol_refuses_costs_only_itself():
    async with connect(local("raw_server.py"), timeout=20) as conn:
        names = [t.name for t in await conn.list_tools()]
        rejected = conn.rejected_tools
    assert names == ["good", "paged_only"]
    assert [t["name"] for t in rejected] == ["array_schema", "shorthand"]
    assert rejected[0]["inputSchema"] == {"type": "array"}  # kept exactly as sent


async def test_a_crash_in_the_middle_of_a_request_is_crashed_with_the_stderr_tail():
    t0 = time.monotonic()
    with pytest.raises(MCPServerError) as info:
        async with connect(local("toy_server.py"), timeout=20) as conn:
            pid = conn.process.pid
            await conn.call_tool("crash", {})
    assert info.value.kind == "crashed" and "exited with code 3" in info.value.message
    assert "toy: crashing now" in info.value.stderr_tail
    assert time.monotonic() - t0 < 15  # reported when it happens, not after the request time-out
    assert not alive(pid)


async def test_a_crash_while_listing_is_crashed():
    err, _ = await failure(local("lowlevel_server.py", "crash_on_list"), timeout=20)
    assert err.kind == "crashed" and "code 4" in err.message and "tools/list" in err.message


async def test_a_server_that_never_answers_initialize_times_out_promptly():
    err, took = await failure(local("bad_server.py", "silent"), timeout=2)
    assert err.kind == "timeout" and "initialize" in err.message
    # 2 s to wait, then stdin closed, SIGTERM (ignored) and SIGKILL, each after a 1 s grace
    assert took < 2 + 4


async def test_a_request_that_never_finishes_times_out_and_the_session_is_closed():
    t0 = time.monotonic()
    with pytest.raises(MCPServerError) as info:
        async with connect(local("toy_server.py"), timeout=20, request_timeout=1) as conn:
            await conn.call_tool("sleep", {"seconds": 60})
    assert info.value.kind == "timeout" and "tools/call sleep" in info.value.message
    assert time.monotonic() - t0 < 15


async def test_output_that_is_not_json_rpc_is_a_protocol_error():
    err, took = await failure(local("bad_server.py", "garbage"), timeout=10)
    assert err.kind == "protocol_error" and "I am not an MCP server" in err.message
    assert took < 8  # reported at once, not after the time-out


async def test_a_server_that_exits_at_start_is_crashed_with_its_reason():
    err, _ = await failure(local("bad_server.py", "exit"), timeout=10)
    assert err.kind == "crashed" and "code 7" in err.message
    assert "missing configuration" in err.stderr_tail


async def test_a_command_that_does_not_exist_is_start_failed():
    err, took = await failure("agentgym-no-such-command-81f2 --stdio")
    assert err.kind == "start_failed" and "not found" in err.message and took < 2


async def test_a_spec_that_cannot_be_read_is_start_failed():
    err, _ = await failure("npm:")
    assert err.kind == "start_failed" and "bad server spec" in err.message


async def test_streamable_http_lists_and_calls(http_toy):
    async with connect(http_toy, timeout=20) as conn:
        assert conn.process is None and conn.installed is None
        assert conn.server_info.name == "toy"
        assert "add" in [t.name for t in await conn.list_tools()]
        result = await conn.call_tool("add", {"a": 1, "b": 2})
        assert result.structured_content == {"total": 3}
        with pytest.raises(MCPServerError) as info:
            await conn.call_tool("sleep", {"seconds": 60}, timeout=1)
        assert info.value.kind == "timeout"


async def test_an_http_port_nobody_listens_on_is_start_failed():
    err, took = await failure(f"http://127.0.0.1:{free_port()}/mcp")
    assert err.kind == "start_failed" and took < 5


async def test_an_http_server_that_accepts_but_never_answers_times_out():
    listener = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])  # read nothing, answer nothing
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        err, took = await failure(f"http://127.0.0.1:{listener.getsockname()[1]}/mcp", timeout=2)
    finally:
        stop.set()
        thread.join()
        for s in [*held, listener]:
            s.close()
    assert err.kind == "timeout" and took < 2 + 3


async def test_the_spec_environment_reaches_the_server():
    spec = ServerSpec.parse(local("toy_server.py"), env={"AGENTGYM_TEST_GREETING": "hello from {workdir}"})
    async with connect(spec, timeout=20) as conn:
        result = await conn.call_tool("env", {"name": "AGENTGYM_TEST_GREETING"})
        workdir = str(conn.process.workdir)
    assert result.content[0].text == f"hello from {workdir}"
