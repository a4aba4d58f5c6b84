"""Controlled stochasticity: seeded, configurable faults injected into simulated tool calls.

`FaultConfig` gives rates globally and per tool (glob patterns on the exposed name, first match
wins). `FaultInjector` is created per episode from its seed; when any rate is configured it draws exactly
two numbers per call whatever that tool's rates (so enabling faults for one tool never shifts
another's draws), and an episode with the same seed and the same calls replays exactly. With no
rates anywhere it draws nothing.
Transient faults (timeout, rate_limited, server_error) fail the call before it touches state;
shaping faults (empty, partial, small pages) bend list/search results. Rates default to zero.
"""

from __future__ import annotations

import fnmatch
import random
from dataclasses import dataclass
from functools import lru_cache

from pydantic import Field, model_validator

from agentgym.spec.base import Record
from agentgym.spec.trajectory import ErrorKind
from agentgym.world.engine import PageShape


class FaultRates(Record):
    """Per-call probabilities of each fault."""

    timeout: float = Field(default=0.0, ge=0, le=1)
    """The call times out (no effect on state)."""
    rate_limited: float = Field(default=0.0, ge=0, le=1)
    """The call is refused by a rate limit (no effect on state)."""
    server_error: float = Field(default=0.0, ge=0, le=1)
    """The server fails with an internal error (no effect on state)."""
    empty_result: float = Field(default=0.0, ge=0, le=1)
    """A list/search returns no items."""
    partial_result: float = Field(default=0.0, ge=0, le=1)
    """A list/search returns half a page and a cursor for the rest."""
    page_size: int | None = Field(default=None, ge=1)
    """Force list/search pages to at most this many items."""

    @model_validator(mode="after")
    def _sums(self) -> FaultRates:
        if self.timeout + self.rate_limited + self.server_error > 1:
            raise ValueError("transient fault rates sum above 1")
        if self.empty_result + self.partial_result > 1:
            raise ValueError("result fault rates sum above 1")
        return self

    @property
    def active(self) -> bool:
        return bool(
            self.timeout
            or self.rate_limited
            or self.server_error
            or self.empty_result
            or self.partial_result
            or self.page_size
        )


class FaultConfig(Record):
    """Fault rates for an episode: a default and per-tool overrides."""

    default: FaultRates = Field(default_factory=FaultRates)
    """Rates for tools no pattern matches."""
    per_tool: dict[str, FaultRates] = Field(default_factory=dict)
    """Glob on tool name → rates (first match wins, in insertion order)."""

    def rates_for(self, tool: str) -> FaultRates:
        return _rates_for(self, tool)

    @property
    def active(self) -> bool:
        """Whether any tool can see a fault at all."""
        return self.default.active or any(r.active for r in self.per_tool.values())

    def __hash__(self) -> int:
        return hash(self.model_dump_json())


@lru_cache(maxsize=65536)
def _rates_for(cfg: FaultConfig, tool: str) -> FaultRates:
    for pattern, rates in cfg.per_tool.items():
        if fnmatch.fnmatchcase(tool, pattern):
            return rates
    return cfg.default


NO_FAULTS = FaultConfig()

_MESSAGES: dict[str, str] = {
    "timeout": "the tool did not answer within 30 s; the call had no effect",
    "rate_limited": "rate limit exceeded: too many requests; retry in a moment",
    "server_error": "internal server error (500); the call had no effect",
}


@dataclass(slots=True)
class Fault:
    """What the injector decided for one call."""

    error: ErrorKind | None = None
    message: str = ""
    shape: PageShape | None = None


_NO_FAULT = Fault()


class FaultInjector:
    """Per-episode fault draws (see module doc)."""

    __slots__ = ("config", "rng")

    def __init__(self, config: FaultConfig, seed: int | None) -> None:
        self.config = config
        # No faults configured anywhere: no draws are needed for exact replay, so skip the RNG.
        self.rng = random.Random(0 if seed is None else seed) if config.active else None

    def draw(self, tool: str, shapes_results: bool) -> Fault:
        if self.rng is None:
            return _NO_FAULT
        u, v = self.rng.random(), self.rng.random()
        r = self.config.rates_for(tool)
        if not r.active:
            return Fault()
        for kind, p in (
            ("timeout", r.timeout),
            ("rate_limited", r.rate_limited),
            ("server_error", r.server_error),
        ):
            if u < p:
                return Fault(error=kind, message=_MESSAGES[kind])  # type: ignore[arg-type]
            u -= p
        if not shapes_results:
            return Fault()
        shape = PageShape(
            page_size=r.page_size,
            empty=v < r.empty_result,
            partial=r.empty_result <= v < r.empty_result + r.partial_result,
        )
        return Fault(shape=shape)
