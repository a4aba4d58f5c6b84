"""The GRPO trainer's operations for real (embedded model, real episodes, tiny settings): resume without
duplicated metrics, asynchronous rollouts with bounded staleness, monitors, Ray rollout actors, bf16
autocast. Plus plumbing tests of the monitor feed and the off-policy loss that need no model."""

from __future__ import annotations

import json
import logging
import sys
import threading
from pathlib import Path

import pytest
import torch

from agentgym.rewards import Component, RewardMix, Score, TrajectoryReward
from agentgym.rewards.monitors import FormatVsSuccessMonitor
from agentgym.spec.trajectory import Trajectory
from agentgym.train.async_rollouts import PRODUCER_THREAD
from agentgym.train.grpo import GRPOConfig, GRPOTrainer
from agentgym.train.objectives import policy_loss


def weather_suite():
    """bench/rollouts.py's weather suite, its Paris task only."""
    from agentgym.suites.suite import TaskSuite

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
    from rollouts import weather_suite as bench_suite

    s = bench_suite()
    return TaskSuite(s.name, s.world, s.agents, {"weather-paris": s.tasks["weather-paris"]})


class Brevity(TrajectoryReward):
    """Depends on exactly which tokens were sampled, so two samples practically never tie and every
    group carries signal (every step updates the policy)."""

    name = "brevity"

    def score_one(self, task, trajectory):
        ids = [i for t in trajectory.turns for i in (t.token_ids or ())]
        return Score((sum(ids) % 97) / 97 + 1e-3, {"tokens": len(ids)})


def _mix():
    return RewardMix([Component(Brevity())])


def _cfg(tmp_path, **kw):
    base = dict(
        out=str(tmp_path / "run"),
        split=None,
        steps=2,
        tasks_per_step=1,
        group_size=2,
        max_new_tokens=8,
        max_turns=1,
        lr=1e-4,
        save_every=10,
    )
    base.update(kw)
    return GRPOConfig(**base)


def _trainer(tmp_path, **kw):
    return GRPOTrainer(_cfg(tmp_path, **kw), mix=_mix(), suite=weather_suite())


def _producer_threads():
    return [t for t in threading.enumerate() if t.name == PRODUCER_THREAD or t.name.endswith("/sampler")]


def _steps(path):
    return [json.loads(line)["step"] for line in path.read_text().splitlines()]


# ---------------------------------------------------------------------------------------------- resume


@pytest.mark.slow
def test_resume_after_a_crash_logs_every_step_once(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    class Crash(Exception):
        pass

    def crash_after_third(m):
        if m["step"] == 2:  # step 2 is logged, the final save never happens
            raise Crash

    lora = {"r": 4, "alpha": 8}  # a small checkpoint: the test is about the metrics
    tr = _trainer(tmp_path, steps=3, save_every=2, lora=lora, gradient_checkpointing=False)
    with pytest.raises(Crash):
        tr.train(on_step=crash_after_third)
    out = tmp_path / "run"
    assert _steps(out / "metrics.jsonl") == [0, 1, 2]
    assert json.loads((out / "checkpoint" / "trainer.json").read_text())["step"] == 2

    again = _trainer(tmp_path, steps=3, save_every=2, lora=lora, gradient_checkpointing=False)
    assert again.step == 2 and _steps(out / "metrics.jsonl") == [0, 1]  # cut on resume
    again.train()
    assert _steps(out / "metrics.jsonl") == [0, 1, 2]
    acc = EventAccumulator(str(out / "tb"))
    acc.Reload()
    assert [e.step for e in acc.Scalars("reward")] == [0, 1, 2]


# ----------------------------------------------------------------------------------------------- async


@pytest.mark.slow
def test_async_rollouts_respect_the_staleness_bound_and_tag_versions(tmp_path):
    k = 1
    tr = _trainer(tmp_path, steps=3, async_staleness=k)
    seen = []

    def record(m):
        seen.append((m, [[t.policy_version for tr_ in g for t in tr_.turns] for g in tr.last_groups]))

    history = tr.train(on_step=record)
    assert len(history) == 3 and tr.version == 3  # every step updated (Brevity never ties)
    for m, versions in seen:
        flat = [v for g in versions for v in g]
        assert flat and all(isinstance(v, int) for v in flat)  # every turn tagged
        assert min(flat) >= m["policy_version"] - k  # the bound
        assert m["batch_min_version"] == min(flat)
        assert 0 <= m["staleness_mean"] <= m["staleness_max"] <= k
        assert m["gen_wait_s"] >= 0 and m["groups_dropped_stale"] >= 0
    assert seen[0][0]["staleness_max"] == 0  # the first batch comes from the initial weights
    assert min(seen[-1][1][0]) >= 1  # the bound at version 2 forces weights the trainer published
    assert not _producer_threads()  # stopped when train() returned


@pytest.mark.slow
def test_sampler_loads_published_weights_before_its_next_batch(tmp_path):
    from agentgym.models.base import SamplingParams
    from agentgym.train.async_rollouts import SamplerModel

    tr = _trainer(tmp_path)
    sampler = SamplerModel(tr.chat, version=0)
    name, p = next(iter(tr.module.named_parameters()))
    trained = p.detach().clone()
    assert sampler.model is not tr.module and torch.equal(dict(sampler.model.named_parameters())[name], p)
    sampler.publish({name: p.detach() + 1.0}, version=7)
    assert not torch.equal(dict(sampler.model.named_parameters())[name], p + 1.0)  # pending, not loaded
    msgs = [{"role": "user", "content": "Hi"}]
    c = sampler.generate_sync(msgs, None, SamplingParams(temperature=1.0, max_new_tokens=2))
    assert c.policy_version == 7 and c.as_action()["policy_version"] == 7
    assert torch.equal(dict(sampler.model.named_parameters())[name], p + 1.0)
    assert torch.equal(p, trained)  # the trained module itself is untouched
    sampler.close()


@pytest.mark.slow
def test_async_producer_stops_when_a_step_raises(tmp_path):
    tr = _trainer(tmp_path, steps=3, async_staleness=1, lora={"r": 4, "alpha": 8})  # adapter publishing

    def boom(m):
        assert _producer_threads()  # running while training
        sampler = tr._producer.sampler
        pending = sampler._pending
        if pending is not None:  # published, not loaded yet: the adapter alone
            assert pending[1] == 1 and pending[0] and all("lora_" in k for k in pending[0])
        else:  # already loaded by the sampler's next batch
            assert sampler.version == 1
            state = sampler.model.state_dict()
            for n, p in tr.module.named_parameters():
                assert not p.requires_grad or torch.equal(state[n], p)
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        tr.train(on_step=boom)
    assert not _producer_threads() and tr._producer is None


def test_async_and_ray_together_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="cannot be combined"):
        GRPOTrainer(_cfg(tmp_path, async_staleness=1, ray_workers=2), model=object(), suite=weather_suite())


def test_stale_tokens_get_the_truncated_importance_weight():
    """With one pass (old_logp = logp.detach()) the gradient of a token is
    -A * min(pi / mu, cap) * dlogp: the truncated-IS policy gradient against the sampler."""
    logp = torch.tensor([[-1.0, -2.0, -0.5]], requires_grad=True)
    sampler = torch.tensor([[-1.5, -0.5, -0.5]])  # token 0: pi/mu = e^0.5; token 1: e^-1.5; token 2: 1
    mask = torch.ones(1, 3)
    loss, stats = policy_loss(
        logp,
        logp.detach(),
        torch.tensor([1.0]),
        mask,
        sampler_logp=sampler,
        is_cap=1.5,
        aggregation="token_mean",
    )
    loss.backward()
    w = torch.tensor([min(torch.e**0.5, 1.5), torch.e**-1.5, 1.0])
    assert torch.allclose(logp.grad, -w / 3, atol=1e-6)
    assert stats["ratio_mean"] == pytest.approx(1.0) and stats["is_clip_frac"] == pytest.approx(1 / 3)


# -------------------------------------------------------------------------------------------- monitors


def _traj(task, score, comps):
    from agentgym.spec.trajectory import RubricResult

    return Trajectory.model_validate(
        {
            "id": f"{task}/{score}",
            "task_id": task,
            "agent_id": "wx",
            "policy": "p",
            "seed": 0,
            "messages": [],
            "tools": [],
            "turns": [],
            "reward": score,
            "reward_components": comps,
            "rubric": RubricResult(score=score, passed=score == 1.0, gated=False, criteria=()).model_dump(),
        }
    )


def test_format_monitor_is_fed_and_warns_once(tmp_path, caplog):
    from agentgym.rewards.registry import default_mix
    from agentgym.train.monitoring import TrainingMonitors

    mon = TrainingMonitors(default_mix(), tmp_path)
    assert mon.format_key == "gate/format_gate" and mon.critic is None
    with caplog.at_level(logging.WARNING, logger="agentgym.train.monitoring"):
        outs = [mon.observe(s, {"reward/gate/format_gate": 0.1 * s, "pass_rate": 0.2}, []) for s in range(8)]
    assert outs[0] == {"monitor/format_vs_success": 0.0, "monitor/format_vs_success/fired": 0.0}
    assert [o["monitor/format_vs_success"] for o in outs[4:]] == [1.0] * 4  # fires from the 5th point
    assert outs[-1]["monitor/format_vs_success/format_slope"] == pytest.approx(0.1)
    assert sum("format_vs_success fired" in r.message for r in caplog.records) == 1
    # a mix without a format component feeds nothing
    assert TrainingMonitors(_mix(), tmp_path).observe(0, {"pass_rate": 1.0}, []) == {}
    # replay continues the window after a resume
    fresh = TrainingMonitors(default_mix(), tmp_path)
    fresh.replay([{"step": s, "reward/gate/format_gate": 0.1 * s, "pass_rate": 0.2} for s in range(4)])
    assert fresh.observe(4, {"reward/gate/format_gate": 0.4, "pass_rate": 0.2}, [])[
        "monitor/format_vs_success"
    ]
    assert isinstance(fresh.format, FormatVsSuccessMonitor) and len(fresh.format.history) == 5


def test_critic_agreement_is_recorded_per_step(tmp_path, scripted):
    from agentgym.rewards.critique import SelfCritiqueReward
    from agentgym.rewards.penalties import FormatGate
    from agentgym.train.monitoring import TrainingMonitors, critic_agreement

    critic = SelfCritiqueReward(scripted(["<verdict>A</verdict>"]))
    mix = RewardMix([Component(FormatGate(), gate=True), Component(critic)])
    mon = TrainingMonitors(mix, tmp_path)
    assert mon.critic == critic.name
    group = [
        _traj("t", 1.0, {critic.name: 0.9}),
        _traj("t", 0.0, {critic.name: 0.1}),  # agrees with the first
        _traj("t", 0.5, {critic.name: 0.95}),  # disagrees with the first, agrees with the second
        _traj("t", 0.5, {critic.name: 0.95}),  # critic tie with the third; rubric tie with it
    ]
    a = critic_agreement([group], critic.name)
    assert (a.agree, a.disagree, a.critic_ties, a.verifiable_ties) == (3, 2, 0, 1)
    out = mon.observe(3, {"reward/gate/format_gate": 1.0, "pass_rate": 0.25}, [group])
    assert out["monitor/critic_agreement"] == pytest.approx(3 / 5)
    rows = mon.history.read()
    assert rows[0]["step"] == 3 and rows[0]["agree"] == 3 and rows[0]["component"] == critic.name


# ---------------------------------------------------------------------------------------- ray and bf16


@pytest.mark.slow
def test_ray_actors_play_complete_tagged_groups(tmp_path):
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, object_store_memory=1024**3)
    try:
        tr = _trainer(tmp_path, steps=1, ray_workers=2, ray_cpus_per_worker=0.5, threads=1)
        [m] = tr.train()
        [group] = tr.last_groups
        assert [t.id for t in group] == [f"weather-paris/{g}/policy@0" for g in (0, 1)]
        for t in group:
            assert t.turns and all(x.policy_version == 0 and x.token_ids and x.logprobs for x in t.turns)
        assert m["sequences"] == 2 and m["exact_sequences"] == 2 and tr.version == 1
        assert tr._ray is None  # actors closed with the loop
    finally:
        ray.shutdown()


@pytest.mark.slow
def test_bf16_autocast_step_on_cpu_changes_the_weights(tmp_path):
    tr = _trainer(tmp_path, steps=1, autocast=True, device="cpu")
    before = {n: p.detach().clone() for n, p in tr.module.named_parameters()}
    [m] = tr.train()
    assert m["grad_norm"] > 0 and math_finite(m["loss"])
    assert all(p.dtype == torch.float32 for p in tr.module.parameters())  # fp32 master weights
    assert sum(not torch.equal(before[n], p) for n, p in tr.module.named_parameters()) > 0


def math_finite(x):
    return x == x and abs(x) != float("inf")
