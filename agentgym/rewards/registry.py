"""The reward registry: reward components by name, and `RewardMix`es built from a config.

`REWARDS` maps a name to a factory taking keyword parameters and returning a `Reward`. Modules
register their rewards on import with `@register_reward("name")`; the registry imports the modules
that hold rewards (`_PLUGINS`: penalties, and the judge and self-critique modules when present)
lazily, the first time a name is looked up, so importing the registry stays cheap and free of
import cycles. A new reward is a new class with the decorator (and, for a new module, one entry
in `_PLUGINS`).

`mix_from_config` takes a dict, a `MixConfig` or a YAML path:

    components:
      - {name: rubric, weight: 1.0}
      - {name: format_gate, gate: true}
      - {name: overlong, weight: 0.5, params: {max_tokens: 512, cache: 128}}

An unknown name, unknown or ill-typed parameters, or a malformed file raise `RewardConfigError`
naming the component and listing what exists. `default_mix()` builds `default.yaml` (next to this
file): the rubric score gated by format, with the token-budget, overlong, repetition and
malformed-call penalties.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from pydantic import Field, ValidationError

from agentgym.rewards.base import Component, Reward, RewardMix, RubricReward
from agentgym.spec.base import JsonDict, Record
from agentgym.yamlfile import load_yaml

RewardFactory = Callable[..., Reward]
F = TypeVar("F", bound=RewardFactory)

REWARDS: dict[str, RewardFactory] = {}
"""Every registered reward factory, by name (complete once `reward_names()` has run)."""

_PLUGINS = ("agentgym.rewards.penalties", "agentgym.rewards.judge", "agentgym.rewards.critique")
"""Modules whose rewards register on import; a module that does not exist (yet) is skipped."""
_loaded = False

DEFAULT_MIX = Path(__file__).with_name("default.yaml")
"""The default mix file."""


class RewardConfigError(ValueError):
    """A reward or mix configuration names something that does not exist or is malformed."""


def register_reward(name: str) -> Callable[[F], F]:
    """Class or function decorator: make `factory` available as `name` (names are unique)."""

    def deco(factory: F) -> F:
        if name in REWARDS and REWARDS[name] is not factory:
            raise ValueError(f"reward name {name!r} is already registered to {REWARDS[name]!r}")
        REWARDS[name] = factory
        return factory

    return deco


register_reward("rubric")(RubricReward)


def _load_plugins() -> None:
    global _loaded
    if _loaded:
        return
    for module in _PLUGINS:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as e:
            if e.name != module:  # the module exists but something it imports is missing: say so
                raise
    _loaded = True


def reward_names() -> list[str]:
    """Every registered reward name, sorted."""
    _load_plugins()
    return sorted(REWARDS)


def reward_params(name: str) -> list[str]:
    """The keyword parameters the reward `name` accepts."""
    factory = _factory(name)
    if dataclasses.is_dataclass(factory):
        return [f.name for f in dataclasses.fields(factory)]
    sig = inspect.signature(factory)
    return [p.name for p in sig.parameters.values() if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)]


def _factory(name: str) -> RewardFactory:
    _load_plugins()
    if name not in REWARDS:
        raise RewardConfigError(f"unknown reward {name!r}; registered rewards: {', '.join(sorted(REWARDS))}")
    return REWARDS[name]


def make_reward(name: str, **params: Any) -> Reward:
    """The reward `name` built with `params`; bad params raise `RewardConfigError`."""
    factory = _factory(name)
    try:
        reward = factory(**params)
    except (ValidationError, TypeError, ValueError) as e:
        raise RewardConfigError(
            f"bad parameters for reward {name!r} (accepts: {', '.join(reward_params(name)) or 'none'}): "
            + _explain(e)
        ) from e
    if not isinstance(reward, Reward):
        raise RewardConfigError(f"factory of {name!r} returned {type(reward).__name__}, not a Reward")
    return reward


def _explain(e: Exception) -> str:
    if isinstance(e, ValidationError):
        return "; ".join(f"{'.'.join(map(str, x['loc'])) or 'value'}: {x['msg']}" for x in e.errors())
    return str(e)


class ComponentConfig(Record):
    """One component of a mix file."""

    name: str
    """Registered reward name."""
    weight: float = 1.0
    """Weight in the sum (ignored for gates)."""
    gate: bool = False
    """Multiply the mix by this component's score instead of adding it."""
    params: JsonDict = Field(default_factory=dict)
    """Keyword parameters of the reward's factory."""


class MixConfig(Record):
    """A mix file: its components, in order."""

    components: tuple[ComponentConfig, ...] = Field(min_length=1)
    """The components."""


def mix_from_config(config: MixConfig | Mapping[str, Any] | str | Path) -> RewardMix:
    """A `RewardMix` from a config dict, a `MixConfig` or a YAML file; see module doc."""
    source = "config"
    if isinstance(config, str | Path):
        source = str(config)
        try:
            config = load_yaml(Path(config).read_text(encoding="utf-8"))
        except OSError as e:
            raise RewardConfigError(f"cannot read reward mix file {source}: {e}") from e
    if not isinstance(config, MixConfig):
        try:
            config = MixConfig.model_validate(config)
        except ValidationError as e:
            raise RewardConfigError(f"{source}: not a reward mix ({{components: [...]}}): {e}") from e
    components = []
    for i, c in enumerate(config.components):
        try:
            reward = make_reward(c.name, **c.params)
        except RewardConfigError as e:
            raise RewardConfigError(f"{source}: component #{i}: {e}") from e
        components.append(Component(reward, weight=c.weight, gate=c.gate))
    try:
        return RewardMix(components)
    except ValueError as e:
        raise RewardConfigError(f"{source}: {e}") from e


def default_mix() -> RewardMix:
    """The mix in `default.yaml`."""
    return mix_from_config(DEFAULT_MIX)
