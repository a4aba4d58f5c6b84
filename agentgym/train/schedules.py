"""Sampling-temperature schedules for RL rollouts: the temperature to sample with at a training step.

`TEMPERATURE_SCHEDULES` maps a name to `f(step, *, start, end, steps) -> float`: the temperature at
optimizer step `step` (0-based) when moving from `start` (at step 0) to `end` (at step `steps`), held
at `end` for every step past `steps`. Kimi K2 decays the temperature during RL: high early for
exploration, lower later for precision. With `p = min(step, steps) / steps`:

- `constant`: `start` (`end` must equal `start`, so a config cannot silently ask for a decay);
- `linear`: `start + (end - start) * p`;
- `cosine`: `end + (start - end) * (1 + cos(pi * p)) / 2` (slow at both ends, fast in the middle);
- `exponential`: `start * (end / start) ** p`, geometric interpolation, i.e. a constant decay factor
  `(end / start) ** (1 / steps)` per step (needs `start, end > 0`).

Temperatures must be > 0 (0 is greedy decoding: no exploration and degenerate log-probabilities),
`steps` >= 1 and `step` >= 0; anything else raises `ValueError`. Pure functions, no state.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Protocol


class TemperatureSchedule(Protocol):
    def __call__(self, step: int, *, start: float, end: float, steps: int) -> float: ...


TEMPERATURE_SCHEDULES: dict[str, TemperatureSchedule] = {}
"""Temperature schedules by name (see module doc)."""


def register_schedule(name: str) -> Callable[[TemperatureSchedule], TemperatureSchedule]:
    """Register a temperature schedule under `name` (a duplicate name raises)."""

    def deco(fn: TemperatureSchedule) -> TemperatureSchedule:
        if name in TEMPERATURE_SCHEDULES:
            raise ValueError(f"temperature schedule {name!r} is already registered")
        TEMPERATURE_SCHEDULES[name] = fn
        return fn

    return deco


def temperature_at(name: str, step: int, *, start: float, end: float, steps: int) -> float:
    """`TEMPERATURE_SCHEDULES[name](step, start=..., end=..., steps=...)`; an unknown name raises."""
    try:
        fn = TEMPERATURE_SCHEDULES[name]
    except KeyError:
        known = ", ".join(sorted(TEMPERATURE_SCHEDULES))
        raise ValueError(f"unknown temperature schedule {name!r}; known: {known}") from None
    return fn(step, start=start, end=end, steps=steps)


def _progress(step: int, start: float, end: float, steps: int) -> float:
    """Validate the arguments; the fraction of the schedule done, clamped to [0, 1]."""
    if isinstance(step, bool) or not isinstance(step, int) or step < 0:
        raise ValueError(f"step must be an int >= 0, got {step!r}")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be an int >= 1, got {steps!r}")
    if not (start > 0 and end > 0 and math.isfinite(start) and math.isfinite(end)):
        raise ValueError(f"temperatures must be finite and > 0, got start={start}, end={end}")
    return min(step, steps) / steps


@register_schedule("constant")
def constant(step: int, *, start: float, end: float, steps: int) -> float:
    _progress(step, start, end, steps)
    if end != start:
        raise ValueError(f"a constant schedule needs end == start, got start={start}, end={end}")
    return start


@register_schedule("linear")
def linear(step: int, *, start: float, end: float, steps: int) -> float:
    p = _progress(step, start, end, steps)
    return start + (end - start) * p


@register_schedule("cosine")
def cosine(step: int, *, start: float, end: float, steps: int) -> float:
    p = _progress(step, start, end, steps)
    return end + (start - end) * (1.0 + math.cos(math.pi * p)) / 2.0


@register_schedule("exponential")
def exponential(step: int, *, start: float, end: float, steps: int) -> float:
    p = _progress(step, start, end, steps)
    return start * (end / start) ** p
