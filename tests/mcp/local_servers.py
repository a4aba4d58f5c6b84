"""The local test servers (`servers/`) and what the tests need to run and watch them.

The servers are small Python programs on the installed `mcp` SDK (and one that speaks raw
JSON-RPC); each starts in about a second. `REAL` names the real npm and PyPI servers the network
tests install.
"""

from __future__ import annotations

import shlex
import socket
import subprocess
import time
from pathlib import Path

SERVERS = Path(__file__).parent / "servers"
REAL = {
    "memory": "npm:@modelcontextprotocol/server-memory@2026.8.31",
    "everything": "npm:@modelcontextprotocol/server-everything@2026.8.31",
    "time": "pypi:mcp-server-time==2026.10.19",
    "git": "pypi:mcp-server-git==2026.10.19",
}
"""Real servers the network tests install (npm and PyPI)."""


def local(script: str, *args: str) -> str:
    """The spec of a local test server: its script path (run with this Python) and arguments."""
    return shlex.join([str(SERVERS / script), *args])


def alive(pid: int) -> bool:
    """True while `pid` is a running process (a zombie is not: it only waits to be reaped)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rfind(")") + 2] != "Z"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, proc: subprocess.Popen, limit: float = 20.0) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the HTTP test server exited with code {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {limit}s")
