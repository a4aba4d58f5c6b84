"""Pre-forked Python MCP servers: one fork server per interpreter starts each server in milliseconds.

A fresh Python MCP server costs about a CPU-second before it can answer, nearly all of it importing
the `mcp` SDK; a server per episode pays that per episode. `start(argv, policy)` does what
`sandbox.start` does, faster, for a server that is a Python interpreter and a script (`python
server.py ...`), a module (`python -m pkg ...`) or a script whose `#!` line names Python without
options (which covers PyPI console scripts): a fork server — a "zygote", `agentgym/mcp/zygote.py` —
started once per interpreter imports `PRELOAD` (the SDK) and forks one server per call. Anything
else — another program, a Python with options, an environment with `PYTHON*` or locale variables of
its own (they act at interpreter start, which a fork skips), a zygote that refused to start — is
spawned by `sandbox.spawn` as before; so is everything in a container (`connect` does not fork for
a `wrap`).

In: the command line and `SandboxPolicy`, prepared by `sandbox.prepare` exactly as for a spawned
server. Out: a `SandboxedProcess` like `sandbox.start`'s — its own pid, session and process group
(so `kill_process_group` and `close()` reach its whole tree), stdin/stdout/stderr pipes speaking MCP
stdio, the stderr tail kept, the scrubbed environment, the private working folder, the resource
limits, the pids cgroup and a network namespace of its own when the policy takes the network away.
`returncode` comes from the zygote, which reaps the server and reports its exit status.

What differs from a spawned server: the server starts from the zygote's interpreter state as it
was after the preload (those modules already imported, the hash seed shared; `random` is reseeded
at fork). Code that runs at import time runs in the zygote, with its environment rather than the
server's, which is why only the SDK is preloaded and never a server's own modules (a server that
reads, say, `MEMORY_FILE_PATH` when imported must see its own), nor the imports a script names. The zygote runs our own code only (no limits, our
network) and is private to our user (a 0700 folder holds its socket).

Lifetime: the first call for an interpreter starts its zygote and waits (within the caller's
time-out) for it to listen; a zygote that has died is started again on the next call (a call in
flight when it died is retried once on a new one). The servers it forked die with it (the kernel
kills them), and `connect` reports theirs as `crashed`. A zygote exits when our process does (its
stdin is a pipe from us; `atexit` also closes it and removes its folder), and if our connection to
it closes while a server runs, it kills that server.
"""

from __future__ import annotations

import array
import asyncio
import atexit
import contextlib
import json
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio

from agentgym.mcp.errors import MCPServerError
from agentgym.mcp.sandbox import (
    STDOUT_LINE_LIMIT,
    Launch,
    SandboxedProcess,
    SandboxPolicy,
    kill_process_group,
    prepare,
    spawn,
)

log = logging.getLogger(__name__)

ZYGOTE = Path(__file__).with_name("zygote.py")
PRELOAD = (
    "mcp.server.mcpserver",
    "mcp.server.fastmcp",  # the same under mcp 1.x, for servers whose own venv pins it
    "mcp.server.lowlevel",
    "mcp.server.stdio",
    "anyio._backends._asyncio",
    "rich.logging",
)
"""What a zygote imports before forking: the SDK and what its stdio server imports when it runs."""
READY_TIMEOUT = 60.0
"""Longest wait for a new zygote to listen, on top of the caller's own time-out."""

_PYTHON = re.compile(r"^python(\d+(\.\d+)?)?$")
_LANG = os.environ.get("LANG", "C.UTF-8")


@dataclass(frozen=True)
class Target:
    """What a forked server runs: `python` with `run` (`path` or `module`) `target` as `__main__`."""

    python: str
    run: str
    target: str
    argv: tuple[str, ...]
    """The server's `sys.argv`."""


def forkable(launch: Launch) -> Target | None:
    """What a prepared server (`sandbox.prepare`) runs, if a zygote can fork it; None to spawn it. Not
    with `PYTHON*` or locale variables of its own: they act when an interpreter starts, which a fork
    skips (a zygote starts with our `LANG`)."""
    if any(k.startswith(("PYTHON", "LC_")) for k in launch.env) or launch.env.get("LANG") != _LANG:
        return None
    program, rest = launch.command[0], list(launch.command[1:])
    if _PYTHON.match(os.path.basename(program)):
        if len(rest) >= 2 and rest[0] == "-m" and not rest[1].startswith("-"):
            return Target(program, "module", rest[1], ("-m", *rest[2:]))
        script = os.path.join(launch.workdir, rest[0]) if rest else ""
        if rest and not rest[0].startswith("-") and os.path.isfile(script):
            return Target(program, "path", script, tuple(rest))
        return None
    python = _shebang_python(program)
    return Target(python, "path", program, (program, *rest)) if python else None


def _shebang_python(path: str) -> str | None:
    """The Python a script's `#!` line names (directly or through `env`), if it names one alone."""
    try:
        with open(path, "rb") as f:
            first = f.readline(512)
    except OSError:
        return None
    if not first.startswith(b"#!"):
        return None
    words = first[2:].decode(errors="replace").split()
    if len(words) == 2 and os.path.basename(words[0]) == "env":
        words = [shutil.which(words[1]) or ""]
    if len(words) == 1 and _PYTHON.match(os.path.basename(words[0])) and os.access(words[0], os.X_OK):
        return words[0]
    return None


# ---- the zygotes ------------------------------------------------------------------------------------


class _Refused(Exception):
    """The zygote for this interpreter cannot be used (it would not start); spawn instead."""


class _Gone(Exception):
    """The zygote went away while we asked it for a server; start a new one and ask again."""


class _Zygote:
    """One zygote process (module doc) and its private folder."""

    def __init__(self, python: str) -> None:
        self.python = python
        self.folder = Path(tempfile.mkdtemp(prefix="agentgym-zygote-", dir="/tmp"))
        self.socket = str(self.folder / "socket")
        env = {"PATH": os.environ.get("PATH", os.defpath), "LANG": _LANG,
               "HOME": str(self.folder), "TMPDIR": str(self.folder)}  # fmt: skip
        try:
            with open(self.folder / "zygote.log", "wb") as err:
                self.proc = subprocess.Popen(
                    [python, str(ZYGOTE), str(self.folder), *PRELOAD],
                    stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=err,
                    env=env, cwd=self.folder, start_new_session=True,
                )  # fmt: skip
        except OSError as e:
            shutil.rmtree(self.folder, ignore_errors=True)
            raise _Refused(f"cannot start a fork server with {python}: {e}") from None

    def alive(self) -> bool:
        return self.proc.poll() is None

    def log_tail(self, limit: int = 1500) -> str:
        with contextlib.suppress(OSError):
            return (self.folder / "zygote.log").read_text(errors="replace")[-limit:].strip()
        return ""

    async def ready(self) -> None:
        """Wait until it listens: `_Refused` if it exits by itself first (it cannot work here) or does
        not listen in time, `_Gone` if it is killed first."""
        deadline = anyio.current_time() + READY_TIMEOUT
        while not os.path.exists(self.socket):
            code = self.proc.poll()
            if code is not None and code < 0:
                raise _Gone(f"the fork server for {self.python} was killed by signal {-code} while starting")
            if code is not None:
                raise _Refused(
                    f"the fork server for {self.python} exited with code {code}: {self.log_tail()}"
                )
            if anyio.current_time() > deadline:
                raise _Refused(f"the fork server for {self.python} did not listen within {READY_TIMEOUT:g}s")
            await anyio.sleep(0.02)

    def stop(self) -> None:
        """End it (closing its stdin ends it and every server it forked) and remove its folder."""
        with contextlib.suppress(OSError):
            if self.proc.stdin is not None:
                self.proc.stdin.close()
        try:
            self.proc.wait(2)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        shutil.rmtree(self.folder, ignore_errors=True)


_ZYGOTES: dict[str, _Zygote] = {}
_REFUSED: dict[str, str] = {}
_LOCK = threading.Lock()  # not an asyncio lock: zygotes outlive event loops (each test, each asyncio.run)


def zygote_pid(python: str) -> int | None:
    """The pid of the running zygote for `python`, if there is one (for tests and diagnostics)."""
    z = _ZYGOTES.get(python)
    return z.proc.pid if z is not None and z.alive() else None


async def _zygote(python: str) -> _Zygote:
    """The running zygote for `python`, started (again) if there is none."""
    z: _Zygote | None = None
    try:
        with _LOCK:
            if python in _REFUSED:
                raise _Refused(_REFUSED[python])
            z = _ZYGOTES.get(python)
            if z is None or not z.alive():
                if z is not None:
                    log.warning(
                        "the fork server for %s died (%s); starting a new one", python, z.proc.returncode
                    )
                    z.stop()
                z = None
                z = _ZYGOTES[python] = _Zygote(python)
        await z.ready()  # a waiter that is cancelled leaves it starting for the others
    except _Refused as e:
        with _LOCK:
            first = python not in _REFUSED
            _REFUSED[python] = str(e)
        if first:
            log.warning("not forking servers of %s (spawning them instead): %s", python, e)
        if z is not None:
            _discard(z)
        raise
    except _Gone:
        if z is not None:
            _discard(z)
        raise
    return z


def _discard(z: _Zygote) -> None:
    with _LOCK:
        if _ZYGOTES.get(z.python) is z:
            del _ZYGOTES[z.python]
    z.stop()


@atexit.register
def _stop_all() -> None:
    with _LOCK:
        zygotes = list(_ZYGOTES.values())
        _ZYGOTES.clear()
    for z in zygotes:
        z.stop()


# ---- one forked server ------------------------------------------------------------------------------


class _Control(asyncio.Protocol):
    """Our end of the connection to the zygote: the server's pid, then its exit status."""

    def __init__(self, child: _ForkedChild) -> None:
        self.child = child
        self.buf = b""
        self.pid: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while b"\n" in self.buf:
            line, self.buf = self.buf.split(b"\n", 1)
            word, _, rest = line.decode(errors="replace").partition(" ")
            if word == "pid" and not self.pid.done():
                self.child.pid = int(rest)
                self.pid.set_result(self.child.pid)
            elif word == "exit":
                self.child.returncode = int(rest)
            elif word == "error" and not self.pid.done():
                self.pid.set_exception(MCPServerError("start_failed", f"the fork server: {rest}"))

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.pid.done():
            self.pid.set_exception(_Gone("the fork server closed the connection before forking"))
        elif self.child.returncode is None and self.child.pid > 0:
            # The zygote died: the kernel killed the server with it (PR_SET_PDEATHSIG); make sure.
            kill_process_group(self.child.pid)
            self.child.returncode = -signal.SIGKILL


class _ForkedChild:
    """A forked server, with the surface of `asyncio.subprocess.Process` that `SandboxedProcess` uses
    (`sandbox.ProcessHandle`); `_transport.close()` releases the pipes and the zygote connection."""

    def __init__(self) -> None:
        self.pid = 0
        self.returncode: int | None = None
        self.stdin: asyncio.StreamWriter | None = None
        self.stdout: asyncio.StreamReader | None = None
        self.stderr: asyncio.StreamReader | None = None
        self._transports: list[asyncio.BaseTransport] = []
        self._transport = self

    async def attach(self, stdin: Any, stdout: Any, stderr: Any) -> None:
        """Wrap our ends of the server's stdin, stdout and stderr pipes in asyncio streams."""
        loop = asyncio.get_running_loop()
        self.stdout = asyncio.StreamReader(limit=STDOUT_LINE_LIMIT)
        self.stderr = asyncio.StreamReader()
        for pipe, reader in ((stdout, self.stdout), (stderr, self.stderr)):
            transport, _ = await loop.connect_read_pipe(
                lambda r=reader: asyncio.StreamReaderProtocol(r), pipe
            )
            self._transports.append(transport)
        transport, protocol = await loop.connect_write_pipe(
            lambda: asyncio.StreamReaderProtocol(asyncio.StreamReader()), stdin
        )
        self._transports.append(transport)
        self.stdin = asyncio.StreamWriter(transport, protocol, None, loop)

    def close(self) -> None:
        for transport in self._transports:
            with contextlib.suppress(Exception):
                transport.close()


def _netns(launch: Launch) -> str | None:
    """How the child takes the network away: as the `unshare` prefix a spawned server would get."""
    if launch.isolation is None:
        return None
    return "user" if "--map-root-user" in launch.isolation else "net"


async def _fork(zygote: _Zygote, target: Target, launch: Launch) -> _ForkedChild:
    """Ask `zygote` for one server (module doc of `agentgym.mcp.zygote` for the exchange)."""
    loop = asyncio.get_running_loop()
    request = {
        "argv": list(target.argv), "run": target.run, "target": target.target, "env": launch.env,
        "cwd": str(launch.workdir), "limits": launch.limits,
        "cgroup": str(launch.cgroup) if launch.cgroup is not None else None, "netns": _netns(launch),
    }  # fmt: skip
    pipes = [os.pipe() for _ in range(3)]
    theirs = [pipes[0][0], pipes[1][1], pipes[2][1]]
    ours = [open(pipes[0][1], "wb", buffering=0), open(pipes[1][0], "rb", buffering=0),  # noqa: SIM115
            open(pipes[2][0], "rb", buffering=0)]  # noqa: SIM115  (the pipe transports own them)  # fmt: skip
    child = _ForkedChild()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        try:
            sock.setblocking(False)
            await loop.sock_connect(sock, zygote.socket)
            sock.setblocking(True)  # a few KiB on a fresh local connection: sent at once
            sock.sendmsg(
                [json.dumps(request).encode() + b"\n"],
                [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", theirs))],
            )
            sock.setblocking(False)
        except OSError as e:
            raise _Gone(f"cannot reach the fork server: {e}") from None
        finally:
            for fd in theirs:
                os.close(fd)
        transport, control = await loop.create_unix_connection(lambda: _Control(child), sock=sock)
        child._transports.append(transport)
        await child.attach(*ours)
        await control.pid
    except BaseException as e:
        # Closing the connection before the pid is known makes the zygote kill the server it forked.
        child.close()
        sock.close()
        for f in ours:
            f.close()
        if isinstance(e, _Gone):
            _discard(zygote)
        raise
    return child


async def start(argv: tuple[str, ...] | list[str], policy: SandboxPolicy | None = None) -> SandboxedProcess:
    """`sandbox.start`, forked from a zygote where the command allows (module doc)."""
    launch = prepare(argv, policy)
    target = forkable(launch)
    if target is None:
        return await spawn(launch)
    try:
        for attempt in (1, 2):
            try:
                child = await _fork(await _zygote(target.python), target, launch)
                break
            except _Gone as e:
                if attempt == 2:
                    raise MCPServerError("start_failed", f"cannot start {argv[0]}: {e}") from None
    except _Refused:
        return await spawn(launch)
    except BaseException:
        launch.discard()
        raise
    return SandboxedProcess(
        child, launch.root, launch.cgroup, launch.isolation is not None, launch.process_limit
    )
