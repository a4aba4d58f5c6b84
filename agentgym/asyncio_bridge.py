"""Run agentgym's async core from synchronous code (the Gymnasium `step`/`reset` API).

`run_now` drives a coroutine that never suspends (all-simulated episodes) with no event loop at
all — the fast path behind `env.step`. `run_blocking` runs any coroutine to completion on a
private background loop thread, so the sync API also works with real I/O backends and from inside
a running loop (e.g. a notebook).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def run_now(coro: Coroutine[Any, Any, T]) -> T:
    """Complete `coro` synchronously; it must not suspend."""
    try:
        coro.send(None)
    except StopIteration as e:
        return e.value  # type: ignore[no-any-return]
    coro.close()
    raise RuntimeError(
        "the coroutine suspended on I/O; it needs an event loop (use run_blocking or the async API)"
    )


_loop: asyncio.AbstractEventLoop | None = None
_lock = threading.Lock()


def _background_loop() -> asyncio.AbstractEventLoop:
    global _loop
    with _lock:
        if _loop is None or _loop.is_closed():
            loop = asyncio.new_event_loop()
            threading.Thread(target=loop.run_forever, name="agentgym-loop", daemon=True).start()
            _loop = loop
        return _loop


def run_blocking(coro: Coroutine[Any, Any, T]) -> T:
    """Run `coro` on the background loop and wait for its result."""
    return asyncio.run_coroutine_threadsafe(coro, _background_loop()).result()
