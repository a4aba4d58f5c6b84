"""Hand-computed checks of the GRPO objectives: estimators, aggregations, the clipped loss, KL, TIS,
gradients, per-turn advantages, log-probabilities, entropy and PTX. Tiny tensors, CPU, float64 where
exactness matters."""

from __future__ import annotations

import functools
import math

import pytest
import torch

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
    token_advantages,
    token_logprobs,
)

D = torch.float64


def t(x, dtype=D) -> torch.Tensor:
    return torch.tensor(x, dtype=dtype)


def close(actual, expected, tol: float = 1e-9) -> None:
    torch.testing.assert_close(
        torch.as_tensor(actual, dtype=D), torch.as_tensor(expected, dtype=D), atol=tol, rtol=0
    )


# ------------------------------------------------------------------------------------------ advantages


def test_registries_hold_the_named_variants():
    assert set(ADVANTAGES) == {"grpo", "drgrpo", "rloo"}
    assert set(AGGREGATIONS) == {"token_mean", "seq_mean_token_sum_norm", "seq_mean_token_mean"}


def test_grpo_uses_unbiased_std_and_eps_1e4():
    # r = [1, 0, 0, 1]: mean 0.5, deviations +-0.5; unbiased var = 4 * 0.25 / 3 = 1/3, std = 0.5773503.
    # adv = +-0.5 / (0.5773503 + 1e-4) = +-0.8658754. (Population std 0.5 would give +-0.9998.)
    adv = ADVANTAGES["grpo"](t([1.0, 0.0, 0.0, 1.0]))
    close(adv, [0.8658754297607016, -0.8658754297607016, -0.8658754297607016, 0.8658754297607016], 1e-12)


def test_grpo_eps_is_configurable_both_ways():
    # eps 0.5: 0.5 / (0.5773503 + 0.5) = 0.4641016
    expected = [0.4641016151377546, -0.4641016151377546, -0.4641016151377546, 0.4641016151377546]
    r = t([1.0, 0.0, 0.0, 1.0])
    close(advantage_estimator("grpo", eps=0.5)(r), expected, 1e-12)
    close(functools.partial(ADVANTAGES["grpo"], eps=0.5)(r), expected, 1e-12)
    with pytest.raises(ValueError, match="eps"):
        ADVANTAGES["grpo"](r, eps=0.0)


def test_drgrpo_is_mean_centred_without_std():
    close(ADVANTAGES["drgrpo"](t([1.0, 0.0, 0.0, 1.0])), [0.5, -0.5, -0.5, 0.5])
    close(ADVANTAGES["drgrpo"](t([3.0, 1.0])), [1.0, -1.0])  # std would have scaled this


def test_rloo_leave_one_out():
    # r_0 = 1 - mean(0, 0, 0) = 1; r_i = 0 - mean(1, 0, 0) = -1/3.
    close(ADVANTAGES["rloo"](t([1.0, 0.0, 0.0, 0.0])), [1.0, -1 / 3, -1 / 3, -1 / 3])
    # [2, 4, 9]: 2 - 6.5 = -4.5, 4 - 5.5 = -1.5, 9 - 3 = 6
    close(ADVANTAGES["rloo"](t([2.0, 4.0, 9.0])), [-4.5, -1.5, 6.0])


def test_rloo_equals_scaled_drgrpo():
    r = torch.rand(7, dtype=D, generator=torch.Generator().manual_seed(0))
    close(ADVANTAGES["rloo"](r), 7 / 6 * ADVANTAGES["drgrpo"](r), 1e-12)


@pytest.mark.parametrize("name", ["grpo", "drgrpo", "rloo"])
def test_group_of_one_and_all_equal_give_zeros(name):
    close(ADVANTAGES[name](t([0.7])), [0.0])
    out = ADVANTAGES[name](t([0.3, 0.3, 0.3]))
    assert torch.isfinite(out).all()
    close(out, [0.0, 0.0, 0.0])


@pytest.mark.parametrize(
    "bad", [torch.tensor([1, 0]), torch.zeros(2, 2), torch.tensor([]), torch.tensor([1.0, math.nan])]
)
def test_estimators_refuse_bad_rewards(bad):
    with pytest.raises(ValueError):
        ADVANTAGES["grpo"](bad)


def test_estimator_lookup_errors_and_registration():
    with pytest.raises(ValueError, match="known: drgrpo, grpo, rloo"):
        advantage_estimator("ppo")
    with pytest.raises(ValueError, match="not \\['beta'\\]"):
        advantage_estimator("rloo", beta=1.0)
    with pytest.raises(ValueError, match="already registered"):
        register_advantage("grpo")(lambda r: r)

    @register_advantage("_test_sign")
    def sign(rewards: torch.Tensor) -> torch.Tensor:
        return torch.sign(rewards - rewards.mean())

    try:
        close(advantage_estimator("_test_sign")(t([3.0, 1.0])), [1.0, -1.0])
    finally:
        del ADVANTAGES["_test_sign"]


def test_advantages_do_not_carry_grad():
    r = t([1.0, 0.0]).requires_grad_()
    assert not ADVANTAGES["grpo"](r).requires_grad


def test_keep_informative_drops_all_equal_groups():
    groups = [t([1.0, 1.0, 1.0]), t([1.0, 0.0, 1.0]), t([0.5]), t([2.0, 2.0 + 1e-9]), t([0.0, 1e-3])]
    assert keep_informative(groups) == [1, 4]  # 1e-9 is within the 1e-6 tolerance, 1e-3 is not
    assert keep_informative(groups, tol=1e-2) == [1]
    assert keep_informative([]) == []


# ---------------------------------------------------------------------------------------- aggregations

# The 2x3 example: loss = [[1, 2, 3], [4, 5, 6]], mask = [[1, 1, 0], [1, 0, 0]].
#   token_mean              = (1 + 2 + 4) / 3                     = 7/3  = 2.3333
#   seq_mean_token_sum_norm = ((1 + 2) / 3 + 4 / 3) / 2 (norm 3)  = 7/6  = 1.1667
#                             ((1 + 2) / 6 + 4 / 6) / 2 (norm 6)  = 7/12 = 0.5833
#   seq_mean_token_mean     = ((1 + 2) / 2 + 4 / 1) / 2           = 2.75
LOSS = [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]
MASK = [[1, 1, 0], [1, 0, 0]]


@pytest.mark.parametrize(
    ("name", "params", "expected"),
    [
        ("token_mean", {}, 7 / 3),
        ("seq_mean_token_sum_norm", {}, 7 / 6),
        ("seq_mean_token_sum_norm", {"norm_len": 6}, 7 / 12),
        ("seq_mean_token_mean", {}, 2.75),
    ],
)
def test_aggregations_by_hand(name, params, expected):
    close(aggregate(name, t(LOSS), t(MASK, torch.int64), **params), expected)
    close(AGGREGATIONS[name](t(LOSS), t(MASK).bool(), **params), expected)  # bool mask too


def test_aggregation_gradients_by_hand():
    # token_mean: 1/3 on each masked token; seq_mean_token_mean: 1/(2*2) on row 0, 1/(1*2) on row 1;
    # seq_mean_token_sum_norm: 1/(2*3) on every masked token.
    expected = {
        "token_mean": [[1 / 3, 1 / 3, 0], [1 / 3, 0, 0]],
        "seq_mean_token_mean": [[0.25, 0.25, 0], [0.5, 0, 0]],
        "seq_mean_token_sum_norm": [[1 / 6, 1 / 6, 0], [1 / 6, 0, 0]],
    }
    for name, grad in expected.items():
        loss = t(LOSS).requires_grad_()
        aggregate(name, loss, t(MASK)).backward()
        close(loss.grad, grad)


def test_seq_mean_token_mean_skips_empty_sequences():
    # Row 1 is empty: (1 + 2) / 2 = 1.5, not 1.5 / 2.
    close(aggregate("seq_mean_token_mean", t(LOSS), t([[1, 1, 0], [0, 0, 0]])), 1.5)
    # Dr. GRPO counts every sequence: (3 / 3 + 0) / 2 = 0.5.
    close(aggregate("seq_mean_token_sum_norm", t(LOSS), t([[1, 1, 0], [0, 0, 0]])), 0.5)


@pytest.mark.parametrize("name", sorted(AGGREGATIONS))
def test_all_empty_mask_gives_zero_with_grad(name):
    loss = t(LOSS).requires_grad_()
    out = aggregate(name, loss, torch.zeros(2, 3))
    close(out, 0.0)
    out.backward()
    close(loss.grad, torch.zeros(2, 3))


@pytest.mark.parametrize("name", sorted(AGGREGATIONS))
def test_masked_positions_never_leak_even_inf(name):
    loss = t([[1.0, 2.0, math.inf], [4.0, math.nan, -math.inf]])
    assert torch.isfinite(aggregate(name, loss, t(MASK)))


def test_aggregation_input_errors():
    with pytest.raises(ValueError, match="0 and 1"):
        aggregate("token_mean", t(LOSS), t([[1, 2, 0], [1, 0, 0]]))
    with pytest.raises(ValueError, match="shape"):
        aggregate("token_mean", t(LOSS), torch.ones(2, 2))
    with pytest.raises(ValueError, match="2-D"):
        aggregate("token_mean", t([1.0, 2.0]), t([1, 1]))
    with pytest.raises(ValueError, match="takes no parameters"):
        aggregate("token_mean", t(LOSS), t(MASK), norm_len=3)
    with pytest.raises(ValueError, match="norm_len"):
        aggregate("seq_mean_token_sum_norm", t(LOSS), t(MASK), norm_len=0)
    with pytest.raises(ValueError, match="unknown aggregation"):
        aggregate("sum", t(LOSS), t(MASK))


# ----------------------------------------------------------------------------------------- policy loss

# Five tokens, old_logp = 0 so ratio = exp(logp); eps_low 0.2, eps_high 0.28 (band [0.8, 1.28]):
#   ratio  A    ratio*A  clip*A   min      branch          loss    d loss_t / d logp_t = -A*ratio or 0
#   1.5   +1    1.5      1.28     1.28     clipped (high)  -1.28   0
#   0.5   +1    0.5      0.8      0.5      unclipped       -0.5    -0.5
#   1.5   -1   -1.5     -1.28    -1.5      unclipped        1.5    +1.5
#   0.5   -1   -0.5     -0.8     -0.8      clipped (low)    0.8    0
#   1.1   +1    1.1      1.1      1.1      inside band     -1.1    -1.1
# token_mean = (-1.28 - 0.5 + 1.5 + 0.8 - 1.1) / 5 = -0.58 / 5 = -0.116; grads / 5.
# A sixth position is masked out and holds garbage.
RATIOS = [1.5, 0.5, 1.5, 0.5, 1.1]
ADV = [1.0, 1.0, -1.0, -1.0, 1.0]


def _clip_case():
    logp = t([[*[math.log(r) for r in RATIOS], -math.inf]]).requires_grad_()
    old = t([[0.0] * 5 + [math.nan]])
    adv = t([[*ADV, 1e9]])
    mask = t([[1, 1, 1, 1, 1, 0]])
    return logp, old, adv, mask


def test_clipping_branches_loss_and_grad_by_hand():
    logp, old, adv, mask = _clip_case()
    loss, stats = policy_loss(logp, old, adv, mask)
    close(loss, -0.116, 1e-12)
    loss.backward()
    close(logp.grad, [[0.0, -0.5 / 5, 1.5 / 5, 0.0, -1.1 / 5, 0.0]], 1e-12)
    assert stats["clip_frac"] == pytest.approx(0.4)
    assert stats["clip_frac_high"] == pytest.approx(0.2)
    assert stats["clip_frac_low"] == pytest.approx(0.2)
    assert stats["ratio_mean"] == pytest.approx(5.1 / 5)
    assert stats["loss"] == pytest.approx(-0.116)
    assert stats["pg_loss"] == pytest.approx(-0.116)
    assert stats["tokens"] == 5.0
    assert "kl" not in stats and "is_weight_mean" not in stats


def test_eps_high_is_separate_from_eps_low():
    # Symmetric 0.2: token 0 clips at 1.2 instead of 1.28 -> loss (-1.2 - 0.5 + 1.5 + 0.8 - 1.1) / 5 = -0.1.
    logp, old, adv, mask = _clip_case()
    loss, _ = policy_loss(logp, old, adv, mask, eps_high=0.2)
    close(loss, -0.1, 1e-12)
    # eps_low 0.6 (band [0.4, 1.28]): token 3 (0.5, A=-1) no longer clips -> its loss is 0.5, not 0.8.
    loss, stats = policy_loss(logp, old, adv, mask, eps_low=0.6)
    close(loss, (-1.28 - 0.5 + 1.5 + 0.5 - 1.1) / 5, 1e-12)
    assert stats["clip_frac_low"] == 0.0


def test_sequence_advantages_broadcast_over_tokens():
    # Row 0 A=+1, row 1 A=-1, all ratios 1.5: row 0 clips high (-1.28 each), row 1 does not (+1.5 each).
    logp = torch.full((2, 2), math.log(1.5), dtype=D)
    loss, stats = policy_loss(logp, torch.zeros(2, 2, dtype=D), t([1.0, -1.0]), torch.ones(2, 2))
    close(loss, (2 * -1.28 + 2 * 1.5) / 4, 1e-12)
    assert stats["clip_frac"] == pytest.approx(0.5)
    assert stats["clip_frac_high"] == pytest.approx(0.5)
    assert stats["clip_frac_low"] == 0.0


def _on_policy():
    g = torch.Generator().manual_seed(3)
    logp = (-torch.rand(2, 4, dtype=D, generator=g) * 3).requires_grad_()
    mask = t([[1, 1, 1, 0], [1, 1, 0, 0]])
    adv = t([0.7, -1.3])
    return logp, adv, mask


def test_on_policy_token_mean_is_the_plain_policy_gradient():
    logp, adv, mask = _on_policy()
    loss, stats = policy_loss(logp, logp.detach(), adv, mask)
    # ratio 1 everywhere: loss = -sum(A * mask) / N = -(3 * 0.7 - 2 * 1.3) / 5 = 0.1
    close(loss, 0.1, 1e-12)
    loss.backward()
    # d loss / d logp = -A_b * mask / N
    close(logp.grad, -adv[:, None] * mask / 5, 1e-12)
    assert stats["ratio_mean"] == pytest.approx(1.0)
    assert stats["clip_frac"] == 0.0


def test_undetached_old_logp_is_treated_as_a_constant():
    logp, adv, mask = _on_policy()
    loss, _ = policy_loss(logp, logp, adv, mask)
    loss.backward()
    close(logp.grad, -adv[:, None] * mask / 5, 1e-12)


def test_on_policy_dr_grpo_gradient_uses_the_constant_norm():
    logp, adv, mask = _on_policy()
    loss, _ = policy_loss(logp, logp.detach(), adv, mask, aggregation="seq_mean_token_sum_norm", norm_len=10)
    loss.backward()
    # d/dlogp of mean_b(sum_t(-A_b * ratio) / 10) = -A_b / (B * 10)
    close(logp.grad, -adv[:, None] * mask / 20, 1e-12)


def test_policy_loss_uses_the_named_aggregation_and_routes_norm_len():
    # On-policy with per-token advantages = LOSS, per-token loss = -LOSS: the aggregation numbers negated.
    logp = torch.zeros(2, 3, dtype=D, requires_grad=True)
    adv, mask = t(LOSS), t(MASK)
    for name, expected in [
        ("token_mean", -7 / 3),
        ("seq_mean_token_sum_norm", -7 / 12),
        ("seq_mean_token_mean", -2.75),
    ]:
        # norm_len reaches only the aggregation that takes it.
        loss, _ = policy_loss(logp, logp.detach(), adv, mask, aggregation=name, norm_len=6)
        close(loss, expected)


def test_k3_values_by_hand():
    # d = ref - logp: 0 -> 0; log 2 -> 2 - log 2 - 1 = 0.3068528; -log 2 -> 0.5 + log 2 - 1 = 0.1931472
    logp = t([[0.0, 0.0, 0.0]])
    ref = t([[0.0, math.log(2), -math.log(2)]])
    close(k3_kl(logp, ref), [[0.0, 0.3068528194400546, 0.1931471805599454]], 1e-12)
    assert (k3_kl(torch.randn(50, dtype=D), torch.randn(50, dtype=D)) >= 0).all()


def test_kl_penalty_value_grad_and_stat():
    logp = torch.zeros(1, 3, dtype=D, requires_grad=True)
    ref = t([[0.0, math.log(2), -math.log(2)]])
    zero_adv = t([0.0])
    # A = 0 so the surrogate is 0; k3 sum = 0.3068528 + 0.1931472 = 0.5 exactly; token_mean 0.5/3.
    loss, stats = policy_loss(logp, logp.detach(), zero_adv, torch.ones(1, 3), ref_logp=ref, beta=0.1)
    close(loss, 0.1 * 0.5 / 3, 1e-12)
    assert stats["kl"] == pytest.approx(0.5 / 3)
    loss.backward()
    # d k3 / d logp = 1 - exp(d): [0, 1 - 2, 1 - 0.5] = [0, -1, 0.5]; times beta / N
    close(logp.grad, [[0.0, -0.1 / 3, 0.05 / 3]], 1e-12)
    # beta 0 with a reference: the loss ignores it, the stat is still reported.
    loss0, stats0 = policy_loss(logp, logp.detach(), zero_adv, torch.ones(1, 3), ref_logp=ref)
    close(loss0, 0.0)
    assert stats0["kl"] == pytest.approx(0.5 / 3)
    with pytest.raises(ValueError, match="ref_logp"):
        policy_loss(logp, logp.detach(), zero_adv, torch.ones(1, 3), beta=0.1)


def test_tis_weights_and_cap():
    logp = torch.zeros(1, 3, dtype=D, requires_grad=True)
    sampler = t([[math.log(2), math.log(1 / 1.5), math.log(1 / 6)]]).requires_grad_()
    # w = exp(old - sampler) with old = 0: [0.5, 1.5, 6] -> capped at 2: [0.5, 1.5, 2]
    # A = 1, on-policy: per token -w; token_mean = -(0.5 + 1.5 + 2) / 3 = -4/3
    loss, stats = policy_loss(logp, logp.detach(), t([1.0]), torch.ones(1, 3), sampler_logp=sampler)
    close(loss, -4 / 3, 1e-12)
    assert stats["is_weight_mean"] == pytest.approx(4 / 3)
    assert stats["is_clip_frac"] == pytest.approx(1 / 3)
    loss.backward()
    close(logp.grad, [[-0.5 / 3, -1.5 / 3, -2 / 3]], 1e-12)
    assert sampler.grad is None  # the weight is detached
    loss5, stats5 = policy_loss(
        logp, logp.detach(), t([1.0]), torch.ones(1, 3), sampler_logp=sampler, is_cap=5.0
    )
    close(loss5, -(0.5 + 1.5 + 5) / 3, 1e-12)
    assert stats5["is_clip_frac"] == pytest.approx(1 / 3)
    loss10, stats10 = policy_loss(
        logp, logp.detach(), t([1.0]), torch.ones(1, 3), sampler_logp=sampler, is_cap=10.0
    )
    close(loss10, -(0.5 + 1.5 + 6) / 3, 1e-12)
    assert stats10["is_clip_frac"] == 0.0


def test_tis_multiplies_the_clipped_surrogate_not_the_ratio():
    # ratio 1.5, A = +1: clipped surrogate 1.28; w = 0.5 -> loss -0.64, grad 0 (the clip branch).
    logp = t([[math.log(1.5)]]).requires_grad_()
    loss, stats = policy_loss(logp, t([[0.0]]), t([1.0]), t([[1]]), sampler_logp=t([[math.log(2)]]))
    close(loss, -0.64, 1e-12)
    assert stats["clip_frac"] == 1.0
    loss.backward()
    close(logp.grad, [[0.0]])


def test_policy_loss_input_errors():
    z = torch.zeros(2, 3, dtype=D)
    ones = torch.ones(2, 3)
    with pytest.raises(ValueError, match="advantages"):
        policy_loss(z, z, t([1.0, 2.0, 3.0]), ones)
    with pytest.raises(ValueError, match="old_logp shape"):
        policy_loss(z, torch.zeros(2, 2), t([1.0, 2.0]), ones)
    with pytest.raises(ValueError, match="is_cap"):
        policy_loss(z, z, t([1.0, 2.0]), ones, is_cap=2.0)
    with pytest.raises(ValueError, match="eps_low"):
        policy_loss(z, z, t([1.0, 2.0]), ones, eps_low=1.0)
    with pytest.raises(ValueError, match="beta"):
        policy_loss(z, z, t([1.0, 2.0]), ones, beta=-1.0)
    with pytest.raises(ValueError, match="unknown aggregation"):
        policy_loss(z, z, t([1.0, 2.0]), ones, aggregation="nope")


# ------------------------------------------------------------------------------------ per-turn advantages

# G = 3, T = 6, outcome advantages [0.5, -0.25, 0.0], turn_weight 0.5.
#   rollout 0: spans (0,2), (3,5); turn rewards [1, 0] -> returns-to-go [1, 0]
#   rollout 1: spans (0,1), (2,4); turn rewards [0, 1] -> returns-to-go [1, 1]
#   rollout 2: span  (1,3);        turn reward  [0]    -> return-to-go  [0]
# turn 0 across rollouts {0,1,2}: [1, 1, 0]; turn 1 across {0, 1}: [0, 1].
SPANS = [[(0, 2), (3, 5)], [(0, 1), (2, 4)], [(1, 3)]]
TURN_REWARDS = [[1.0, 0.0], [0.0, 1.0], [0.0]]
OUTCOME = [0.5, -0.25, 0.0]


def test_token_advantages_drgrpo_exact():
    # drgrpo: turn 0 [1, 1, 0] - 2/3 = [1/3, 1/3, -2/3]; turn 1 [0, 1] - 0.5 = [-0.5, 0.5]
    out = token_advantages(t(OUTCOME), SPANS, TURN_REWARDS, 6, turn_weight=0.5, estimator="drgrpo")
    a, b = 0.5 / 3, 0.25  # turn_weight * normalised return
    expected = [
        [0.5 + a, 0.5 + a, 0.5, 0.5 - b, 0.5 - b, 0.5],
        [-0.25 + a, -0.25, -0.25 + b, -0.25 + b, -0.25, -0.25],
        [0.0, 0.0 - 2 * a, 0.0 - 2 * a, 0.0, 0.0, 0.0],
    ]
    close(out, expected, 1e-6)
    assert out.shape == (3, 6) and out.dtype == torch.float32


def test_token_advantages_grpo_default():
    # grpo: turn 0 std (unbiased) sqrt(1/3) -> [1/3, 1/3, -2/3] / (0.5773503 + 1e-4) = [0.5772503, 0.5772503, -1.1545006]
    #       turn 1 std sqrt(0.5) -> [-0.5, 0.5] / (0.7071068 + 1e-4) = [-0.7070068, 0.7070068]
    out = token_advantages(t(OUTCOME), SPANS, TURN_REWARDS, 6, turn_weight=0.5)
    n0, n1 = 0.5772502865071344, 0.7070067953266834
    expected = [
        [0.5 + 0.5 * n0, 0.5 + 0.5 * n0, 0.5, 0.5 - 0.5 * n1, 0.5 - 0.5 * n1, 0.5],
        [-0.25 + 0.5 * n0, -0.25, -0.25 + 0.5 * n1, -0.25 + 0.5 * n1, -0.25, -0.25],
        [0.0, -0.5 * 2 * n0, -0.5 * 2 * n0, 0.0, 0.0, 0.0],
    ]
    close(out, expected, 1e-6)


def test_token_advantages_return_to_go_sums_later_turns():
    # Two rollouts, two turns each: rewards [1, 1] -> rtg [2, 1]; [0, 0] -> rtg [0, 0].
    # drgrpo: turn 0 [2, 0] -> [1, -1]; turn 1 [1, 0] -> [0.5, -0.5]. Outcome 0.
    out = token_advantages(
        t([0.0, 0.0]), [[(0, 1), (1, 2)]] * 2, [[1.0, 1.0], [0.0, 0.0]], 2, estimator="drgrpo"
    )
    close(out, [[1.0, 0.5], [-1.0, -0.5]], 1e-6)


def test_token_advantages_lone_turn_and_zero_weight():
    # Only rollout 0 reaches turn 1: a group of one -> 0 added there.
    out = token_advantages(
        t([0.0, 0.0]), [[(0, 1), (1, 2)], [(0, 1)]], [[0.0, 5.0], [1.0]], 3, estimator="drgrpo"
    )
    # turn 0 rtg: [5, 1] -> [2, -2]; turn 1: lone -> 0
    close(out, [[2.0, 0.0, 0.0], [-2.0, 0.0, 0.0]], 1e-6)
    flat = token_advantages(t(OUTCOME), SPANS, TURN_REWARDS, 6, turn_weight=0.0)
    close(flat, t(OUTCOME)[:, None].expand(3, 6), 1e-6)


@pytest.mark.parametrize(
    ("spans", "rewards", "match"),
    [
        ([[(0, 2), (1, 3)]], [[0.0, 1.0]], "overlapping"),
        ([[(0, 7)]], [[0.0]], "within"),
        ([[(2, 2)]], [[0.0]], "non-empty"),
        ([[(0, 1)]], [[0.0, 1.0]], "turn rewards"),
        ([[(0, 1)], [(0, 1)]], [[0.0], [1.0]], "one entry per rollout"),
    ],
)
def test_token_advantages_refuse_bad_spans(spans, rewards, match):
    with pytest.raises(ValueError, match=match):
        token_advantages(t([0.0]), spans, rewards, 6)


def test_token_advantages_feed_policy_loss():
    adv = token_advantages(t(OUTCOME), SPANS, TURN_REWARDS, 6, estimator="drgrpo")
    logp = torch.zeros(3, 6, dtype=torch.float32, requires_grad=True)
    mask = torch.ones(3, 6)
    loss, _ = policy_loss(logp, logp.detach(), adv, mask)
    close(loss, -adv.sum() / 18, 1e-6)


# ---------------------------------------------------------------------------- log-probs, entropy, PTX


def test_token_logprobs_by_hand_and_against_log_softmax():
    # logits [0, log 3] -> probs [1/4, 3/4]
    logits = t([[[0.0, math.log(3)], [0.0, math.log(3)]]])
    close(token_logprobs(logits, torch.tensor([[1, 0]])), [[math.log(0.75), math.log(0.25)]], 1e-6)
    # temperature 2 on [0, 2 log 3] is the same distribution
    close(
        token_logprobs(2 * logits, torch.tensor([[1, 0]]), temperature=2.0),
        [[math.log(0.75), math.log(0.25)]],
        1e-6,
    )
    g = torch.Generator().manual_seed(1)
    x = torch.randn(3, 5, 11, generator=g)
    ids = torch.randint(0, 11, (3, 5), generator=g)
    naive = torch.log_softmax(x, -1).gather(-1, ids[..., None]).squeeze(-1)
    for chunk in (1, 4, 256):
        close(token_logprobs(x, ids, chunk_size=chunk), naive, 1e-6)


def test_token_logprobs_gradient_matches_naive():
    g = torch.Generator().manual_seed(2)
    x1 = torch.randn(2, 3, 7, generator=g, dtype=D).requires_grad_()
    x2 = x1.detach().clone().requires_grad_()
    ids = torch.randint(0, 7, (2, 3), generator=g)
    token_logprobs(x1, ids, chunk_size=2).sum().backward()
    torch.log_softmax(x2, -1).gather(-1, ids[..., None]).sum().backward()
    close(x1.grad, x2.grad, 1e-6)


def test_token_logprobs_upcasts_bf16_and_refuses_bad_ids():
    x = torch.randn(1, 2, 5).bfloat16()
    assert token_logprobs(x, torch.tensor([[0, 4]])).dtype == torch.float32
    with pytest.raises(ValueError, match="lie in"):
        token_logprobs(x, torch.tensor([[0, 5]]))
    with pytest.raises(ValueError, match="must match"):
        token_logprobs(x, torch.tensor([[0, 1, 2]]))
    with pytest.raises(ValueError, match="integer"):
        token_logprobs(x, torch.tensor([[0.0, 1.0]]))


def test_entropy_by_hand():
    logits = t([[0.0, 0.0, 0.0, 0.0], [0.0, math.log(3), -math.inf, -math.inf]])
    # uniform over 4 -> log 4; [1/4, 3/4, 0, 0] -> -(0.25 log 0.25 + 0.75 log 0.75) = 0.5623351; -inf adds 0
    close(entropy_from_logits(logits), [math.log(4), 0.5623351446188083], 1e-6)
    assert entropy_from_logits(torch.randn(2, 3, 9), chunk_size=2).shape == (2, 3)
    # temperature -> infinity flattens; temperature 1e-3 on distinct logits is nearly deterministic
    close(entropy_from_logits(t([[0.0, 5.0]]), temperature=1e-3), [0.0], 1e-6)


def test_ptx_loss_is_mean_masked_nll():
    logits = t([[[0.0, math.log(3)], [0.0, math.log(3)], [9.0, 0.0]]]).requires_grad_()
    ids = torch.tensor([[1, 0, 1]])
    # masked tokens 0 and 1: -(log 0.75 + log 0.25) / 2
    loss = ptx_loss(logits, ids, t([[1, 1, 0]]))
    close(loss, -(math.log(0.75) + math.log(0.25)) / 2, 1e-6)
    loss.backward()
    close(logits.grad[0, 2], [0.0, 0.0])  # the masked token gets no gradient
    # d NLL / d logits = (softmax - onehot) / N: token 0 ([1/4, 3/4] - [0, 1]) / 2
    close(logits.grad[0, 0], [0.125, -0.125], 1e-6)
