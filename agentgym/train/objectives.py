"""GRPO objectives: advantage estimators, loss aggregations, the clipped policy loss and its helpers.

Pure torch, no model, no I/O: tensors in, tensors (and float stats) out. The trainer
(`agentgym.train.grpo`) computes log-probabilities with `token_logprobs`, advantages with an
estimator from `ADVANTAGES` (or `token_advantages` when a rubric gives per-turn checkpoints), drops
uninformative groups with `keep_informative`, and calls `policy_loss`. Nothing here mutates its inputs.

**Advantages** (`ADVANTAGES`, by name; each maps one group's rewards `[G]` to advantages `[G]`):

- `grpo`: `(r - mean(r)) / (std(r) + eps)`, with the *unbiased* std (Bessel's correction, `G - 1`
  in the denominator; `torch.std`'s default) and `eps = 1e-4`, exactly as TRL's `GRPOTrainer`
  (`nanstd` with Bessel's correction, `+ 1e-4`). Another eps: `functools.partial(ADVANTAGES["grpo"],
  eps=...)` or `advantage_estimator("grpo", eps=...)`.
- `drgrpo` (Dr. GRPO, Liu et al. 2025): `r - mean(r)`, no std (it biases towards easy/hard groups).
- `rloo`: `r_i - mean_{j != i} r_j`, which equals `G / (G - 1) * (r_i - mean(r))`.

A group of one rollout has no baseline: every estimator returns zeros for it.

**Aggregations** (`AGGREGATIONS`, by name; per-token loss `[B, T]` and a {0, 1} mask `[B, T]` to a
scalar). Masked-out positions never contribute, whatever they hold (`torch.where`, not `loss * mask`,
so an `inf` in padding cannot become `nan`):

- `token_mean` (DAPO): `sum(loss * mask) / sum(mask)` over the whole batch.
- `seq_mean_token_sum_norm` (Dr. GRPO): `mean_b(sum_t(loss * mask) / norm_len)`, `norm_len` a constant
  (the max generation length; keyword `norm_len`, default `T`); every sequence counts in the mean.
- `seq_mean_token_mean`: `mean_b(sum_t(loss * mask) / sum_t(mask))` over sequences with a non-empty
  mask (empty ones are skipped).
An all-empty mask gives 0 that is still connected to the graph, so `backward()` works (zero grads).

**Policy loss** (`policy_loss`): per token `ratio = exp(logp - old_logp)` (log-ratio clamped to
[-20, 20] against overflow, as verl does); surrogate `-min(ratio * A, clip(ratio, 1 - eps_low,
1 + eps_high) * A)` (clip-higher: separate `eps_low` / `eps_high`, default 0.2 / 0.28);
optionally times the truncated importance weight `w = min(exp(old_logp - sampler_logp), is_cap)`
(TIS, detached; corrects the sampler/trainer mismatch of a vLLM or bf16 sampler); plus
`beta * k3` with `k3 = exp(ref - logp) - (ref - logp) - 1` (Schulman's unbiased, non-negative KL
estimator against a frozen reference; log-ratio clamped to [-20, 20]); then aggregated. `old_logp`,
`ref_logp`, `sampler_logp` and the advantages are constants: they are detached here, so
`policy_loss(logp, logp, ...)` is the on-policy policy gradient (ratio 1).

**PTX**: `ptx_loss` is the mean token NLL of a pretraining/SFT batch; the trainer's total is
`policy_loss + ptx_coef * ptx_loss`.

**Log-probabilities and entropy** are computed from logits chunk by chunk over the flattened
leading dims (`chunk_size` rows at a time), as `logit[id] - logsumexp(logits)` and `-sum(p * log p)`
with `p = softmax(z)`, so the `[N, V]` log-softmax is never materialised at once in the forward pass
(under autograd the backward still needs a softmax per row, which autograd builds per chunk). They
are returned in float32 whatever the logits' dtype (bf16 logits are upcast per chunk). Both take the
sampling `temperature`: the logits are divided by it, so the trainer's log-probabilities are of the
same distribution the sampler drew from. The trainer passes *shifted* logits (`logits[:, :-1]`
against `ids[:, 1:]`).
"""

from __future__ import annotations

import functools
import inspect
import math
from collections.abc import Callable, Sequence
from typing import TypeVar

import torch
from torch import Tensor

AdvantageEstimator = Callable[[Tensor], Tensor]
Aggregation = Callable[..., Tensor]
_F = TypeVar("_F", bound=Callable[..., Tensor])

ADVANTAGES: dict[str, AdvantageEstimator] = {}
"""Advantage estimators by name: a group's rewards `[G]` -> per-rollout advantages `[G]`."""
AGGREGATIONS: dict[str, Aggregation] = {}
"""Loss aggregations by name: `(loss [B, T], mask [B, T], **params) -> scalar`."""

GRPO_EPS = 1e-4
"""The default std floor of the `grpo` estimator (TRL's)."""
EQUAL_REWARD_TOL = 1e-6
"""`keep_informative`: a group whose rewards span no more than this (max - min) is uninformative."""
LOG_RATIO_CLAMP = 20.0
"""Log-ratios (policy/old and reference/policy) are clamped to +-this before `exp`."""
DEFAULT_IS_CAP = 2.0
"""The default truncation of the TIS weight."""


def _register(registry: dict[str, _F], kind: str, name: str) -> Callable[[_F], _F]:
    def deco(fn: _F) -> _F:
        if name in registry:
            raise ValueError(f"{kind} {name!r} is already registered")
        registry[name] = fn
        return fn

    return deco


def register_advantage(name: str) -> Callable[[_F], _F]:
    """Register an advantage estimator under `name` (a duplicate name raises)."""
    return _register(ADVANTAGES, "advantage estimator", name)


def register_aggregation(name: str) -> Callable[[_F], _F]:
    """Register a loss aggregation under `name` (a duplicate name raises)."""
    return _register(AGGREGATIONS, "aggregation", name)


def _lookup(registry: dict[str, _F], kind: str, name: str) -> _F:
    try:
        return registry[name]
    except KeyError:
        raise ValueError(f"unknown {kind} {name!r}; known: {', '.join(sorted(registry))}") from None


def advantage_estimator(name: str, **params: float) -> AdvantageEstimator:
    """The estimator `name` with `params` bound (e.g. `advantage_estimator("grpo", eps=1e-6)`).

    Unknown names and parameters the estimator does not take raise `ValueError`.
    """
    fn = _lookup(ADVANTAGES, "advantage estimator", name)
    accepted = set(inspect.signature(fn).parameters) - {"rewards"}
    unknown = set(params) - accepted
    if unknown:
        raise ValueError(
            f"advantage estimator {name!r} takes {sorted(accepted) or 'no parameters'}, not {sorted(unknown)}"
        )
    return functools.partial(fn, **params) if params else fn


# ---------------------------------------------------------------------------------------------- advantages


def _check_rewards(rewards: Tensor) -> Tensor:
    if not isinstance(rewards, Tensor) or rewards.ndim != 1 or rewards.numel() == 0:
        raise ValueError(f"rewards must be a non-empty 1-D tensor [G], got {_describe(rewards)}")
    if not rewards.is_floating_point():
        raise ValueError(f"rewards must be a floating tensor, got {rewards.dtype}")
    if not torch.isfinite(rewards).all():
        raise ValueError(f"rewards must be finite, got {rewards.tolist()}")
    return rewards.detach()


@register_advantage("grpo")
def grpo_advantages(rewards: Tensor, *, eps: float = GRPO_EPS) -> Tensor:
    """`(r - mean) / (unbiased std + eps)`; zeros for a group of one."""
    r = _check_rewards(rewards)
    if eps <= 0:
        raise ValueError(f"eps must be > 0, got {eps}")
    if r.numel() == 1:
        return torch.zeros_like(r)
    return (r - r.mean()) / (r.std(correction=1) + eps)


@register_advantage("drgrpo")
def drgrpo_advantages(rewards: Tensor) -> Tensor:
    """`r - mean` (Dr. GRPO); zeros for a group of one."""
    r = _check_rewards(rewards)
    return r - r.mean()


@register_advantage("rloo")
def rloo_advantages(rewards: Tensor) -> Tensor:
    """`r_i - mean_{j != i} r_j` (leave-one-out baseline); zeros for a group of one."""
    r = _check_rewards(rewards)
    g = r.numel()
    if g == 1:
        return torch.zeros_like(r)
    return r - (r.sum() - r) / (g - 1)


def keep_informative(groups_rewards: Sequence[Tensor], *, tol: float = EQUAL_REWARD_TOL) -> list[int]:
    """Indices of the groups whose rewards are not all equal (max - min > `tol`, absolute).

    An all-equal group has zero advantage under every estimator and only dilutes the batch
    (Magistral drops them); a group of one is all-equal.
    """
    keep = []
    for i, rewards in enumerate(groups_rewards):
        r = _check_rewards(rewards)
        if float(r.max() - r.min()) > tol:
            keep.append(i)
    return keep


def token_advantages(
    outcome_adv: Tensor,
    turn_spans: Sequence[Sequence[tuple[int, int]]],
    turn_rewards: Sequence[Sequence[float]],
    T: int,
    *,
    turn_weight: float = 1.0,
    estimator: str = "grpo",
) -> Tensor:
    """Per-token advantages `[G, T]`: the outcome advantage plus normalised per-turn returns-to-go.

    Rollout `i` has turns `k = 0..K_i-1`; turn `k` covers token positions `turn_spans[i][k] =
    (start, end)` (half-open, sorted, non-overlapping, within `[0, T)`) and earned the shaping
    reward `turn_rewards[i][k]` (a rubric checkpoint reached in that turn). Then:

        R[i, k]   = sum_{k' >= k} turn_rewards[i][k']                (return-to-go, undiscounted)
        N[i, k]   = ADVANTAGES[estimator]({R[j, k] : rollouts j with a turn k})[i]
        A[i, t]   = outcome_adv[i] + turn_weight * N[i, k]   for t in turn_spans[i][k]
        A[i, t]   = outcome_adv[i]                           for t outside every span

    That is, each turn's return-to-go is normalised across the rollouts of the group that reached
    that turn, with the same estimator as the outcome (default `grpo`: unbiased std, eps 1e-4); a
    turn index reached by one rollout only gets 0 (a group of one). Positions outside spans are not
    model tokens and are masked by the loss anyway.
    """
    adv = outcome_adv.detach()
    if adv.ndim != 1:
        raise ValueError(f"outcome_adv must be 1-D [G], got {_describe(outcome_adv)}")
    g = adv.numel()
    if len(turn_spans) != g or len(turn_rewards) != g:
        raise ValueError(
            f"turn_spans ({len(turn_spans)}) and turn_rewards ({len(turn_rewards)}) need one entry per rollout ({g})"
        )
    if T < 1:
        raise ValueError(f"T must be >= 1, got {T}")
    normalise = _lookup(ADVANTAGES, "advantage estimator", estimator)
    returns: list[list[float]] = []
    for i, (spans, rewards) in enumerate(zip(turn_spans, turn_rewards, strict=True)):
        if len(spans) != len(rewards):
            raise ValueError(f"rollout {i}: {len(spans)} turn spans but {len(rewards)} turn rewards")
        prev_end = 0
        for start, end in spans:
            if not (prev_end <= start < end <= T):
                raise ValueError(
                    f"rollout {i}: span ({start}, {end}) must be sorted, non-empty, non-overlapping, within [0, {T}]"
                )
            prev_end = end
        rtg, acc = [0.0] * len(rewards), 0.0
        for k in range(len(rewards) - 1, -1, -1):
            acc += float(rewards[k])
            rtg[k] = acc
        returns.append(rtg)

    out = adv.to(torch.float32).unsqueeze(1).repeat(1, T)
    for k in range(max((len(r) for r in returns), default=0)):
        members = [i for i in range(g) if len(returns[i]) > k]
        normed = normalise(torch.tensor([returns[i][k] for i in members], dtype=torch.float32))
        for i, n in zip(members, normed.tolist(), strict=True):
            start, end = turn_spans[i][k]
            out[i, start:end] += turn_weight * n
    return out


# -------------------------------------------------------------------------------------------- aggregations


def _check_loss_mask(loss: Tensor, mask: Tensor) -> Tensor:
    """The mask as bool, after checking shapes and {0, 1} values."""
    if loss.ndim != 2:
        raise ValueError(f"per-token loss must be 2-D [B, T], got {_describe(loss)}")
    if mask.shape != loss.shape:
        raise ValueError(f"mask shape {tuple(mask.shape)} != loss shape {tuple(loss.shape)}")
    if mask.dtype != torch.bool:
        if not ((mask == 0) | (mask == 1)).all():
            raise ValueError("mask must hold only 0 and 1")
        mask = mask != 0
    return mask


@register_aggregation("token_mean")
def token_mean(loss: Tensor, mask: Tensor) -> Tensor:
    """DAPO: the mean over every masked token of the batch."""
    m = _check_loss_mask(loss, mask)
    return torch.where(m, loss, 0.0).sum() / m.sum().clamp(min=1)


@register_aggregation("seq_mean_token_sum_norm")
def seq_mean_token_sum_norm(loss: Tensor, mask: Tensor, *, norm_len: int | None = None) -> Tensor:
    """Dr. GRPO: per sequence the masked sum over a constant `norm_len` (default `T`), mean over sequences."""
    m = _check_loss_mask(loss, mask)
    norm = loss.shape[1] if norm_len is None else norm_len
    if isinstance(norm, bool) or not isinstance(norm, int) or norm < 1:
        raise ValueError(f"norm_len must be a positive int, got {norm_len!r}")
    return (torch.where(m, loss, 0.0).sum(dim=1) / norm).mean()


@register_aggregation("seq_mean_token_mean")
def seq_mean_token_mean(loss: Tensor, mask: Tensor) -> Tensor:
    """Per sequence the masked token mean, mean over sequences with at least one masked token."""
    m = _check_loss_mask(loss, mask)
    counts = m.sum(dim=1)
    per_seq = torch.where(m, loss, 0.0).sum(dim=1) / counts.clamp(min=1)
    present = counts > 0
    return torch.where(present, per_seq, 0.0).sum() / present.sum().clamp(min=1)


def aggregate(name: str, loss: Tensor, mask: Tensor, **params: int) -> Tensor:
    """`AGGREGATIONS[name](loss, mask, **params)`, refusing parameters the aggregation does not take."""
    fn = _lookup(AGGREGATIONS, "aggregation", name)
    accepted = set(inspect.signature(fn).parameters) - {"loss", "mask"}
    unknown = set(params) - accepted
    if unknown:
        raise ValueError(
            f"aggregation {name!r} takes {sorted(accepted) or 'no parameters'}, not {sorted(unknown)}"
        )
    return fn(loss, mask, **params)


# -------------------------------------------------------------------------------------------- policy loss


def k3_kl(logp: Tensor, ref_logp: Tensor) -> Tensor:
    """Per-token k3 estimate of KL(policy || ref): `exp(d) - d - 1`, `d = ref - logp` (clamped)."""
    d = (ref_logp - logp).clamp(-LOG_RATIO_CLAMP, LOG_RATIO_CLAMP)
    return torch.exp(d) - d - 1


def policy_loss(
    logp: Tensor,
    old_logp: Tensor,
    advantages: Tensor,
    mask: Tensor,
    *,
    eps_low: float = 0.2,
    eps_high: float = 0.28,
    aggregation: str = "token_mean",
    ref_logp: Tensor | None = None,
    beta: float = 0.0,
    sampler_logp: Tensor | None = None,
    is_cap: float | None = None,
    norm_len: int | None = None,
) -> tuple[Tensor, dict[str, float]]:
    """The clipped GRPO loss (scalar, differentiable in `logp`) and its stats (see module doc).

    `logp`, `old_logp`, `mask` (and `ref_logp`, `sampler_logp`) are `[B, T]`; `advantages` is `[B]`
    (broadcast over tokens) or `[B, T]` (per token, e.g. from `token_advantages`). `beta > 0` needs
    `ref_logp`; `is_cap` (default 2.0) needs `sampler_logp`; `norm_len` only goes to aggregations
    that take it. Stats, over masked tokens: `loss`, `pg_loss` (the aggregated surrogate alone),
    `clip_frac` = `clip_frac_low` (A < 0, ratio < 1 - eps_low) + `clip_frac_high` (A > 0, ratio >
    1 + eps_high): where the clipped branch was taken; `ratio_mean`; `kl` (mean k3, whenever
    `ref_logp` is given, even with beta 0); `is_weight_mean` and `is_clip_frac` (how often the cap
    bit) when `sampler_logp` is given; `tokens` (the masked token count).
    """
    m = _check_loss_mask(logp, mask)
    shape = tuple(logp.shape)
    for label, t in (("old_logp", old_logp), ("ref_logp", ref_logp), ("sampler_logp", sampler_logp)):
        if t is not None and tuple(t.shape) != shape:
            raise ValueError(f"{label} shape {tuple(t.shape)} != logp shape {shape}")
    if advantages.ndim == 1 and advantages.shape[0] == shape[0]:
        adv = advantages.detach().unsqueeze(1).expand(shape)
    elif tuple(advantages.shape) == shape:
        adv = advantages.detach()
    else:
        raise ValueError(
            f"advantages must be [B] or [B, T] with [B, T] = {list(shape)}, got {_describe(advantages)}"
        )
    if not (0.0 <= eps_low < 1.0) or eps_high < 0.0:
        raise ValueError(
            f"need 0 <= eps_low < 1 and eps_high >= 0, got eps_low={eps_low}, eps_high={eps_high}"
        )
    if beta < 0:
        raise ValueError(f"beta must be >= 0, got {beta}")
    if beta > 0 and ref_logp is None:
        raise ValueError("beta > 0 needs ref_logp (the frozen reference's log-probabilities)")
    if is_cap is not None and sampler_logp is None:
        raise ValueError("is_cap is only used with sampler_logp")
    cap = DEFAULT_IS_CAP if is_cap is None else is_cap
    if cap <= 0:
        raise ValueError(f"is_cap must be > 0, got {cap}")
    agg_fn = _lookup(AGGREGATIONS, "aggregation", aggregation)  # fail before any compute
    # The trainer passes one norm_len whatever the aggregation; only those that take it get it.
    takes_norm = "norm_len" in inspect.signature(agg_fn).parameters
    agg_params = {"norm_len": norm_len} if norm_len is not None and takes_norm else {}

    # Constants are detached; masked-out positions are zeroed so padding can hold anything.
    def clean(t: Tensor) -> Tensor:
        return torch.where(m, t.detach(), 0.0)

    lp = torch.where(m, logp, 0.0)
    adv = torch.where(m, adv, 0.0)
    ratio = torch.exp((lp - clean(old_logp)).clamp(-LOG_RATIO_CLAMP, LOG_RATIO_CLAMP))
    unclipped = ratio * adv
    clipped = ratio.clamp(1.0 - eps_low, 1.0 + eps_high) * adv
    per_token = -torch.minimum(unclipped, clipped)
    weight = None
    if sampler_logp is not None:
        log_w = (clean(old_logp) - clean(sampler_logp)).clamp(max=math.log(cap))
        weight = torch.exp(log_w)
        per_token = per_token * weight
    kl = None if ref_logp is None else k3_kl(lp, clean(ref_logp))
    total = per_token + beta * kl if beta > 0 and kl is not None else per_token
    loss = aggregate(aggregation, total, m, **agg_params)

    with torch.no_grad():
        n = int(m.sum())

        def masked_mean(t: Tensor) -> float:
            return float(torch.where(m, t, 0.0).sum() / max(n, 1))

        took_clip = clipped < unclipped
        stats = {
            "loss": float(loss),
            "pg_loss": float(aggregate(aggregation, per_token, m, **agg_params)),
            "clip_frac": masked_mean(took_clip.float()),
            "clip_frac_low": masked_mean((took_clip & (adv < 0)).float()),
            "clip_frac_high": masked_mean((took_clip & (adv > 0)).float()),
            "ratio_mean": masked_mean(ratio),
            "tokens": float(n),
        }
        if kl is not None:
            stats["kl"] = masked_mean(kl)
        if weight is not None:
            stats["is_weight_mean"] = masked_mean(weight)
            stats["is_clip_frac"] = masked_mean((log_w >= math.log(cap)).float())
    return loss, stats


# ---------------------------------------------------------------------------------- log-probs and entropy

DEFAULT_CHUNK_ROWS = 256
"""Rows (flattened leading positions) per chunk in `token_logprobs` and `entropy_from_logits`."""


def _chunks(logits: Tensor, temperature: float, chunk_size: int) -> list[Tensor]:
    """The logits as float32 `[rows, V]` chunks, divided by the temperature."""
    if logits.ndim < 1 or logits.shape[-1] == 0:
        raise ValueError(f"logits need a non-empty vocabulary dim, got {_describe(logits)}")
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    flat = logits.reshape(-1, logits.shape[-1])
    return [c.float() / temperature if temperature != 1.0 else c.float() for c in flat.split(chunk_size)]


def token_logprobs(
    logits: Tensor, ids: Tensor, *, temperature: float = 1.0, chunk_size: int = DEFAULT_CHUNK_ROWS
) -> Tensor:
    """`log_softmax(logits / temperature)[..., id]` as float32, shape of `ids` (see module doc)."""
    if logits.ndim != ids.ndim + 1 or tuple(logits.shape[:-1]) != tuple(ids.shape):
        raise ValueError(f"ids {_describe(ids)} must match logits {_describe(logits)} minus the vocab dim")
    if ids.dtype not in (torch.int64, torch.int32):
        raise ValueError(f"ids must be an integer tensor, got {ids.dtype}")
    vocab = logits.shape[-1]
    if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= vocab):
        raise ValueError(f"ids must lie in [0, {vocab}), got range [{int(ids.min())}, {int(ids.max())}]")
    chunks = _chunks(logits, temperature, chunk_size)
    flat_ids = ids.reshape(-1, 1).long().split(chunk_size)
    out = [
        c.gather(-1, i).squeeze(-1) - torch.logsumexp(c, dim=-1)
        for c, i in zip(chunks, flat_ids, strict=True)
    ]
    return torch.cat(out).reshape(ids.shape) if out else logits.new_zeros(ids.shape, dtype=torch.float32)


def entropy_from_logits(
    logits: Tensor, *, temperature: float = 1.0, chunk_size: int = DEFAULT_CHUNK_ROWS
) -> Tensor:
    """Entropy (nats) of `softmax(logits / temperature)` over the last dim, float32, shape `logits.shape[:-1]`."""
    chunks = _chunks(logits, temperature, chunk_size)
    # xlogy(0, 0) = 0, so vocabulary entries masked to -inf contribute nothing (p * log p would be nan).
    out = [-torch.special.xlogy(p, p).sum(-1) for p in (torch.softmax(c, dim=-1) for c in chunks)]
    return (
        torch.cat(out).reshape(logits.shape[:-1])
        if out
        else logits.new_zeros(logits.shape[:-1], dtype=torch.float32)
    )


def ptx_loss(logits: Tensor, ids: Tensor, mask: Tensor, *, chunk_size: int = DEFAULT_CHUNK_ROWS) -> Tensor:
    """Mean token NLL of a pretraining/SFT batch over masked tokens (shifted logits `[B, T, V]`, ids `[B, T]`).

    The trainer adds it as `policy_loss + ptx_coef * ptx_loss`.
    """
    return -token_mean(token_logprobs(logits, ids, chunk_size=chunk_size), mask)


def _describe(x: object) -> str:
    if isinstance(x, Tensor):
        return f"tensor of shape {list(x.shape)} ({x.dtype})"
    return type(x).__name__
