"""Pre-forked servers (`agentgym.mcp.prefork`): real weather and toy servers forked from a zygote keep
every guarantee of a spawned one — own pid and session, sandboxed alike, state per session, crashes
and time-outs reported, nothing left behind — and a zygote that dies is replaced."""

from __future__ import annotations

import asyncio
import importlib.util
import os
import signal
import socket
import sys
import time
from pathlib import Path

import pytest
from local_servers import SERVERS, alive, local

from agentgym.mcp import MCPServerError, SandboxPolicy, connect, prefork
from agentgym.mcp.sandbox import network_isolation_prefix, prepare, start

ROLLOUTS = Path(__file__).parents[2] / "bench" / "rollouts.py"
PY = sys.executable


@pytest.fixture(scope="module")
def weather(tmp_path_factory) -> str:
    """The weather server of the rollout benchmark, as a script; its spec."""
    spec = importlib.util.spec_from_file_location("rollouts", ROLLOUTS)
    rollouts = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(rollouts)
    script = tmp_path_factory.mktemp("weather") / "weather_mcp.py"
    script.write_text(rollouts.WEATHER_MCP)
    return f"{PY} {script}"


@pytest.fixture(scope="module", autouse=True)
def _stop_zygotes():
    yield
    prefork._stop_all()


def ppid(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat[stat.rfind(")") + 2 :].split()[1])


def limits(pid: int) -> dict[str, str]:
    rows = Path(f"/proc/{pid}/limits").read_text().splitlines()[1:]
    return {r[:26].strip(): r[26:47].strip() for r in rows}


async def wait_dead(pids: list[int], limit: float = 5.0) -> list[int]:
    deadline = time.monotonic() + limit
    while any(alive(p) for p in pids) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    return [p for p in pids if alive(p)]


async def test_a_forked_weather_server_is_a_real_server_process_of_its_own(weather):
    async with connect(weather, timeout=60, prefork=True) as conn:
        assert conn.server_info.name == "weather"
        result = await conn.call_tool("get_weather", {"city": "Paris"})
        assert result.content[0].text == "Paris: 10 C, clear"
        pid = conn.process.pid
        zygote = prefork.zygote_pid(PY)
        assert zygote is not None and ppid(pid) == zygote  # forked, not spawned by us
        assert os.getsid(pid) == pid and os.getpgid(pid) == pid  # its own session and group
        assert conn.process.network_isolated == (network_isolation_prefix() is not None)
        lim = limits(pid)
        assert lim["Max cpu time"] == "600" and lim["Max file size"] == str(256 * 1024 * 1024)
        assert lim["Max open files"] == "1024"
        assert lim["Max address space"] == str(2048 * 1024 * 1024)
        if conn.process.cgroup is not None:
            assert conn.process.cgroup.name in Path(f"/proc/{pid}/cgroup").read_text()
        root = conn.process.root
    assert not alive(pid) and not root.exists()
    assert prefork.zygote_pid(PY) == zygote  # the zygote stays for the next one


async def test_state_is_kept_within_a_session_and_never_across():
    toy = local("toy_server.py")
    async with connect(toy, timeout=60, prefork=True) as a, connect(toy, timeout=60, prefork=True) as b:
        assert a.process.pid != b.process.pid
        await a.call_tool("create_note", {"title": "groceries"})
        await a.call_tool("create_note", {"title": "taxes"})
        listed_a = await a.call_tool("list_notes", {})
        listed_b = await b.call_tool("list_notes", {})
    assert [n["title"] for n in listed_a.structured_content["result"]] == ["groceries", "taxes"]
    assert listed_b.structured_content["result"] == []
    async with connect(toy, timeout=60, prefork=True) as c:
        again = await c.call_tool("list_notes", {})
    assert again.structured_content["result"] == []


async def test_the_sandbox_is_the_same_as_for_a_spawned_server(monkeypatch):
    monkeypatch.setenv("AGENTGYM_TEST_SECRET", "hunter2")
    policy = SandboxPolicy(env={"GREETING": "hello from {workdir}"})
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        async with connect(local("toy_server.py"), timeout=60, prefork=True, policy=policy) as conn:

            async def env(name: str) -> str:
                return (await conn.call_tool("env", {"name": name})).content[0].text

            workdir = conn.process.workdir
            assert await env("AGENTGYM_TEST_SECRET") == ""
            assert await env("GREETING") == f"hello from {workdir}"
            assert await env("HOME") == str(conn.process.home)
            assert Path(f"/proc/{conn.process.pid}/cwd").resolve() == workdir.resolve()
            probe = (await conn.call_tool("probe", {"port": port})).content[0].text
    assert (probe == "connected") == (network_isolation_prefix() is None), probe


async def test_without_root_the_network_goes_in_a_user_namespace_of_its_own(monkeypatch):
    """What a host where only `unshare --net --map-root-user` works gets (exercised here as any user)."""
    from agentgym.mcp import sandbox

    if network_isolation_prefix() is None:
        pytest.skip("no network isolation on this host")
    monkeypatch.setattr(sandbox, "network_isolation_prefix", lambda: ("unshare", "--net", "--map-root-user"))
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        async with connect(local("toy_server.py"), timeout=60, prefork=True) as conn:
            assert conn.process.network_isolated
            pid = conn.process.pid
            assert os.readlink(f"/proc/{pid}/ns/user") != os.readlink("/proc/self/ns/user")
            assert Path(f"/proc/{pid}/uid_map").read_text().split()[:3] == ["0", str(os.getuid()), "1"]
            probe = (await conn.call_tool("probe", {"port": listener.getsockname()[1]})).content[0].text
    assert probe.startswith("failed"), probe


async def test_a_crash_is_crashed_with_the_stderr_tail():
    t0 = time.monotonic()
    with pytest.raises(MCPServerError) as info:
        async with connect(local("toy_server.py"), timeout=60, prefork=True) as conn:
            pid = conn.process.pid
            await conn.call_tool("crash", {})
    assert info.value.kind == "crashed" and "exited with code 3" in info.value.message
    assert "toy: crashing now" in info.value.stderr_tail
    assert time.monotonic() - t0 < 30 and not alive(pid)


@pytest.mark.parametrize(
    ("server", "kind", "says", "within"),
    [
        (("bad_server.py", "garbage"), "protocol_error", "I am not an MCP server", 8),
        (("bad_server.py", "exit"), "crashed", "code 7", 8),
        (("bad_server.py", "silent"), "timeout", "initialize", 2 + 4),  # SIGTERM ignored: SIGKILL
    ],
)
async def test_failures_before_mcp_are_reported_as_for_a_spawned_server(server, kind, says, within):
    t0 = time.monotonic()
    timeout = 2 if kind == "timeout" else 10
    with pytest.raises(MCPServerError) as info:
        async with connect(local(*server), timeout=timeout, prefork=True) as conn:
            await conn.list_tools()
    assert info.value.kind == kind and says in info.value.message
    assert time.monotonic() - t0 < within
    if kind == "crashed":
        assert "missing configuration" in info.value.stderr_tail


async def test_a_request_that_never_finishes_times_out():
    with pytest.raises(MCPServerError) as info:
        async with connect(local("toy_server.py"), timeout=60, request_timeout=1, prefork=True) as conn:
            pid = conn.process.pid
            await conn.call_tool("sleep", {"seconds": 60})
    assert info.value.kind == "timeout" and "tools/call sleep" in info.value.message
    assert await wait_dead([pid]) == []


async def test_closing_leaves_no_process_behind():
    async with connect(local("toy_server.py"), timeout=60, prefork=True) as conn:
        pid = conn.process.pid
        children = (await conn.call_tool("spawn", {"children": 2})).structured_content["result"]
        assert all(alive(c) for c in children)
    assert await wait_dead([pid, *children]) == []


async def test_cancelling_mid_call_kills_the_server_promptly():
    started: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    async def episode() -> None:
        async with connect(local("toy_server.py"), timeout=60, prefork=True) as conn:
            started.set_result(conn.process.pid)
            await conn.call_tool("sleep", {"seconds": 60})

    task = asyncio.create_task(episode())
    pid = await asyncio.wait_for(started, 60)
    await asyncio.sleep(0.2)  # the call is in flight
    t0 = time.monotonic()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert time.monotonic() - t0 < 5
    assert await wait_dead([pid]) == []


@pytest.mark.slow
async def test_a_dead_zygote_takes_its_servers_and_the_next_session_starts_a_new_one(weather):
    async with connect(weather, timeout=60, prefork=True) as warm:
        await warm.call_tool("get_weather", {"city": "Oslo"})
    zygote = prefork.zygote_pid(PY)
    with pytest.raises(MCPServerError) as info:
        async with connect(weather, timeout=60, prefork=True) as conn:
            pid = conn.process.pid
            os.kill(zygote, signal.SIGKILL)
            await asyncio.sleep(0.3)
            await conn.call_tool("get_weather", {"city": "Oslo"})
    assert info.value.kind == "crashed"
    assert await wait_dead([pid]) == []
    async with connect(weather, timeout=60, prefork=True) as conn:
        result = await conn.call_tool("get_weather", {"city": "Lima"})
        assert ppid(conn.process.pid) == prefork.zygote_pid(PY) != zygote
    assert result.content[0].text == "Lima: 19 C, clear"


PROBE = r"""
import atexit, os, sys, threading, time
print("name", __name__, "argv", sys.argv[1:], "path0", os.path.relpath(sys.path[0], os.environ["ROOT"]))
print("cwd", os.path.relpath(os.getcwd(), os.environ["ROOT"]), "keys", sorted(os.environ))
print("stdin", sys.stdin.readline().strip(), "enc", sys.stdout.encoding, sys.stderr.line_buffering)
atexit.register(lambda: print("atexit ran", flush=True))
threading.Thread(target=lambda: (time.sleep(0.2), print("thread joined", flush=True))).start()
sys.exit(5)
"""


async def run_to_end(proc, line: bytes = b"ping\n") -> tuple[str, int | None]:
    try:
        proc.stdin.write(line)
        await proc.stdin.drain()
        out = await asyncio.wait_for(proc.stdout.read(), 30)
        return out.decode(), await proc.wait(10)
    finally:
        await proc.close()


async def test_a_forked_script_runs_as_python_would_have_run_it(tmp_path):
    script = tmp_path / "probe.py"
    script.write_text(PROBE)
    policy = SandboxPolicy(env={"ROOT": "{workdir}/.."})
    seen = {}
    for how, launcher in (("spawned", start), ("forked", prefork.start)):
        proc = await launcher([PY, str(script), "one", "two"], policy)
        seen[how] = await run_to_end(proc)
    assert seen["forked"] == seen["spawned"]
    out, code = seen["forked"]
    assert code == 5
    assert "name __main__ argv ['one', 'two']" in out and "stdin ping" in out
    assert "thread joined\natexit ran" in out


async def test_a_module_runs_as_with_dash_m():
    proc = await prefork.start([PY, "-m", "this"])
    out, code = await run_to_end(proc, b"")
    assert code == 0 and "Beautiful is better than ugly." in out


def test_what_can_be_forked(tmp_path):
    script = tmp_path / "server.py"
    script.write_text("print(1)\n")
    console = tmp_path / "console-server"
    console.write_text(f"#!{PY}\nprint(1)\n")
    console.chmod(0o755)
    via_env = tmp_path / "env-server"
    via_env.write_text("#!/usr/bin/env python3\nprint(1)\n")
    via_env.chmod(0o755)
    flagged = tmp_path / "flagged-server"
    flagged.write_text(f"#!{PY} -u\nprint(1)\n")
    flagged.chmod(0o755)

    def target(*argv: str, **env: str):
        launch = prepare(list(argv), SandboxPolicy(env=env))
        try:
            return prefork.forkable(launch)
        finally:
            launch.discard()

    t = target(PY, str(script), "--port", "1")
    assert (t.python, t.run, t.target, t.argv) == (PY, "path", str(script), (str(script), "--port", "1"))
    t = target(PY, "-m", "pkg.server", "x")
    assert (t.run, t.target, t.argv) == ("module", "pkg.server", ("-m", "x"))
    t = target(str(console), "--flag")
    assert (t.python, t.target, t.argv) == (PY, str(console), (str(console), "--flag"))
    assert target(str(via_env)).python.endswith("python3")
    assert target(str(flagged)) is None  # a `#!` line with options
    assert target(PY, "-u", str(script)) is None  # interpreter options
    assert target(PY, str(tmp_path / "missing.py")) is None
    assert target("sh", "-c", "true") is None
    assert target(PY, str(script), PYTHONPATH="/x") is None  # acts at interpreter start
    assert target(PY, str(script), LC_ALL="C") is None


@pytest.mark.slow
async def test_a_python_whose_zygote_cannot_start_is_spawned_instead(tmp_path):
    fake = tmp_path / "python3"  # a Python that runs servers but refuses to be a zygote
    fake.write_text(f'#!/bin/sh\ncase "$1" in */zygote.py) echo no >&2; exit 7;; esac\nexec {PY} "$@"\n')
    fake.chmod(0o755)
    spec = f"{fake} {SERVERS / 'toy_server.py'}"
    async with connect(spec, timeout=60, prefork=True) as conn:
        assert ppid(conn.process.pid) == os.getpid()  # spawned by us
        assert (await conn.call_tool("add", {"a": 1, "b": 2})).structured_content == {"total": 3}
    assert "exited with code 7" in prefork._REFUSED[str(fake)]
    async with connect(spec, timeout=60, prefork=True) as conn:  # not tried again
        assert ppid(conn.process.pid) == os.getpid()


CLIENT = """
import asyncio, sys
from agentgym.mcp import connect, prefork

async def main():
    async with connect(sys.argv[2], timeout=60, prefork=True) as conn:
        print(prefork.zygote_pid(sys.executable), conn.process.pid, prefork._ZYGOTES[sys.executable].folder,
              flush=True)
        if sys.argv[1] == "hang":
            await asyncio.sleep(3600)

asyncio.run(main())
"""


@pytest.mark.slow
@pytest.mark.parametrize("end", ["exit", "sigkill"])
async def test_when_our_process_ends_its_zygote_and_servers_end_too(weather, end):
    client = await asyncio.create_subprocess_exec(
        PY, "-c", CLIENT, "exit" if end == "exit" else "hang", weather, stdout=asyncio.subprocess.PIPE
    )
    try:
        line = await asyncio.wait_for(client.stdout.readline(), 60)
        zygote, server, folder = line.decode().split()
        assert alive(int(zygote)) or end == "exit"
        if end == "sigkill":  # no atexit, no cleanup of ours: the zygote sees its stdin close
            client.kill()
        await asyncio.wait_for(client.wait(), 30)
    finally:
        if client.returncode is None:
            client.kill()
    assert await wait_dead([int(zygote), int(server)], 10) == []
    assert not Path(folder).exists()
