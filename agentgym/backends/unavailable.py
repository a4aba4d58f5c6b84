"""UnavailableBackend: the honest answer for tools nothing here can execute.

Real tools without known semantics (most crawled tools) need a world model (`WorldModelBackend`)
or their real server (an MCP backend). When an env is given neither, their calls still get an
answer — a typed `backend_error` naming what to configure — so the call is recorded and graded
(`call` criteria with `succeeded: null` score the call pattern, not its result) instead of the
episode failing at reset. It is last in the env's default backend list, after the simulator.
"""

from __future__ import annotations

from typing import Any, ClassVar

from agentgym.backends.base import Episode, ToolResult
from agentgym.spec.tool import ToolSpec


class UnavailableBackend:
    name: ClassVar[str] = "unavailable"
    is_sync = True

    def handles(self, tool: ToolSpec) -> bool:
        return True

    async def start_episode(self, episode: Episode) -> None:
        return None

    async def end_episode(self, episode: Episode) -> None:
        return None

    async def call(self, tool: ToolSpec, arguments: dict[str, Any], episode: Episode) -> ToolResult:
        return ToolResult.failure(
            "backend_error",
            f"{tool.name} is a real tool ({tool.provenance.server}) with no simulator; this environment "
            "has no world-model or MCP backend configured to run it",
        )
