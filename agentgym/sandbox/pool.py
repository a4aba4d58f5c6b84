"""SandboxPool: warm sandboxes ready to hand out, under a host-wide cap and a creation-rate limit.

`acquire()` returns a started `DockerSandbox` at once when a warm one is ready (and starts a
replacement in the background), else starts one. A sandbox is never reused: `release()` removes
it (in the background), so one episode's files and processes never reach another. Creation is
bounded two ways: at most `max_live` agentgym sandboxes on the whole host (counted from the
labelled containers of every process, under a file lock so two processes do not both take the
last slot; past the cap, `acquire` waits up to `wait_s`, then raises a SandboxError), and at most
`create_per_s` starts per second on the whole host (a one-second window of start times kept in
the same lock file). `close()` removes the warm ones;
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
    """Most sandbox starts per second on this host (every process counted)."""
    wait_s: float = Field(default=120.0, gt=0)
    """How long `acquire` waits for a free slot under the cap."""


def _lock_path() -> Path:
    root = Path(os.environ.get("AGENTGYM_CACHE", Path.home() / ".cache" / "agentgym"))
    root.mkdir(parents=True, exist_ok=True)
    return root / "sandbox.lock"


def _floats(text: str) -> list[float]:
    out = []
    for word in text.split():
        with contextlib.suppress(ValueError):
            out.append(float(word))
    return out


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
        self.created = 0

    async def __aenter__(self) -> SandboxPool:
        await self.fill()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def _start_under_cap(self) -> DockerSandbox:
        """Start one sandbox when the host has a free slot and the host-wide start rate allows it:
        both checked and taken under one file lock (the lock file holds the last second's starts)."""
        deadline = time.monotonic() + self.config.wait_s
        with open(_lock_path(), "a+") as lock:
            while True:
                fcntl.flock(lock, fcntl.LOCK_EX)
                try:
                    lock.seek(0)
                    now = time.time()
                    recent = [t for t in _floats(lock.read()) if now - t < 1.0]
                    if len(recent) < self.config.create_per_s and live_count() < self.config.max_live:
                        lock.seek(0)
                        lock.truncate()
                        lock.write(" ".join(f"{t:.4f}" for t in [*recent, now]))
                        lock.flush()
                        sb = DockerSandbox(self.sandbox)
                        sb.start_sync()
                        self.created += 1
                        return sb
                    capped = len(recent) < self.config.create_per_s  # the rate allowed it: the cap did not
                finally:
                    fcntl.flock(lock, fcntl.LOCK_UN)
                if capped and time.monotonic() > deadline:
                    raise SandboxError(
                        f"the host already runs {self.config.max_live} agentgym sandboxes (the cap); "
                        f"none freed in {self.config.wait_s:g} s"
                    )
                time.sleep(0.2 if capped else 0.05)

    async def _new(self) -> DockerSandbox:
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
