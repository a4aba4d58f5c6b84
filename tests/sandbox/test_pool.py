"""The warm pool: instant hand-out, never reused, a host-wide cap, a creation-rate limit."""

from __future__ import annotations

import asyncio
import time

import pytest

from agentgym.sandbox.errors import SandboxError
from agentgym.sandbox.pool import PoolConfig, SandboxPool, live_count

pytestmark = pytest.mark.usefixtures("image", "no_leftovers")


def test_warm_sandboxes_are_handed_out_at_once_and_never_reused():
    async def go():
        async with SandboxPool(config=PoolConfig(warm=2)) as pool:
            t0 = time.perf_counter()
            sb = await pool.acquire()
            took = time.perf_counter() - t0
            await sb.put_file("/work/mine.txt", "secret")
            first = sb.id
            await pool.release(sb)
            again = await pool.acquire()
            files = await again.list_files()
            await pool.release(again)
            return took, first, again.id, files

    took, first, second, files = asyncio.run(go())
    assert took < 0.1  # a warm one: no container start on the critical path
    assert first != second and files == []


def test_host_wide_cap_refuses_past_the_limit():
    async def go():
        cap = live_count() + 2
        async with SandboxPool(config=PoolConfig(warm=0, max_live=cap, wait_s=1.0)) as pool:
            a, b = await pool.acquire(), await pool.acquire()
            try:
                with pytest.raises(SandboxError, match="cap"):
                    await pool.acquire()
            finally:
                await pool.release(a)
                await pool.release(b)

    asyncio.run(go())


def test_creation_rate_is_limited():
    async def go():
        async with SandboxPool(config=PoolConfig(warm=0, create_per_s=2.0)) as pool:
            t0 = time.perf_counter()
            boxes = await asyncio.gather(*(pool.acquire() for _ in range(4)))
            took = time.perf_counter() - t0
            await asyncio.gather(*(pool.release(b) for b in boxes))
            return took

    assert asyncio.run(go()) >= 0.9  # 2 tokens at once, then one every 0.5 s
