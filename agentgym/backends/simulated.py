"""SimulatedBackend: tools with known semantics, run on the deterministic engine over WorldState.

Per call: draw faults (seeded per episode), serve deterministic reads from the replay cache when
the state lineage matches, otherwise run the engine; validate the result against the tool's output
schema (a mismatch is an `invalid_output` error, never passed on silently). Nothing here suspends,
so `is_sync` is True and `env.step` runs it without an event loop.
"""

from __future__ import annotations

from typing import Any, ClassVar

from agentgym.backends.base import Episode, ToolResult
from agentgym.jsonutil import dumps_str
from agentgym.schema import validator
from agentgym.spec.tool import ToolSpec
from agentgym.world.engine import Engine, ToolFailure

_READS = frozenset({"get", "list", "search", "count"})
_PAGED = frozenset({"list", "search"})


class SimulatedBackend:
    name: ClassVar[str] = "simulated"
    is_sync = True

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def handles(self, tool: ToolSpec) -> bool:
        return tool.semantics is not None and tool.semantics.collection in self.engine.entities

    async def start_episode(self, episode: Episode) -> None:
        return None

    async def end_episode(self, episode: Episode) -> None:
        return None

    async def call(self, tool: ToolSpec, arguments: dict[str, Any], episode: Episode) -> ToolResult:
        return self.run(tool, arguments, episode)

    def run(self, tool: ToolSpec, arguments: dict[str, Any], episode: Episode) -> ToolResult:
        """The synchronous body of `call`."""
        sem = tool.semantics
        if sem is None:
            return ToolResult.failure("backend_error", f"{tool.name} has no known semantics to simulate")
        episode.calls += 1
        fault = episode.faults.draw(tool.name, sem.operation in _PAGED)
        if fault.error is not None:
            return ToolResult.failure(fault.error, fault.message, injected=True)
        shape = fault.shape
        cacheable = episode.cache is not None and sem.operation in _READS and not sem.touch and shape is None
        key = b""
        if cacheable:
            key = episode.cache.key(episode.state.lineage, tool.name, arguments)  # type: ignore[union-attr]
            hit = episode.cache.get(key)  # type: ignore[union-attr]
            if hit is not None:
                return ToolResult(hit[0], hit[1], cached=True)
        try:
            result = self.engine.run(tool, arguments, episode.state, shape)
        except ToolFailure as e:
            return ToolResult.failure(e.kind, e.message)
        if tool.output_schema is not None:
            reason = validator(tool.output_schema).check(result)
            if reason is not None:
                return ToolResult.failure(
                    "invalid_output", f"{tool.name} produced a result that breaks its output schema: {reason}"
                )
        content = dumps_str(result)
        if cacheable:
            episode.cache.put(key, (content, result))  # type: ignore[union-attr]
        return ToolResult(content, result, injected=shape is not None and (shape.partial or shape.empty))
