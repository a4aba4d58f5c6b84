"""DockerSandbox: one locked-down container, commands bounded in time and output, files in and out.

A sandbox is a container of the locally built image (`sandbox.image`) whose main process (under
`docker-init`) is the in-container runner serving requests over the attached stdin/stdout, with: no network (`network_mode=none`; `SandboxConfig.network` opts in to the
host network, never a bridge), a read-only root, a writable tmpfs `/work` (and `/tmp`), memory
(swap included), pids and CPU limits, `no-new-privileges`, every capability dropped, and the
non-root user 1000. Every container is labelled `agentgym.sandbox=1` with its owner's pid and host,
so `reap()` (and `agentgym sandbox gc`) can remove leftovers of any crash; a process removes its own
at exit (`atexit`) and reaps containers of dead owners when it creates its first sandbox.

`exec(argv)` is one JSON line to the runner (`/opt/agentgym/run.py --serve`) and one back, so a
warm command costs milliseconds: wall-clock timeout and output cap are enforced inside (the
command's process group is killed), and a host-side deadline above that — a sandbox that stops
answering is killed and reported, never waited on. Files move through the runner too (`put_file`,
`get_file`, `list_files`), since Docker cannot copy into a tmpfs or a read-only root. The Docker SDK is blocking: every call runs in
a worker thread, so the API is async.
"""

from __future__ import annotations

import asyncio
import atexit
import base64
import contextlib
import json
import os
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any

from pydantic import Field

from agentgym.sandbox.errors import SandboxError, docker_client
from agentgym.sandbox.image import USER_ID, image_tag
from agentgym.spec.base import Record

LABEL = "agentgym.sandbox"
RUNNER = "/opt/agentgym/run.py"


class SandboxConfig(Record):
    """Limits and options of one sandbox (the defaults are the safe ones)."""

    image: str | None = None
    """Image tag (default: the current recipe's `agentgym-sandbox:<hash>`)."""
    memory_mb: int = Field(default=256, ge=16)
    """Memory limit, swap included."""
    pids: int = Field(default=64, ge=8)
    """Most processes and threads at once (a fork bomb stops here)."""
    cpus: float = Field(default=1.0, gt=0)
    """CPU share."""
    network: bool = False
    """Opt in to the host network (there is no bridge on these machines); off: no network at all."""
    timeout_s: float = Field(default=10.0, gt=0)
    """Default wall-clock limit of one exec."""
    max_output_bytes: int = Field(default=65_536, ge=1024)
    """Most bytes kept of each of stdout and stderr; more kills the command."""
    work_mb: int = Field(default=64, ge=1)
    """Size of the writable /work tmpfs."""
    mounts: dict[str, str] = Field(default_factory=dict)
    """Host path → container path, mounted read-only (e.g. an installed MCP server)."""


@dataclass(slots=True)
class ExecResult:
    """What one command did."""

    exit_code: int
    stdout: str
    stderr: str
    timed_out: bool = False
    truncated: bool = False
    duration_s: float = 0.0
    error: str | None = None
    """Why the command did not run to its end, in words (timeout, output cap, killed, sandbox died)."""

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and self.error is None


def _describe(r: dict[str, Any], timeout: float, cap: int) -> str | None:
    if r["timed_out"]:
        return f"timed out after {timeout:g} s (killed)"
    if r["truncated"]:
        return f"output over {cap} bytes (killed; output truncated)"
    if r["exit_code"] in (-9, 137):
        return "killed by SIGKILL (out of memory?)"
    if r["exit_code"] < 0:
        return f"killed by signal {-r['exit_code']}"
    return None


_owned: set[str] = set()
_owned_lock = threading.Lock()
_reaped_once = False


def _remove_owned() -> None:
    if not _owned:
        return
    try:
        client = docker_client()
    except SandboxError:
        return
    for cid in list(_owned):
        with contextlib.suppress(Exception):  # already gone
            client.api.remove_container(cid, force=True)
        _owned.discard(cid)


atexit.register(_remove_owned)


def reap(everything: bool = False) -> list[str]:
    """Remove agentgym sandbox containers: those whose owner process is gone (all with `everything`).
    Returns the removed container ids."""
    client = docker_client()
    host = socket.gethostname()
    removed = []
    for c in client.api.containers(all=True, filters={"label": f"{LABEL}=1"}):
        labels = c.get("Labels") or {}
        owner = int(labels.get(f"{LABEL}.pid", "0") or 0)
        mine_alive = labels.get(f"{LABEL}.host") == host and owner > 0 and _alive(owner)
        if everything or not mine_alive:
            try:
                client.api.remove_container(c["Id"], force=True)
                removed.append(c["Id"])
            except Exception:
                pass
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class DockerSandbox:
    """See module doc. Use as `async with DockerSandbox(cfg) as sb: await sb.exec([...])`."""

    def __init__(self, config: SandboxConfig | None = None) -> None:
        self.config = config or SandboxConfig()
        self.id: str | None = None
        self.dead = False
        self.started_s = 0.0
        self._sock: Any = None
        self._keep: Any = None
        self._buf = b""
        self._lock = threading.Lock()

    # ---- lifecycle ---------------------------------------------------------------------------

    async def __aenter__(self) -> DockerSandbox:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def start(self) -> None:
        await asyncio.to_thread(self.start_sync)

    def start_sync(self) -> None:
        global _reaped_once
        client = docker_client()
        if not _reaped_once:
            _reaped_once = True
            reap()
        cfg = self.config
        t0 = time.perf_counter()
        host = client.api.create_host_config(
            read_only=True,
            tmpfs={
                "/work": f"rw,size={cfg.work_mb}m,uid={USER_ID},gid={USER_ID},mode=0755",
                "/tmp": f"rw,size=16m,uid={USER_ID},gid={USER_ID},mode=1777",
            },
            mem_limit=f"{cfg.memory_mb}m",
            memswap_limit=f"{cfg.memory_mb}m",
            pids_limit=cfg.pids,
            nano_cpus=int(cfg.cpus * 1e9),
            security_opt=["no-new-privileges"],
            cap_drop=["ALL"],
            network_mode="host" if cfg.network else "none",
            init=True,
            binds={src: {"bind": dst, "mode": "ro"} for src, dst in cfg.mounts.items()},
        )
        try:
            created = client.api.create_container(
                cfg.image or image_tag(),
                command=["python3", RUNNER, "--serve"],
                stdin_open=True,
                user=f"{USER_ID}:{USER_ID}",
                working_dir="/work",
                labels={
                    f"{LABEL}": "1",
                    f"{LABEL}.pid": str(os.getpid()),
                    f"{LABEL}.host": socket.gethostname(),
                    f"{LABEL}.created": str(int(time.time())),
                },
                host_config=host,
                network_disabled=not cfg.network,
            )
        except Exception as e:
            raise SandboxError(f"cannot create a sandbox from {cfg.image or image_tag()}: {e}") from None
        self.id = created["Id"]
        with _owned_lock:
            _owned.add(self.id)
        try:
            sock = client.api.attach_socket(
                self.id, params={"stdin": 1, "stdout": 1, "stderr": 1, "stream": 1}
            )
            self._sock = getattr(sock, "_sock", sock)
            self._keep = sock  # the wrapper owns the connection; keep it alive
            client.api.start(self.id)
        except Exception as e:
            self.close_sync()
            raise SandboxError(f"cannot start the sandbox container: {e}") from None
        self.started_s = time.perf_counter() - t0

    async def close(self) -> None:
        await asyncio.to_thread(self.close_sync)

    def close_sync(self) -> None:
        if self.id is None:
            return
        with contextlib.suppress(Exception):
            self._sock.close()
        with contextlib.suppress(Exception):  # already gone
            docker_client().api.remove_container(self.id, force=True)
        with _owned_lock:
            _owned.discard(self.id)
        self.id = None

    # ---- commands ----------------------------------------------------------------------------

    async def exec(
        self,
        argv: list[str] | str,
        *,
        timeout_s: float | None = None,
        stdin: str | None = None,
        cwd: str = "/work",
    ) -> ExecResult:
        """Run `argv` (a string runs through `sh -c`) inside the sandbox; see module doc."""
        return await asyncio.to_thread(self.exec_sync, argv, timeout_s=timeout_s, stdin=stdin, cwd=cwd)

    def exec_sync(
        self,
        argv: list[str] | str,
        *,
        timeout_s: float | None = None,
        stdin: str | None = None,
        cwd: str = "/work",
    ) -> ExecResult:
        timeout = timeout_s or self.config.timeout_s
        cap = self.config.max_output_bytes
        args = ["sh", "-c", argv] if isinstance(argv, str) else list(argv)
        req = {
            "op": "exec",
            "argv": args,
            "timeout_s": timeout,
            "max_output": cap,
            "stdin": stdin,
            "cwd": cwd,
        }
        r = self.request(req, deadline=timeout + 10)
        if "error" in r and "exit_code" not in r:
            return ExecResult(1, "", "", error=f"the sandbox runner failed: {r['error']}")
        return ExecResult(
            exit_code=r["exit_code"] if r["exit_code"] >= 0 else 128 - r["exit_code"],
            stdout=r["stdout"],
            stderr=r["stderr"],
            timed_out=r["timed_out"],
            truncated=r["truncated"],
            duration_s=r["duration_s"],
            error=_describe(r, timeout, cap),
        )

    def request(self, req: dict[str, Any], deadline: float = 30.0) -> dict[str, Any]:
        """One request to the in-container runner and its answer. Past `deadline` (or when the
        container is gone) the sandbox is killed and marked dead, and a SandboxError says why."""
        if self.id is None or self.dead:
            raise SandboxError("the sandbox is not running (closed, or killed after it stopped answering)")
        with self._lock:
            try:
                self._sock.settimeout(deadline)
                self._sock.sendall(json.dumps(req).encode() + b"\n")
                return json.loads(self._line())
            except (OSError, ValueError, EOFError) as e:
                why = (
                    "stopped answering" if isinstance(e, TimeoutError) else f"died ({type(e).__name__}: {e})"
                )
                self._kill()
                raise SandboxError(f"the sandbox {why}; it was killed") from None

    def _line(self) -> bytes:
        """The next line the runner wrote on stdout (frames of Docker's attach stream)."""
        while b"\n" not in self._buf:
            head = self._recv(8)
            kind, size = head[0], int.from_bytes(head[4:8], "big")
            body = self._recv(size)
            if kind == 1:
                self._buf += body
        line, _, self._buf = self._buf.partition(b"\n")
        return line

    def _recv(self, n: int) -> bytes:
        out = b""
        while len(out) < n:
            chunk = self._sock.recv(n - len(out))
            if not chunk:
                raise EOFError("the sandbox closed its output")
            out += chunk
        return out

    def _kill(self) -> None:
        self.dead = True
        with contextlib.suppress(Exception):  # already gone
            docker_client().api.kill(self.id)

    # ---- files -------------------------------------------------------------------------------

    async def put_file(self, path: str, data: bytes | str) -> None:
        await asyncio.to_thread(self.put_file_sync, path, data)

    def put_file_sync(self, path: str, data: bytes | str) -> None:
        blob = data.encode() if isinstance(data, str) else data
        r = self.request({"op": "write", "path": path, "data": base64.b64encode(blob).decode()})
        if "error" in r:
            raise SandboxError(f"cannot write {path} in the sandbox: {r['error']}")

    async def get_file(self, path: str, max_bytes: int = 1 << 20) -> bytes:
        return await asyncio.to_thread(self.get_file_sync, path, max_bytes)

    def get_file_sync(self, path: str, max_bytes: int = 1 << 20) -> bytes:
        r = self.request({"op": "read", "path": path, "max_bytes": max_bytes})
        if "error" in r:
            raise SandboxError(f"cannot read {path}: {r['error']}")
        return base64.b64decode(r["data"])

    async def list_files(self, path: str = "/work") -> list[str]:
        r = await asyncio.to_thread(self.request, {"op": "list", "path": path})
        if "error" in r:
            raise SandboxError(f"cannot list {path}: {r['error']}")
        return r["files"]
