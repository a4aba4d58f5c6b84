"""agentgym.train: RL training for tool-using models (GRPO) and its pure-torch pieces.

`objectives` holds the math (advantage estimators, loss aggregations, the clipped policy loss with
KL and importance-ratio correction, per-turn advantages, log-probabilities, entropy, PTX);
`schedules` the sampling-temperature schedules. Both are registries looked up by name. Importing
this package imports torch.

The rest, imported by module (they load models): `sequences` (token-exact training sequences,
padded batches, masked log-probabilities with the shared-prefix forward), `grpo` (the trainer),
`sft` (supervised priming), `lora` (peft adapters), `async_rollouts` (the async mode's producer
and sampler copy), `ray_rollouts` (Ray actors playing a step's episodes), `sync` (weight sync into a
generation server), `monitoring` (reward-hacking monitors fed per step).
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
