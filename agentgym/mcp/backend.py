"""MCPBackend: real MCP servers as an episode backend, one fresh server session per episode.

`MCPBackend({server: spec})` serves the tools whose `provenance.server` is a key (the tool's
`provenance.original_name` is what the server is asked to run). The first call to a server in an
episode starts it (stdio: installed and launched through `agentgym.mcp.client.connect` — forked
from a fork server with `prefork=True`, for Python servers outside containers — or a
streamable-HTTP URL) and the session lives until `end_episode`, so state persists across the
calls of an episode and never across episodes. An untrusted npm server runs inside a sandbox
container (`container=True`, the default for npm specs): `docker run -i` of the sandbox image,
no network, read-only root, the installed package mounted read-only, a tmpfs `/work` for its
files, labelled for the reaper and removed when the episode ends.

Each session runs in its own task (an actor serving a queue), because the SDK's task groups must
be entered and left by the same task while an episode's calls and its end may come from different
ones. Failures are observations, never exceptions or hangs: a tool's own error (`isError`) is a
`tool_error`; a server time-out is `timeout`; a crash, a protocol error or a failed start is
`backend_error` with the server's message — and after a crash the next call starts a new server,
saying that its state was lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import uuid
from dataclasses import dataclass, field
from typing import Any, ClassVar

from pydantic import Field

from agentgym.backends.base import Episode, ToolResult
from agentgym.jsonutil import dumps_str
from agentgym.mcp.errors import MCPServerError
from agentgym.mcp.launch import InstalledServer, ServerSpec
from agentgym.spec.base import Record
from agentgym.spec.tool import ToolSpec

KEY = "mcp"
MOUNT = "/srv/mcp"
"""Where an installed server's folder is mounted (read-only) in its container."""


class MCPServerConfig(Record):
    """How one server is reached."""

    spec: str
    """Server spec (`npm:PKG@v`, `pypi:PKG==v`, a command line, or an http(s) URL)."""
    container: bool | None = None
    """Run it inside a sandbox container (default: yes for npm servers, which run on the image's node)."""
    env: dict[str, str] = Field(default_factory=dict)
    """Environment of the server (e.g. `MEMORY_FILE_PATH`)."""
    timeout_s: float = Field(default=30.0, gt=0)
    """Start + initialise limit, and each call's limit."""
    memory_mb: int = Field(default=512, ge=64)
    """Container memory limit."""
    prefork: bool = False
    """Fork a Python server from a fork server that imported the SDK once, instead of spawning it
    (`agentgym.mcp.prefork`: milliseconds instead of a CPU-second per episode; not in a container)."""


def container_argv(installed: InstalledServer, cfg: MCPServerConfig, name: str) -> tuple[str, ...]:
    """`docker run -i ...` that runs an installed npm server in the sandbox image (module doc)."""
    from agentgym.sandbox.docker_sandbox import LABEL
    from agentgym.sandbox.image import USER_ID, image_tag

    if installed.root is None or not installed.argv or os.path.basename(installed.argv[0]) != "node":
        raise MCPServerError("start_failed", f"{installed.name}: only npm (node) servers run in a container")
    root = installed.root
    argv = [
        "docker", "run", "-i", "--rm", "--pull", "never", "--name", name,
        "--label", f"{LABEL}=1", "--label", f"{LABEL}.pid={os.getpid()}", "--label", f"{LABEL}.host={socket.gethostname()}",
        "--network", "none", "--read-only", "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
        "--user", f"{USER_ID}:{USER_ID}", "--memory", f"{cfg.memory_mb}m", "--memory-swap", f"{cfg.memory_mb}m",
        "--pids-limit", "128", "--tmpfs", f"/work:rw,size=64m,uid={USER_ID},gid={USER_ID}", "--workdir", "/work",
        "-v", f"{root}:{MOUNT}:ro",
    ]  # fmt: skip
    for k, v in cfg.env.items():
        argv += ["-e", f"{k}={v}"]
    inside = [a.replace(root, MOUNT, 1) if a.startswith(root) else a for a in installed.argv[1:]]
    return (*argv, image_tag(), "node", *inside)


@dataclass(slots=True)
class _Session:
    """One server's session, owned by its own task (see module doc)."""

    server: str
    cfg: MCPServerConfig
    queue: asyncio.Queue[tuple[str, dict[str, Any], asyncio.Future[Any]] | None] = field(
        default_factory=asyncio.Queue
    )
    ready: asyncio.Future[Any] | None = None
    task: asyncio.Task[None] | None = None
    container: str | None = None
    dead: str | None = None

    async def run(self) -> None:
        from agentgym.mcp.client import connect

        spec = (
            ServerSpec.parse(self.cfg.spec, env=self.cfg.env)
            if self.cfg.env
            else ServerSpec.parse(self.cfg.spec)
        )
        use_container = self.cfg.container if self.cfg.container is not None else spec.kind == "npm"
        wrap = None
        if use_container:
            self.container = f"agentgym-mcp-{uuid.uuid4().hex[:12]}"
            wrap = lambda inst: container_argv(inst, self.cfg, self.container)  # noqa: E731
        assert self.ready is not None
        try:
            async with connect(spec, timeout=self.cfg.timeout_s, wrap=wrap, prefork=self.cfg.prefork) as conn:
                self.ready.set_result(True)
                while (item := await self.queue.get()) is not None:
                    name, args, fut = item
                    try:
                        fut.set_result(await conn.call_tool(name, args, timeout=self.cfg.timeout_s))
                    except MCPServerError as e:
                        fut.set_exception(e)
                        if e.kind in ("crashed", "protocol_error"):
                            self.dead = str(e)
                            break
        except MCPServerError as e:
            self.dead = str(e)
            if not self.ready.done():
                self.ready.set_exception(e)
        finally:
            self._drain()
            await self._remove_container()

    def _drain(self) -> None:
        while not self.queue.empty():
            item = self.queue.get_nowait()
            if item is not None and not item[2].done():
                item[2].set_exception(MCPServerError("crashed", self.dead or "the server session ended"))

    async def _remove_container(self) -> None:
        if self.container is None:
            return
        from agentgym.sandbox.errors import SandboxError, docker_client

        def rm() -> None:
            with contextlib.suppress(SandboxError, Exception):
                docker_client().api.remove_container(self.container, force=True)

        await asyncio.to_thread(rm)

    async def call(self, name: str, args: dict[str, Any]) -> Any:
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        await self.queue.put((name, args, fut))
        return await asyncio.wait_for(fut, self.cfg.timeout_s + 10)

    async def close(self) -> None:
        if self.task is not None and not self.task.done():
            await self.queue.put(None)
            try:
                await asyncio.wait_for(self.task, 15)
            except (TimeoutError, asyncio.CancelledError):
                self.task.cancel()
        await self._remove_container()


class MCPBackend:
    name: ClassVar[str] = "mcp"
    is_sync = False

    def __init__(self, servers: dict[str, MCPServerConfig | str]) -> None:
        self.servers = {
            k: v if isinstance(v, MCPServerConfig) else MCPServerConfig(spec=v) for k, v in servers.items()
        }

    def handles(self, tool: ToolSpec) -> bool:
        return tool.provenance.server in self.servers

    async def start_episode(self, episode: Episode) -> None:
        episode.extras[KEY] = {}

    async def end_episode(self, episode: Episode) -> None:
        sessions: dict[str, _Session] = episode.extras.pop(KEY, {}) or {}
        await asyncio.gather(*(s.close() for s in sessions.values()))

    async def _session(self, episode: Episode, server: str) -> tuple[_Session, str]:
        sessions: dict[str, _Session] = episode.extras.setdefault(KEY, {})
        note = ""
        s = sessions.get(server)
        if s is not None and s.dead:
            await s.close()
            note = f"(the previous {server} server died: {s.dead}; a new one was started, its state is lost) "
            s = None
        if s is None:
            s = _Session(server, self.servers[server])
            s.ready = asyncio.get_running_loop().create_future()
            s.task = asyncio.create_task(s.run())
            sessions[server] = s
            await asyncio.wait_for(asyncio.shield(s.ready), s.cfg.timeout_s + 30)
        return s, note

    async def call(self, tool: ToolSpec, arguments: dict[str, Any], episode: Episode) -> ToolResult:
        episode.calls += 1
        server = tool.provenance.server
        try:
            session, note = await self._session(episode, server)
            result = await session.call(tool.provenance.original_name, arguments)
        except MCPServerError as e:
            kind = "timeout" if e.kind == "timeout" else "backend_error"
            return ToolResult.failure(kind, f"MCP server {server}: {e}")  # type: ignore[arg-type]
        except TimeoutError:
            return ToolResult.failure("timeout", f"MCP server {server} did not answer in time")
        text = "\n".join(getattr(c, "text", "") for c in result.content if getattr(c, "type", "") == "text")
        structured = getattr(result, "structured_content", None)
        if getattr(result, "is_error", False):
            return ToolResult.failure("tool_error", note + (text or "the tool reported an error"))
        content = note + (text if text else dumps_str(structured) if structured is not None else "")
        return ToolResult(content, structured)
