"""Temperature schedules at step 0, mid-way, the end and past the end, against hand-computed values."""

from __future__ import annotations

import itertools
import math

import pytest

from agentgym.train.schedules import TEMPERATURE_SCHEDULES, register_schedule, temperature_at

KW = {"start": 1.0, "end": 0.5, "steps": 10}


def test_registry_names():
    assert set(TEMPERATURE_SCHEDULES) == {"constant", "linear", "cosine", "exponential"}


@pytest.mark.parametrize(
    ("name", "step", "expected"),
    [
        ("constant", 0, 1.0),
        ("constant", 5, 1.0),
        ("constant", 99, 1.0),
        # linear: 1 + (0.5 - 1) * p
        ("linear", 0, 1.0),
        ("linear", 3, 0.85),
        ("linear", 5, 0.75),
        ("linear", 10, 0.5),
        ("linear", 25, 0.5),
        # cosine: 0.5 + 0.5 * (1 + cos(pi p)) / 2; p = 0.2 -> 0.5 + 0.25 * 1.809017 = 0.9522542
        ("cosine", 0, 1.0),
        ("cosine", 2, 0.9522542485937369),
        ("cosine", 5, 0.75),
        ("cosine", 10, 0.5),
        ("cosine", 11, 0.5),
        # exponential: 1 * 0.5 ** p; p = 0.5 -> 0.7071068
        ("exponential", 0, 1.0),
        ("exponential", 5, 0.7071067811865476),
        ("exponential", 10, 0.5),
        ("exponential", 1000, 0.5),
    ],
)
def test_schedule_values(name, step, expected):
    assert TEMPERATURE_SCHEDULES[name](
        step, **(KW if name != "constant" else {**KW, "end": 1.0})
    ) == pytest.approx(expected, abs=1e-12)


def test_exponential_has_a_constant_decay_factor():
    temps = [TEMPERATURE_SCHEDULES["exponential"](k, **KW) for k in range(11)]
    ratios = [b / a for a, b in itertools.pairwise(temps)]
    assert ratios == pytest.approx([0.5**0.1] * 10, abs=1e-12)


def test_cosine_is_slow_at_the_ends_and_fast_in_the_middle():
    temps = [TEMPERATURE_SCHEDULES["cosine"](k, **KW) for k in range(11)]
    drops = [a - b for a, b in itertools.pairwise(temps)]
    assert drops[0] < drops[4] and drops[-1] < drops[5]
    assert all(d > 0 for d in drops)


def test_increasing_schedules_work_too():
    assert TEMPERATURE_SCHEDULES["linear"](5, start=0.5, end=1.0, steps=10) == pytest.approx(0.75)
    assert TEMPERATURE_SCHEDULES["exponential"](5, start=0.5, end=2.0, steps=10) == pytest.approx(1.0)


def test_temperature_at_dispatches_and_refuses_unknown_names():
    assert temperature_at("linear", 5, **KW) == pytest.approx(0.75)
    with pytest.raises(ValueError, match="known: constant, cosine, exponential, linear"):
        temperature_at("step", 0, **KW)


@pytest.mark.parametrize(
    "kw",
    [
        {"step": -1, **KW},
        {"step": 1.5, **KW},
        {"step": 0, "start": 1.0, "end": 0.5, "steps": 0},
        {"step": 0, "start": 0.0, "end": 0.5, "steps": 10},
        {"step": 0, "start": 1.0, "end": -0.5, "steps": 10},
        {"step": 0, "start": math.inf, "end": 0.5, "steps": 10},
    ],
)
@pytest.mark.parametrize("name", ["linear", "cosine", "exponential"])
def test_bad_arguments_raise(name, kw):
    with pytest.raises(ValueError):
        TEMPERATURE_SCHEDULES[name](**kw)


@pytest.mark.parametrize(
    "kw",
    [
        {"step": -1, "start": 1.0, "end": 1.0, "steps": 10},
        {"step": 0, "start": 1.0, "end": 1.0, "steps": 0},
        {"step": 0, "start": 0.0, "end": 0.0, "steps": 10},
    ],
)
def test_constant_validates_like_the_others(kw):
    with pytest.raises(ValueError, match="must be"):
        TEMPERATURE_SCHEDULES["constant"](**kw)


def test_constant_refuses_a_different_end():
    with pytest.raises(ValueError, match="end == start"):
        TEMPERATURE_SCHEDULES["constant"](0, **KW)


def test_duplicate_registration_raises():
    with pytest.raises(ValueError, match="already registered"):
        register_schedule("linear")(TEMPERATURE_SCHEDULES["linear"])
