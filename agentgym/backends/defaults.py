"""The backends an environment gets when it is given none, chosen by what its world's tools need.

Registry `KINDS`: each entry says whether a world needs it and how to make it. Order matters —
a call goes to the first backend that handles its tool: the simulator for tools with semantics,
the sandbox for the `sandbox__*` tools, and last the honest `UnavailableBackend` for real tools
nothing here can run.
"""

from __future__ import annotations

from collections.abc import Callable

from agentgym.backends.base import ToolBackend
from agentgym.world.domain import World


def _simulated(world: World) -> ToolBackend:
    from agentgym.backends.simulated import SimulatedBackend

    return SimulatedBackend(world.engine)


def _sandbox(world: World) -> ToolBackend:
    from agentgym.sandbox.backend import SandboxBackend

    return SandboxBackend()


def _unavailable(world: World) -> ToolBackend:
    from agentgym.backends.unavailable import UnavailableBackend

    return UnavailableBackend()


def _has_sandbox_tools(world: World) -> bool:
    return any(t.provenance.server == "sandbox" for t in world.tools.values())


KINDS: list[tuple[Callable[[World], bool], Callable[[World], ToolBackend]]] = [
    (lambda w: True, _simulated),
    (_has_sandbox_tools, _sandbox),
    (lambda w: True, _unavailable),
]


def default_backends(world: World) -> list[ToolBackend]:
    return [make(world) for needed, make in KINDS if needed(world)]
