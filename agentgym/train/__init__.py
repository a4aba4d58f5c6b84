"""agentgym.train: RL training for tool-using models (GRPO) and its pure-torch pieces.

`objectives` holds the math (advantage estimators, loss aggregations, the clipped policy loss with
KL and importance-ratio correction, per-turn advantages, log-probabilities, entropy, PTX);
`schedules` the sampling-temperature schedules. Both are registries looked up by name. Importing
this package imports torch.
"""

from agentgym.train.objectives import (
    ADVANTAGES,
    AGGREGATIONS,
    advantage_estimator,
    aggregate,
    entropy_from_logits,
    k3_kl,
    keep_informative,
    policy_loss,
    ptx_loss,
    register_advantage,
    register_aggregation,
    token_advantages,
    token_logprobs,
)
from agentgym.train.schedules import TEMPERATURE_SCHEDULES, register_schedule, temperature_at

__all__ = [
    "ADVANTAGES",
    "AGGREGATIONS",
    "TEMPERATURE_SCHEDULES",
    "advantage_estimator",
    "aggregate",
    "entropy_from_logits",
    "k3_kl",
    "keep_informative",
    "policy_loss",
    "ptx_loss",
    "register_advantage",
    "register_aggregation",
    "register_schedule",
    "temperature_at",
    "token_advantages",
    "token_logprobs",
]
