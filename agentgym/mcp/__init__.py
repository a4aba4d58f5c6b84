"""Real MCP servers: install (`launch`), sandbox (`sandbox`) and talk to them (`client`).

`connect(spec, timeout=…)` is the entry point: it installs an npm or PyPI server into the cache
once, starts it in a sandbox (scrubbed environment, resource limits, no network unless asked, the
whole process tree killed on exit) or reaches a streamable-HTTP URL, and yields an initialised
session. Every failure is an `MCPServerError` with a `kind`. The live scraper
(`agentgym.repository.scrape`) and the real-server episode backend are built on this layer.
"""

from agentgym.mcp.client import Connection, connect
from agentgym.mcp.errors import ERROR_KINDS, MCPServerError
from agentgym.mcp.launch import InstalledServer, ServerSpec, install
from agentgym.mcp.sandbox import SandboxedProcess, SandboxPolicy, sandboxed

__all__ = [
    "ERROR_KINDS",
    "Connection",
    "InstalledServer",
    "MCPServerError",
    "SandboxPolicy",
    "SandboxedProcess",
    "ServerSpec",
    "connect",
    "install",
    "sandboxed",
]
