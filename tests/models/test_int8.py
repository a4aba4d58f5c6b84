"""The int8 sampling copy (`agentgym.models.int8`) of the embedded model: shares the float tensors,
stays close to the float model, follows it after `refresh`, and trains through GRPO."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from agentgym.models.int8 import Int8Linear, int8_sampler, refresh


@pytest.fixture(scope="module")
def model():
    from agentgym.models import embedded

    return embedded.load()


@pytest.fixture(scope="module")
def pair(model):
    return model, int8_sampler(model.model)


def _prompt(model) -> torch.Tensor:
    msgs = [
        {"role": "system", "content": "You answer weather questions with the tools you have."},
        {"role": "user", "content": "What is the weather in Paris right now, and should I take a coat?"},
    ]
    return torch.tensor([model.sequence(msgs, None, add_generation_prompt=True).ids])


def test_linears_are_int8_and_everything_else_is_shared(pair):
    model, sampler = pair
    linears = [m for m in sampler.modules() if isinstance(m, Int8Linear)]
    assert len(linears) == sum(isinstance(m, torch.nn.Linear) for m in model.model.modules()) > 0
    assert not any(isinstance(m, torch.nn.Linear) for m in sampler.modules())
    assert sampler.model.embed_tokens.weight is model.model.model.embed_tokens.weight
    assert all(m.qweight.dtype == torch.int8 for m in linears)
    float_ids = {id(p) for p in model.model.parameters()}
    assert all(id(p) in float_ids for p in sampler.parameters())  # nothing float was copied
    assert all(p.requires_grad for p in model.model.parameters())  # and the trainer's are untouched


def test_the_int8_policy_is_close_to_the_float_one(pair):
    model, sampler = pair
    x = _prompt(model)
    with torch.inference_mode():
        a = torch.log_softmax(model.model(x).logits[0].float(), -1)
        b = torch.log_softmax(sampler(x).logits[0].float(), -1)
    kl = (a.exp() * (a - b)).sum(-1)
    agree = (a.argmax(-1) == b.argmax(-1)).float().mean()
    assert kl.mean() < 0.15 and agree > 0.8, (float(kl.mean()), float(agree))


def test_refresh_follows_the_float_weights(model):
    sampler = int8_sampler(model.model)
    x = _prompt(model)
    w = model.model.model.layers[0].mlp.down_proj.weight
    saved = w.detach().clone()
    try:
        with torch.inference_mode():
            before = sampler(x).logits
            with torch.no_grad():
                w.mul_(-1.0)
            stale = sampler(x).logits
            refresh(sampler)
            fresh = sampler(x).logits
            want = model.model(x).logits
        assert torch.equal(before, stale)  # int8 weights change only on refresh
        assert not torch.allclose(fresh, stale, atol=1e-2)
        assert (fresh - want).abs().mean() < (stale - want).abs().mean()
    finally:
        with torch.no_grad():
            w.copy_(saved)


def test_peft_models_and_other_devices_are_refused(model):
    class Peft(torch.nn.Module):
        peft_config = None

    with pytest.raises(TypeError, match="LoRA"):
        int8_sampler(Peft())


@pytest.mark.slow
def test_grpo_samples_with_the_int8_copy_and_corrects_the_mismatch(tmp_path):
    from agentgym.train.grpo import GRPOConfig, GRPOTrainer

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
    from grpo import peer_suite

    cfg = GRPOConfig(
        out=str(tmp_path / "run"), steps=2, tasks_per_step=1, group_size=2, max_new_tokens=12,
        max_turns=1, suite="weather", split=None, filter_zero_advantage=False, generator="local_int8",
        lr=1e-4,
    )  # fmt: skip
    assert cfg.sync == "int8"
    tr = GRPOTrainer(cfg, suite=peer_suite("single"))
    assert tr.generator is not tr.chat
    q = next(m for m in tr.generator.model.modules() if isinstance(m, Int8Linear))
    synced = []
    tr.sync = lambda module, version, _s=tr.sync: (_s(module, version), synced.append(version))
    hist = tr.train()
    assert len(hist) == 2 and tr.generator.batches  # the int8 copy did the sampling
    assert synced == [1, 2]  # requantized after every update, and it holds the trained weights:
    w = q._source[0].detach()
    assert (q.qweight.float() * q.scale[:, None] - w).abs().max() <= q.scale.max() / 2 + 1e-6
    turns = [t for g in tr.last_groups for traj in g for t in traj.turns]
    assert turns and all(t.logprobs for t in turns)
    assert "is_clip_frac" in hist[-1] and "is_weight_mean" in hist[-1]


def test_int8_config_errors_are_clear():
    from agentgym.train.grpo import GRPOConfig
    from agentgym.train.lora import LoraSettings

    with pytest.raises(ValueError, match="sync: int8"):
        GRPOConfig(generator="local_int8", sync="none")
    with pytest.raises(ValueError, match="needs generator: local_int8"):
        GRPOConfig(sync="int8")
    with pytest.raises(ValueError, match="no lora"):
        GRPOConfig(generator="local_int8", lora=LoraSettings())
