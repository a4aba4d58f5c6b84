"""ToolBackend: the contract every executor of tool calls meets (simulated, MCP server, sandbox).

In: a ToolSpec, arguments already validated against its input schema, and the `Episode` the call
belongs to. Out: a `ToolResult` — the text the model sees, the structured value when there is one,
and a typed error kind when the call failed. A backend never raises for a failed call; it raises
only for its own misconfiguration. Backends are async; one that never suspends sets `is_sync` so
`ToolUseEnv.step` can drive it without an event loop. `start_episode`/`end_episode` bracket an
episode (a real MCP backend opens and closes its server session there, so state never leaks).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

from agentgym.jsonutil import dumps_str
from agentgym.spec.tool import ToolSpec
from agentgym.spec.trajectory import ErrorKind
from agentgym.world.cache import ReplayCache
from agentgym.world.faults import NO_FAULTS, FaultConfig, FaultInjector
from agentgym.world.state import WorldState


@dataclass(slots=True)
class ToolResult:
    """The answer to one call."""

    content: str
    """Text the model sees (JSON for structured results and errors)."""
    structured: Any = None
    """Structured result (MCP structuredContent), when there is one."""
    error: ErrorKind | None = None
    """Why the call failed; None on success."""
    injected: bool = False
    """The failure was injected by controlled stochasticity."""
    cached: bool = False
    """Served from the replay cache."""

    @property
    def ok(self) -> bool:
        return self.error is None

    @classmethod
    def failure(cls, kind: ErrorKind, message: str, *, injected: bool = False) -> ToolResult:
        return cls(dumps_str({"error": kind, "message": message}), None, kind, injected)


@dataclass(slots=True)
class Episode:
    """Per-episode context shared by the backends of one episode."""

    seed: int | None
    """Episode seed."""
    state: WorldState
    """The world the simulated tools act on."""
    faults: FaultInjector
    """Seeded fault draws."""
    cache: ReplayCache | None = None
    """Replay cache (shared across episodes; keys include the state lineage)."""
    calls: int = 0
    """Calls made so far."""
    extras: dict[str, Any] = field(default_factory=dict)
    """Backend-private per-episode handles (e.g. an MCP session)."""
    task: Any = None
    """The task being played (a `TaskSpec`), for backends whose set-up depends on it."""
    results: dict[str, Any] = field(default_factory=dict)
    """What backends measured for grading at the end (criterion id → outcome; see `finalize`)."""

    @classmethod
    def new(
        cls,
        state: WorldState,
        seed: int | None,
        faults: FaultConfig = NO_FAULTS,
        cache: ReplayCache | None = None,
    ) -> Episode:
        return cls(seed, state, FaultInjector(faults, seed), cache)


class ToolBackend(Protocol):
    """See module doc."""

    name: ClassVar[str]
    is_sync: bool

    def handles(self, tool: ToolSpec) -> bool:
        """Whether this backend can execute `tool`."""

    async def call(self, tool: ToolSpec, arguments: dict[str, Any], episode: Episode) -> ToolResult:
        """Execute one call."""

    async def start_episode(self, episode: Episode) -> None:
        """Acquire per-episode resources."""

    async def end_episode(self, episode: Episode) -> None:
        """Release per-episode resources (always called, also after errors)."""


class GradingBackend(ToolBackend, Protocol):
    """A backend that also measures criteria when the episode ends (before `end_episode`), e.g.
    the sandbox running hidden tests: it writes outcomes into `episode.results`."""

    async def finalize(self, episode: Episode, task: Any) -> None:
        """Measure what the task's rubric needs from this backend."""
