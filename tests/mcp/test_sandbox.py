"""The process sandbox: a scrubbed environment, limits, no network where the host allows it, and
nothing left running once a server is closed."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import sys
import threading

import pytest
from local_servers import alive, local

from agentgym.mcp import MCPServerError, SandboxPolicy, ServerSpec, connect, sandboxed
from agentgym.mcp.sandbox import network_isolation_prefix

PROBE_ENV = "import json, os; print(json.dumps(dict(os.environ)))"


async def output_of(proc) -> str:
    data = await asyncio.wait_for(proc.stdout.read(), 20)
    return data.decode()


async def test_the_environment_is_scrubbed(monkeypatch):
    monkeypatch.setenv("AGENTGYM_TEST_SECRET", "hunter2")
    monkeypatch.setenv("AGENTGYM_TEST_SHARED", "visible")
    policy = SandboxPolicy(env_allow=("AGENTGYM_TEST_SHARED",), env={"EXTRA": "{workdir}/x"})
    async with sandboxed([sys.executable, "-c", PROBE_ENV], policy) as proc:
        env = json.loads(await output_of(proc))
        root = proc.root
    assert "AGENTGYM_TEST_SECRET" not in env and "hunter2" not in json.dumps(env)
    assert env["AGENTGYM_TEST_SHARED"] == "visible"
    assert env["EXTRA"] == f"{root / 'work'}/x"
    assert env["HOME"] == str(root / "home") and env["TMPDIR"] == str(root / "tmp")
    assert set(env) <= {"PATH", "LANG", "HOME", "TMPDIR", "AGENTGYM_TEST_SHARED", "EXTRA", "LC_CTYPE"}
    assert not root.exists()  # the private folder goes with the process


async def test_a_secret_of_ours_is_not_visible_to_an_mcp_server(monkeypatch):
    monkeypatch.setenv("AGENTGYM_TEST_API_KEY", "sk-do-not-leak")
    async with connect(local("toy_server.py"), timeout=20) as conn:
        result = await conn.call_tool("env", {"name": "AGENTGYM_TEST_API_KEY"})
    assert result.content[0].text == ""


async def test_limits_are_set_in_the_child():
    code = "import resource as r; print(r.getrlimit(r.RLIMIT_AS)[0], r.getrlimit(r.RLIMIT_NOFILE)[0])"
    policy = SandboxPolicy(memory_mb=1024, open_files=64)
    async with sandboxed([sys.executable, "-c", code], policy) as proc:
        address_space, files = map(int, (await output_of(proc)).split())
        limit = proc.process_limit
    assert address_space == 1024 * 1024 * 1024 and files == 64
    assert limit in ("cgroup", "rlimit")


async def test_the_whole_process_tree_is_killed_on_exit():
    async with connect(local("toy_server.py"), timeout=20) as conn:
        result = await conn.call_tool("spawn", {"children": 3})
        children = result.structured_content["result"]
        server = conn.process.pid
        assert len(children) == 3 and all(alive(p) for p in children)
    assert not alive(server)
    assert not any(alive(p) for p in children)


async def test_a_process_that_ignores_sigterm_is_killed_and_the_close_is_bounded():
    code = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('up', flush=True); time.sleep(300)"
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    async with sandboxed([sys.executable, "-c", code]) as proc:
        assert (await asyncio.wait_for(proc.stdout.readline(), 20)).strip() == b"up"
        pid = proc.pid
    assert not alive(pid) and loop.time() - t0 < 15


async def test_a_command_that_does_not_exist_is_start_failed():
    with pytest.raises(MCPServerError) as info:
        async with sandboxed(["agentgym-no-such-program-5a1e"]):
            pass
    assert info.value.kind == "start_failed"


def _listening() -> tuple[socket.socket, threading.Thread]:
    server = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        server.settimeout(10)
        with contextlib.suppress(OSError):
            server.accept()[0].close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return server, thread


@pytest.mark.skipif(
    network_isolation_prefix() is None, reason="`unshare --net` is not permitted on this host"
)
async def test_without_network_the_server_cannot_reach_even_loopback():
    server, thread = _listening()
    port = server.getsockname()[1]
    try:
        async with connect(local("toy_server.py"), timeout=20) as conn:
            assert conn.process.network_isolated
            isolated = (await conn.call_tool("probe", {"port": port})).content[0].text
        spec = ServerSpec.parse(local("toy_server.py"), network=True)
        async with connect(spec, timeout=20) as conn:
            assert not conn.process.network_isolated
            open_ = (await conn.call_tool("probe", {"port": port})).content[0].text
    finally:
        server.close()
        thread.join()
    assert isolated.startswith("failed") and open_ == "connected"


def test_require_network_isolation_refuses_to_run_without_it(monkeypatch):
    from agentgym.mcp import sandbox

    monkeypatch.setattr(sandbox, "network_isolation_prefix", lambda: None)

    async def start() -> None:
        async with sandboxed([sys.executable, "-c", "pass"], SandboxPolicy(require_network_isolation=True)):
            pass

    with pytest.raises(MCPServerError, match="network isolation is required"):
        asyncio.run(start())
