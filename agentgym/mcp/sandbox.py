"""A process sandbox for untrusted MCP servers: scrubbed, limited, isolated, and always killed.

`start(argv, policy)` spawns a command with pipes on stdin/stdout and returns a `SandboxedProcess`;
`sandboxed(argv, policy)` is the same as an async context manager. `prepare(argv, policy)` is the part
before spawning (folder, environment, command line, network rule, limits), which the fork server
(`agentgym.mcp.prefork`) shares so that a forked server is sandboxed the same way. The process gets:

- its own session and process group (`start_new_session`), so the whole tree can be signalled;
- a scrubbed environment: `PATH`, `LANG`, `HOME` and `TMPDIR` inside a private temp folder, the
  names in `policy.env_allow` copied from ours, and `policy.env`; no other variable (API keys,
  tokens) of the parent is visible;
- a private temp working folder (`{workdir}` in arguments and env values; `{home}` for HOME);
- resource limits set in `preexec_fn` with `resource.setrlimit`: address space, CPU seconds,
  file size, open files; the number of processes through a pids cgroup where we may create one
  (root, whose RLIMIT_NPROC the kernel ignores) and RLIMIT_NPROC otherwise (counted over the
  user's existing tasks, so it bounds only what the server adds). Node 20 runs under all of them;
- no network (`unshare --net`, or `unshare --net --map-root-user` without root) unless
  `policy.network`; where neither works the server runs with the network, and
  `SandboxedProcess.network_isolated` says so (or starting fails, with `require_network_isolation`).

`SandboxedProcess.close()` closes stdin, waits a moment, then SIGTERMs and SIGKILLs the process
group, every other process of its session and everything in its cgroup, reaps the leader and
removes the temp folder; it runs on every exit path, and an `atexit` hook kills whatever a crashed
event loop left. The sandbox does not confine the file system: a server can read what our user can.
Failures to spawn raise `MCPServerError("start_failed")`.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import functools
import itertools
import os
import resource
import shutil
import signal
import subprocess
import tempfile
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import anyio
from pydantic import Field

from agentgym.mcp.errors import MCPServerError
from agentgym.spec.base import Record

STDOUT_LINE_LIMIT = 64 * 1024 * 1024
"""Longest stdout line (one JSON-RPC message) read from a server."""
STDERR_TAIL_BYTES = 8192


class SandboxPolicy(Record):
    """Limits and isolation for one sandboxed process (None: that limit is not set)."""

    memory_mb: int | None = 2048
    """Address-space limit (RLIMIT_AS), MiB."""
    cpu_seconds: int | None = 600
    """CPU-time limit (RLIMIT_CPU), seconds; the kernel sends SIGXCPU, then SIGKILL."""
    file_size_mb: int | None = 256
    """Largest file the process may write (RLIMIT_FSIZE), MiB."""
    open_files: int | None = 1024
    """Open file descriptors (RLIMIT_NOFILE)."""
    max_processes: int | None = 256
    """Processes and threads the server may add (pids cgroup, else RLIMIT_NPROC)."""
    network: bool = False
    """Leave the network on (the server needs it)."""
    require_network_isolation: bool = False
    """Refuse to start when the network cannot be turned off."""
    env_allow: tuple[str, ...] = ()
    """Names of our environment variables the process may see."""
    env: dict[str, str] = Field(default_factory=dict)
    """Extra environment (placeholders `{workdir}`, `{home}` allowed)."""


# ---- killing --------------------------------------------------------------------------------------


def _signal(pid: int, sig: int, group: bool = False) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        (os.killpg if group else os.kill)(pid, sig)


def kill_process_group(pgid: int, sig: int = signal.SIGKILL) -> None:
    """Signal a process group, ignoring one that is already gone."""
    _signal(pgid, sig, group=True)


def session_members(sid: int) -> list[int]:
    """Live (non-zombie) pids whose session id is `sid` (Linux /proc; empty elsewhere)."""
    out = []
    with contextlib.suppress(OSError):
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                with open(f"/proc/{entry.name}/stat", "rb") as f:
                    stat = f.read()
            except OSError:
                continue
            fields = stat[stat.rfind(b")") + 2 :].split()  # state ppid pgrp session …
            if len(fields) > 3 and int(fields[3]) == sid and fields[0] != b"Z":
                out.append(int(entry.name))
    return out


# ---- limits ---------------------------------------------------------------------------------------


@functools.cache
def network_isolation_prefix() -> tuple[str, ...] | None:
    """The command prefix that runs a program without network here, or None (probed once)."""
    exe = shutil.which("unshare")
    if exe is None:
        return None
    for prefix in ((exe, "--net"), (exe, "--net", "--map-root-user")):
        try:
            done = subprocess.run([*prefix, "--", "true"], capture_output=True, timeout=10, check=False)
        except (OSError, subprocess.TimeoutExpired):
            continue
        if done.returncode == 0:
            return prefix
    return None


def _pids_cgroup_base() -> Path | None:
    """Where we may create a pids cgroup (root only: cgroup v1 `pids` or v2 with pids delegated)."""
    if os.geteuid() != 0:
        return None
    v1 = Path("/sys/fs/cgroup/pids")
    if (v1 / "cgroup.procs").is_file() and os.access(v1, os.W_OK):
        return v1
    v2 = Path("/sys/fs/cgroup")
    with contextlib.suppress(OSError):
        if "pids" in (v2 / "cgroup.subtree_control").read_text().split() and os.access(v2, os.W_OK):
            return v2
    return None


_cgroup_ids = itertools.count()


def _make_pids_cgroup(limit: int) -> Path | None:
    base = _pids_cgroup_base()
    if base is None:
        return None
    path = base / f"agentgym-{os.getpid()}-{next(_cgroup_ids)}"
    try:
        path.mkdir()
        (path / "pids.max").write_text(str(limit))
    except OSError:
        with contextlib.suppress(OSError):
            path.rmdir()
        return None
    return path


def _user_tasks() -> int:
    """Tasks (processes and threads) of our real uid: what RLIMIT_NPROC counts."""
    uid, total = os.getuid(), 0
    with contextlib.suppress(OSError):
        for entry in os.scandir("/proc"):
            if entry.name.isdigit():
                try:
                    if entry.stat().st_uid == uid:
                        total += len(os.listdir(f"/proc/{entry.name}/task"))
                except OSError:
                    continue
    return total


def _rlimits(policy: SandboxPolicy, nproc: int | None) -> list[tuple[int, int]]:
    mib = 1024 * 1024
    wanted = [
        (resource.RLIMIT_AS, policy.memory_mb and policy.memory_mb * mib),
        (resource.RLIMIT_CPU, policy.cpu_seconds),
        (resource.RLIMIT_FSIZE, policy.file_size_mb and policy.file_size_mb * mib),
        (resource.RLIMIT_NOFILE, policy.open_files),
        (resource.RLIMIT_NPROC, nproc),
    ]
    out = []
    for res, value in wanted:
        if value:
            hard = resource.getrlimit(res)[1]
            out.append((res, value if hard == resource.RLIM_INFINITY else min(value, hard)))
    return out


def _preexec(limits: list[tuple[int, int]], cgroup: Path | None) -> Callable[[], None]:
    """Runs in the child between fork and exec: join the cgroup, lower the limits."""
    procs = str(cgroup / "cgroup.procs") if cgroup is not None else None

    def apply() -> None:
        if procs is not None:
            with open(procs, "w") as f:
                f.write("0")
        for res, value in limits:
            resource.setrlimit(res, (value, value))

    return apply


# ---- the process ----------------------------------------------------------------------------------

_LIVE: set[SandboxedProcess] = set()


@atexit.register
def _kill_leftovers() -> None:
    for proc in list(_LIVE):
        proc.kill()


class ProcessHandle(Protocol):
    """What `SandboxedProcess` needs of a child: `asyncio.subprocess.Process` has it, and so has a server
    forked by the fork server (`agentgym.mcp.prefork`). `returncode` is None while it runs."""

    pid: int
    stdin: asyncio.StreamWriter | None
    stdout: asyncio.StreamReader | None
    stderr: asyncio.StreamReader | None
    returncode: int | None


class SandboxedProcess:
    """A running sandboxed process (see module doc); `close()` must be awaited, and is by `sandboxed`."""

    def __init__(
        self,
        proc: ProcessHandle,
        root: Path,
        cgroup: Path | None,
        network_isolated: bool,
        process_limit: str,
    ) -> None:
        self._proc = proc
        self.pid = proc.pid
        self.root = root
        self.workdir = root / "work"
        self.home = root / "home"
        self.cgroup = cgroup
        self.network_isolated = network_isolated
        """True when the process runs without network."""
        self.process_limit = process_limit
        """How the process count is bounded: 'cgroup', 'rlimit' or 'none'."""
        self._stderr = bytearray()
        self._stderr_task = asyncio.ensure_future(self._read_stderr())
        self._closed = False
        _LIVE.add(self)

    @property
    def stdin(self) -> asyncio.StreamWriter:
        assert self._proc.stdin is not None
        return self._proc.stdin

    @property
    def stdout(self) -> asyncio.StreamReader:
        assert self._proc.stdout is not None
        return self._proc.stdout

    @property
    def returncode(self) -> int | None:
        return self._proc.returncode

    async def _read_stderr(self) -> None:
        assert self._proc.stderr is not None
        with contextlib.suppress(Exception):
            while chunk := await self._proc.stderr.read(4096):
                self._stderr += chunk
                del self._stderr[:-STDERR_TAIL_BYTES]

    def stderr_tail(self, limit: int = 2000) -> str:
        """The end of what the process wrote to stderr (at most `limit` characters, whole lines)."""
        text = self._stderr.decode(errors="replace")
        if len(text) > limit:
            text = text[-limit:]
            text = text.split("\n", 1)[1] if "\n" in text[:-1] else text
        return text.strip()

    async def wait(self, timeout: float | None = None) -> int | None:
        """The exit code, waiting at most `timeout` seconds (None if still running). Polls the code:
        `Process.wait` would also wait for pipes a surviving child may hold open."""
        deadline = None if timeout is None else anyio.current_time() + timeout
        while self._proc.returncode is None:
            if deadline is not None and anyio.current_time() >= deadline:
                return None
            await anyio.sleep(0.02)
        return self._proc.returncode

    def _members(self) -> set[int]:
        pids = set(session_members(self.pid))
        if self.cgroup is not None:
            with contextlib.suppress(OSError, ValueError):
                pids |= {int(p) for p in (self.cgroup / "cgroup.procs").read_text().split()}
        return pids

    def _signal_all(self, sig: int) -> None:
        kill_process_group(self.pid, sig)
        for pid in self._members():
            _signal(pid, sig)

    def kill(self) -> None:
        """SIGKILL the process, its group, its session and its cgroup now (synchronous)."""
        self._signal_all(signal.SIGKILL)

    async def close(self, grace: float = 1.0) -> None:
        """Stop everything the process started and clean up (module doc). Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        with anyio.CancelScope(shield=True):
            with contextlib.suppress(Exception):
                self.stdin.close()
            if self.returncode is None and await self.wait(grace) is None:
                self._signal_all(signal.SIGTERM)
                await self.wait(grace)
            for _ in range(50):  # the leader may be gone while children it left are still running
                self.kill()
                if not self._members():
                    break
                await anyio.sleep(0.02)
            await self.wait(5)
            self._stderr_task.cancel()
            with contextlib.suppress(BaseException):
                await self._stderr_task
            _close_transport(self._proc)
            _LIVE.discard(self)
            if self.cgroup is not None:
                for _ in range(50):
                    try:
                        self.cgroup.rmdir()
                        break
                    except OSError:
                        await anyio.sleep(0.02)
            shutil.rmtree(self.root, ignore_errors=True)


def _close_transport(proc: ProcessHandle) -> None:
    transport = getattr(proc, "_transport", None)
    if transport is not None:
        with contextlib.suppress(Exception):
            transport.close()


def fill(text: str, workdir: Path, home: Path) -> str:
    """Replace the `{workdir}` and `{home}` placeholders."""
    return text.replace("{workdir}", str(workdir)).replace("{home}", str(home))


@dataclass
class Launch:
    """A process ready to be spawned (`prepare`): its private folder, command line, environment and limits.
    Shared by `start` and the fork server (`agentgym.mcp.prefork`), so both sandbox a server alike."""

    root: Path
    command: list[str]
    """Placeholders filled, the program resolved on the scrubbed PATH; without the isolation prefix."""
    env: dict[str, str]
    isolation: tuple[str, ...] | None
    """The `unshare` prefix that takes the network away; None: the process keeps the network."""
    cgroup: Path | None
    limits: list[tuple[int, int]]
    """(RLIMIT_*, value) pairs to set in the child."""
    process_limit: str

    @property
    def workdir(self) -> Path:
        return self.root / "work"

    def discard(self) -> None:
        """Undo `prepare` for a process that never started."""
        shutil.rmtree(self.root, ignore_errors=True)
        if self.cgroup is not None:
            with contextlib.suppress(OSError):
                self.cgroup.rmdir()


def prepare(argv: tuple[str, ...] | list[str], policy: SandboxPolicy | None = None) -> Launch:
    """The private folder, environment, command line, network rule and limits for `argv` (module doc);
    `MCPServerError("start_failed")` when it cannot run as the policy asks."""
    policy = policy or SandboxPolicy()
    if not argv:
        raise MCPServerError("start_failed", "empty command line")
    root = Path(tempfile.mkdtemp(prefix="agentgym-mcp-"))
    workdir, home = root / "work", root / "home"
    for d in (workdir, home, root / "tmp"):
        d.mkdir()
    env = {"PATH": os.environ.get("PATH", os.defpath), "LANG": os.environ.get("LANG", "C.UTF-8"),
           "HOME": str(home), "TMPDIR": str(root / "tmp")}  # fmt: skip
    env |= {k: os.environ[k] for k in policy.env_allow if k in os.environ}
    env |= {k: fill(v, workdir, home) for k, v in policy.env.items()}
    command = [fill(a, workdir, home) for a in argv]
    program = shutil.which(command[0], path=env["PATH"])
    if program is None:  # checked here: behind `unshare` it would only show as exit code 127
        shutil.rmtree(root, ignore_errors=True)
        raise MCPServerError("start_failed", f"cannot start {command[0]}: not found or not executable")
    command[0] = program

    isolation = None
    if not policy.network:
        isolation = network_isolation_prefix()
        if isolation is None and policy.require_network_isolation:
            shutil.rmtree(root, ignore_errors=True)
            raise MCPServerError(
                "start_failed", "network isolation is required but `unshare --net` is not permitted"
            )

    cgroup, nproc, process_limit = None, None, "none"
    if policy.max_processes:
        cgroup = _make_pids_cgroup(policy.max_processes)
        if cgroup is not None:
            process_limit = "cgroup"
        elif os.geteuid() != 0:
            nproc, process_limit = _user_tasks() + policy.max_processes, "rlimit"
    return Launch(root, command, env, isolation, cgroup, _rlimits(policy, nproc), process_limit)


async def start(argv: tuple[str, ...] | list[str], policy: SandboxPolicy | None = None) -> SandboxedProcess:
    """Spawn `argv` in the sandbox (module doc); the caller must `await proc.close()`."""
    return await spawn(prepare(argv, policy))


async def spawn(launch: Launch) -> SandboxedProcess:
    """Spawn a prepared process (`prepare`); the caller must `await proc.close()`."""
    try:
        proc = await asyncio.create_subprocess_exec(
            *(launch.isolation or ()),
            *(("--",) if launch.isolation else ()),
            *launch.command,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=launch.env,
            cwd=launch.workdir,
            start_new_session=True,
            preexec_fn=_preexec(launch.limits, launch.cgroup),
            limit=STDOUT_LINE_LIMIT,
        )
    except (OSError, subprocess.SubprocessError, ValueError) as e:
        launch.discard()
        raise MCPServerError("start_failed", f"cannot start {launch.command[0]}: {e}") from None
    return SandboxedProcess(
        proc, launch.root, launch.cgroup, launch.isolation is not None, launch.process_limit
    )


@contextlib.asynccontextmanager
async def sandboxed(
    argv: tuple[str, ...] | list[str], policy: SandboxPolicy | None = None
) -> AsyncIterator[SandboxedProcess]:
    """`start(argv, policy)`, closed on every way out."""
    proc = await start(argv, policy)
    try:
        yield proc
    finally:
        await proc.close()
