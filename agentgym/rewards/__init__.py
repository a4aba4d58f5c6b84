"""Rewards: composable components over (task, trajectories), gates, penalties, judges, monitors.

`base` holds the contract (`Reward`, `Score`, `RewardMix`); `penalties` the per-trajectory
penalties, gates and bonuses; `registry` the name → factory table and `mix_from_config`;
`monitors` the reward-hacking monitors. Importing this package registers the penalties; the judge
and self-critique rewards register when the registry first looks a name up.
"""

from agentgym.rewards.base import Component, Reward, RewardMix, RubricReward, Score, TrajectoryReward
from agentgym.rewards.monitors import (
    DriftCase,
    DriftMonitor,
    DriftReport,
    FormatVsSuccessMonitor,
    MonitorAlert,
    component_means,
)
from agentgym.rewards.penalties import (
    FormatGate,
    LanguageConsistency,
    MalformedCallPenalty,
    OverlongPenalty,
    RepetitionPenalty,
    TokenBudget,
)
from agentgym.rewards.registry import (
    REWARDS,
    MixConfig,
    RewardConfigError,
    default_mix,
    make_reward,
    mix_from_config,
    register_reward,
    reward_names,
)

__all__ = [
    "REWARDS",
    "Component",
    "DriftCase",
    "DriftMonitor",
    "DriftReport",
    "FormatGate",
    "FormatVsSuccessMonitor",
    "LanguageConsistency",
    "MalformedCallPenalty",
    "MixConfig",
    "MonitorAlert",
    "OverlongPenalty",
    "RepetitionPenalty",
    "Reward",
    "RewardConfigError",
    "RewardMix",
    "RubricReward",
    "Score",
    "TokenBudget",
    "TrajectoryReward",
    "component_means",
    "default_mix",
    "make_reward",
    "mix_from_config",
    "register_reward",
    "reward_names",
]
