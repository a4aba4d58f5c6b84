"""Fixtures for the MCP layer: the HTTP toy server, and real servers installed once per run.

The real servers are npm and PyPI packages installed into agentgym's cache (`real_servers`), once
per test run and concurrently, then reused from the cache by later runs.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Iterator

import pytest
from local_servers import REAL, SERVERS, free_port, wait_for_port


@pytest.fixture(scope="module")
def http_toy() -> Iterator[str]:
    """The toy server over streamable HTTP on 127.0.0.1 (a subprocess); yields its URL."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, str(SERVERS / "toy_server.py"), "--http", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        wait_for_port(port, proc)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="session")
def real_servers():
    """The real servers of `REAL`, installed (once per run, concurrently): name → InstalledServer."""
    from agentgym.mcp import ServerSpec, install

    async def all_of() -> list:
        return await asyncio.gather(*(install(ServerSpec.parse(s)) for s in REAL.values()))

    return dict(zip(REAL, asyncio.run(all_of()), strict=True))
