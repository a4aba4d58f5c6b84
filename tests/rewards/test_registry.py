"""The reward registry and mix configs: names, params, files, the default mix, clear errors."""

from __future__ import annotations

import pytest

from agentgym.rewards import registry
from agentgym.rewards.base import RubricReward
from agentgym.rewards.penalties import FormatGate, OverlongPenalty
from agentgym.rewards.registry import (
    REWARDS,
    RewardConfigError,
    default_mix,
    make_reward,
    mix_from_config,
    register_reward,
    reward_names,
    reward_params,
)

BUILTIN = {"rubric", "format_gate", "overlong", "token_budget", "repetition", "malformed_calls", "language"}


def test_builtin_names_are_registered():
    assert set(reward_names()) >= BUILTIN


def test_make_reward_with_params():
    r = make_reward("overlong", max_tokens=512, cache=128)
    assert isinstance(r, OverlongPenalty) and (r.max_tokens, r.cache) == (512, 128)
    assert isinstance(make_reward("rubric"), RubricReward)
    assert reward_params("overlong") == ["max_tokens", "cache"]


def test_unknown_name_lists_what_exists():
    with pytest.raises(RewardConfigError, match=r"unknown reward 'overlength'.*format_gate.*overlong"):
        make_reward("overlength")


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"max_tokens": 512, "cach": 128}, r"accepts: max_tokens, cache.*cach"),
        ({"max_tokens": "many"}, r"max_tokens"),
        ({"max_tokens": 100, "cache": 200}, r"must not exceed"),
    ],
)
def test_bad_params_are_explained(params, match):
    with pytest.raises(RewardConfigError, match=match):
        make_reward("overlong", **params)


def test_rubric_refuses_params():
    with pytest.raises(RewardConfigError, match="bad parameters for reward 'rubric'"):
        make_reward("rubric", weight=2)


def test_mix_from_dict_as_in_the_issue():
    mix = mix_from_config(
        {
            "components": [
                {"name": "rubric", "weight": 1.0},
                {"name": "format_gate", "gate": True},
                {"name": "overlong", "weight": 0.5, "params": {"max_tokens": 512, "cache": 128}},
            ]
        }
    )
    assert [(c.reward.name, c.weight, c.gate) for c in mix.components] == [
        ("rubric", 1.0, False),
        ("format_gate", 1.0, True),
        ("overlong", 0.5, False),
    ]
    assert isinstance(mix.components[1].reward, FormatGate)
    assert mix.components[2].reward.max_tokens == 512


def test_mix_from_yaml_file(tmp_path):
    p = tmp_path / "mix.yaml"
    p.write_text(
        "components:\n  - name: rubric\n  - name: malformed_calls\n    weight: 2\n    params: {alpha: 0.3}\n"
    )
    mix = mix_from_config(p)
    assert [c.reward.name for c in mix.components] == ["rubric", "malformed_calls"]
    assert mix.components[1].reward.alpha == 0.3 and mix.components[1].weight == 2.0
    assert [c.reward.name for c in mix_from_config(str(p)).components] == ["rubric", "malformed_calls"]


@pytest.mark.parametrize(
    ("config", "match"),
    [
        ({"components": []}, "not a reward mix"),
        ({"parts": [{"name": "rubric"}]}, "not a reward mix"),
        ({"components": [{"name": "rubric", "wieght": 1}]}, "not a reward mix"),
        ({"components": [{"name": "rubric"}, {"name": "nope"}]}, r"component #1: unknown reward 'nope'"),
        ({"components": [{"name": "rubric"}, {"name": "rubric"}]}, "unique"),
        ({"components": [{"name": "repetition", "params": {"n": 0}}]}, r"component #0: bad parameters"),
    ],
)
def test_bad_mix_configs(config, match):
    with pytest.raises(RewardConfigError, match=match):
        mix_from_config(config)


def test_missing_file_is_a_config_error(tmp_path):
    with pytest.raises(RewardConfigError, match="cannot read"):
        mix_from_config(tmp_path / "none.yaml")


def test_default_mix_file():
    mix = default_mix()
    names = [c.reward.name for c in mix.components]
    assert names[:2] == ["rubric", "format_gate"] and mix.components[1].gate
    assert {"token_budget", "overlong", "repetition", "malformed_calls"} <= set(names)


def test_register_refuses_a_taken_name(monkeypatch):
    monkeypatch.setitem(REWARDS, "custom_test_reward", RubricReward)
    with pytest.raises(ValueError, match="already registered"):
        register_reward("custom_test_reward")(FormatGate)


def test_a_new_reward_is_one_decorated_class(monkeypatch, tb):
    monkeypatch.setattr(registry, "REWARDS", dict(REWARDS))

    @registry.register_reward("answer_length")
    class AnswerLength(RubricReward):
        name = "answer_length"

        def __init__(self, per_char: float = 1.0) -> None:
            self.per_char = per_char

    r = make_reward("answer_length", per_char=0.5)
    assert isinstance(r, AnswerLength) and r.per_char == 0.5
    assert reward_params("answer_length") == ["per_char"]
