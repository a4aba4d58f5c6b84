"""SandboxPool: warm sandboxes ready to hand out, under a host-wide cap and a creation-rate limit.

`acquire()` returns a started `DockerSandbox` at once when a warm one is ready (and starts a
replacement in the background), else starts one. A sandbox is never reused: `release()` removes
it (in the background), so one episode's files and processes never reach another. Creation is
bounded two ways: at most `max_live` agentgym sandboxes on the whole host (counted from the
labelled containers of every process, under a file lock so two processes do not both take the
last slot; past the cap, `acquire` waits up to `wait_s`, then raises a SandboxError), and at most
`create_per_s` starts per second from this pool (a token bucket). `close()` removes the warm ones;
anything left by a crash is reaped by label (`docker_sandbox.reap`).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import time
from pathlib import Path

from pydantic import Field

from agentgym.sandbox.docker_sandbox import LABEL, DockerSandbox, SandboxConfig
from agentgym.sandbox.errors import SandboxError, docker_client
from agentgym.spec.base import Record


class PoolConfig(Record):
    warm: int = Field(default=2, ge=0)
    """Sandboxes kept started and waiting."""
    max_live: int = Field(default=128, ge=1)
    """Most agentgym sandboxes on this host at once (every process counted)."""
    create_per_s: float = Field(default=10.0, gt=0)
    """Most sandbox starts per second from this pool."""
    wait_s: float = Field(default=120.0, gt=0)
    """How long `acquire` waits for a free slot under the cap."""


def _lock_path() -> Path:
    root = Path(os.environ.get("AGENTGYM_CACHE", Path.home() / ".cache" / "agentgym"))
    root.mkdir(parents=True, exist_ok=True)
    return root / "sandbox.lock"


def live_count() -> int:
    """Agentgym sandbox containers on this host (all processes, running or not yet removed)."""
    return len(docker_client().api.containers(all=True, filters={"label": f"{LABEL}=1"}))


class SandboxPool:
    """See module doc."""

    def __init__(self, sandbox: SandboxConfig | None = None, config: PoolConfig | None = None) -> None:
        self.sandbox = sandbox or SandboxConfig()
        self.config = config or PoolConfig()
        self._warm: asyncio.Queue[DockerSandbox] = asyncio.Queue()
        self._filling: set[asyncio.Task[None]] = set()
        self._tokens = float(max(1.0, self.config.create_per_s))
        self._last = time.monotonic()
        self._rate = asyncio.Lock()
        self.created = 0

    async def __aenter__(self) -> SandboxPool:
        await self.fill()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _take_token(self) -> None:
        async with self._rate:
            while True:
                now = time.monotonic()
                self._tokens = min(
                    self.config.create_per_s, self._tokens + (now - self._last) * self.config.create_per_s
                )
                self._last = now
                if self._tokens >= 1:
                    self._tokens -= 1
                    return
                await asyncio.sleep((1 - self._tokens) / self.config.create_per_s)

    def _start_under_cap(self) -> DockerSandbox:
        """Start one sandbox if the host has a free slot (checked and taken under a file lock)."""
        deadline = time.monotonic() + self.config.wait_s
        with open(_lock_path(), "a+") as lock:
            while True:
                fcntl.flock(lock, fcntl.LOCK_EX)
                try:
                    if live_count() < self.config.max_live:
                        sb = DockerSandbox(self.sandbox)
                        sb.start_sync()
                        self.created += 1
                        return sb
                finally:
                    fcntl.flock(lock, fcntl.LOCK_UN)
                if time.monotonic() > deadline:
                    raise SandboxError(
                        f"the host already runs {self.config.max_live} agentgym sandboxes (the cap); "
                        f"none freed in {self.config.wait_s:g} s"
                    )
                time.sleep(0.2)

    async def _new(self) -> DockerSandbox:
        await self._take_token()
        return await asyncio.to_thread(self._start_under_cap)

    async def _fill_one(self) -> None:
        with contextlib.suppress(SandboxError):
            await self._warm.put(await self._new())

    async def fill(self) -> None:
        """Start sandboxes until `warm` are waiting."""
        missing = self.config.warm - self._warm.qsize() - len(self._filling)
        await asyncio.gather(*(self._fill_one() for _ in range(max(0, missing))))

    def _refill_later(self) -> None:
        if self._warm.qsize() + len(self._filling) < self.config.warm:
            task = asyncio.create_task(self._fill_one())
            self._filling.add(task)
            task.add_done_callback(self._filling.discard)

    async def acquire(self) -> DockerSandbox:
        while not self._warm.empty():
            sb = self._warm.get_nowait()
            if not sb.dead and sb.id is not None:
                self._refill_later()
                return sb
            await sb.close()
        sb = await self._new()
        self._refill_later()
        return sb

    async def release(self, sb: DockerSandbox) -> None:
        await sb.close()

    async def close(self) -> None:
        # a refill in flight is a container being started in a thread: wait for it, then remove it
        await asyncio.gather(*list(self._filling), return_exceptions=True)
        while not self._warm.empty():
            await self._warm.get_nowait().close()
