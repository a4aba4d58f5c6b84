"""The GRPO trainer and SFT priming for real: the embedded model, real episodes, real updates."""

from __future__ import annotations

import json

import pytest
import torch

from agentgym.models import embedded
from agentgym.rewards import Component, RewardMix, Score, TrajectoryReward
from agentgym.train.grpo import GRPOConfig, GRPOTrainer
from agentgym.train.sequences import sft_sequence
from agentgym.train.sft import SFTConfig, oracle_conversations, train_sft

pytestmark = pytest.mark.slow


class Brevity(TrajectoryReward):
    """A reward that depends on exactly which tokens were sampled, so two samples (temperature 1)
    practically never tie and every group carries signal."""

    name = "brevity"

    def score_one(self, task, trajectory):
        ids = [i for t in trajectory.turns for i in (t.token_ids or ())]
        return Score((sum(ids) % 97) / 97 + 1e-3, {"tokens": len(ids)})


TASKS = ["calendar-cancel-demo", "calendar-dentist-time"]


def _cfg(tmp_path, **kw):
    base = dict(
        suite="starter",
        split=None,
        task_ids=TASKS,
        out=str(tmp_path / "run"),
        steps=1,
        tasks_per_step=1,
        group_size=2,
        max_new_tokens=6,
        max_turns=1,
        lr=1e-4,
        save_every=1,
    )
    base.update(kw)
    return GRPOConfig(**base)


def test_one_grpo_step_updates_the_policy_and_resumes_exactly(tmp_path):
    mix = RewardMix([Component(Brevity())])
    tr = GRPOTrainer(_cfg(tmp_path), mix=mix)
    before = {n: p.detach().clone() for n, p in tr.module.named_parameters()}
    [m] = tr.train()
    assert m["groups_informative"] == 1 and m["sequences"] == 2 and m["exact_sequences"] == 2
    assert m["train_tokens"] > 0 and m["grad_norm"] > 0 and "clip_frac" in m and "entropy" in m
    assert m["reward/brevity"] > 0 and tr.version == 1
    changed = sum(not torch.equal(before[n], p) for n, p in tr.module.named_parameters())
    assert changed > 0
    out = tmp_path / "run"
    assert (out / "checkpoint" / "trainer.json").exists() and (out / "curve.png").stat().st_size > 1000
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 1
    # resume: a new trainer picks up the step, the version and the weights
    again = GRPOTrainer(_cfg(tmp_path, steps=2), mix=mix)
    assert again.step == 1 and again.version == 1
    for n, p in again.module.named_parameters():
        assert torch.equal(p, dict(tr.module.named_parameters())[n])
    again.train()
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 2
    assert json.loads((out / "metrics.jsonl").read_text().splitlines()[1])["step"] == 1


def test_set_up_and_resume_run_on_the_generation_thread(tmp_path, monkeypatch):
    """A resumed checkpoint's load is parallel torch work: on the main thread it would give the
    process a second OpenMP team and slow every later step 1.5-2x (bench/RESULTS.md). It runs on
    the thread generation and updates run on."""
    import threading

    mix = RewardMix([Component(Brevity())])
    GRPOTrainer(_cfg(tmp_path), mix=mix).train()
    seen = []
    resume = GRPOTrainer._resume
    monkeypatch.setattr(
        GRPOTrainer, "_resume", lambda self: (seen.append(threading.current_thread()), resume(self))
    )
    again = GRPOTrainer(_cfg(tmp_path, steps=2), mix=mix)
    assert again.step == 1
    assert seen == [again.chat._worker] and seen[0] is not threading.main_thread()


def test_a_dropped_trainer_frees_its_model_and_worker(tmp_path):
    """After an update (run on the generation worker), dropping the trainer frees the model, the
    optimizer state and the worker thread: the worker keeps nothing of a finished job (a kept
    update closure held every trainer of a test session, 20 GB by the end of tests/train)."""
    import gc
    import time
    import weakref

    tr = GRPOTrainer(_cfg(tmp_path, save_every=10), mix=RewardMix([Component(Brevity())]))
    [m] = tr.train()
    assert m["sequences"] == 2  # an update ran on the worker
    model, worker = weakref.ref(tr.chat), tr.chat._worker
    del tr
    deadline = time.monotonic() + 10
    while (model() is not None or worker.is_alive()) and time.monotonic() < deadline:
        gc.collect()
        time.sleep(0.1)
    assert model() is None and not worker.is_alive()


def test_bf16_moments_train_and_resume(tmp_path):
    """`optimizer: adamw_bf16` on the real model: the moments are bf16 and come back from the
    checkpoint as they were saved (not widened to the parameters' fp32 by `load_state_dict`)."""
    mix = RewardMix([Component(Brevity())])
    tr = GRPOTrainer(_cfg(tmp_path, optimizer="adamw_bf16"), mix=mix)
    before = {n: p.detach().clone() for n, p in tr.module.named_parameters()}
    [m] = tr.train()
    assert m["grad_norm"] > 0
    assert sum(not torch.equal(before[n], p) for n, p in tr.module.named_parameters()) > 0
    saved = list(tr.opt.state.values())
    assert len(saved) == len(before)
    assert all(s["exp_avg"].dtype == s["exp_avg_sq"].dtype == torch.bfloat16 for s in saved)
    again = GRPOTrainer(_cfg(tmp_path, steps=2, optimizer="adamw_bf16"), mix=mix)
    loaded = list(again.opt.state.values())
    assert again.step == 1 and len(loaded) == len(saved)
    for a, b in zip(saved, loaded, strict=True):
        assert b["exp_avg"].dtype == torch.bfloat16 and torch.equal(a["exp_avg_sq"], b["exp_avg_sq"])
        assert float(a["step"]) == float(b["step"]) == 1.0
    again.train()
    assert all(float(s["step"]) == 2.0 for s in again.opt.state.values())


def test_lora_trains_only_the_adapter(tmp_path):
    tr = GRPOTrainer(_cfg(tmp_path, lora={"r": 4, "alpha": 8}), mix=RewardMix([Component(Brevity())]))
    trainable = [n for n, p in tr.module.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)
    [m] = tr.train()
    assert m["grad_norm"] > 0
    weights = torch.load(tmp_path / "run" / "checkpoint" / "weights.pt", weights_only=True)
    assert weights and all("lora_" in k for k in weights)  # the checkpoint is the adapter alone


def test_bad_config_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="unknown advantage"):
        GRPOTrainer(_cfg(tmp_path, advantage="nope"))
    with pytest.raises(ValueError):
        GRPOConfig(group_size=1)


def test_sft_masks_exactly_the_assistant_turns_and_learns(tmp_path):
    from agentgym.models import load_model

    chat = load_model("embedded")
    rows = oracle_conversations("starter", None, 3)
    assert rows
    seq = sft_sequence(chat, rows[0]["messages"], rows[0]["tools"])
    targets = chat.decode([i for i, m in zip(seq.ids, seq.mask, strict=True) if m])
    assert "<tool_call>" in targets and targets.count("<|im_end|>") == sum(
        1 for m in rows[0]["messages"] if m["role"] == "assistant"
    )
    assert "<|im_start|>user" not in targets and "<tool_response>" not in targets
    summary = train_sft(
        SFTConfig(
            suite="starter", split=None, max_examples=2, epochs=2, lr=1e-4, batch_size=2, out=str(tmp_path)
        )
    )
    losses = [json.loads(x)["loss"] for x in (tmp_path / "sft_metrics.jsonl").read_text().splitlines()]
    assert summary["examples"] == 2 and losses[-1] < losses[0]
    assert (tmp_path / "model" / "model.safetensors").exists()
    assert embedded.checkpoint_dir() != tmp_path / "model"
