"""The chunked vocabulary head (`sequences._ChunkedHead`): the plain head's log-probabilities,
entropies and gradients, with the weight's gradient handed to `adamw_bf16` block by block."""

from __future__ import annotations

import gc

import pytest
import torch
from test_shared_prefix import _batch

from agentgym.train import sequences
from agentgym.train.optim import AdamWBF16
from agentgym.train.sequences import _ChunkedHead, masked_logprobs


def _plain(h, w, targets, temperature):
    logits = (h @ w.t()) / temperature
    logp = logits.gather(-1, targets[:, None]).squeeze(-1) - torch.logsumexp(logits, -1)
    p = torch.softmax(logits, -1)
    return logp, -torch.special.xlogy(p, p).sum(-1)


@pytest.mark.parametrize("temperature", [1.0, 0.7])
def test_blocks_give_the_plain_heads_values_and_gradients(monkeypatch, temperature):
    monkeypatch.setattr(sequences, "HEAD_BLOCK", 13 * 300)  # 300 vocabulary rows a block: 4 blocks
    g = torch.Generator().manual_seed(3)
    h = torch.randn(13, 24, generator=g, requires_grad=True)
    w = torch.nn.Parameter(torch.randn(1000, 24, generator=g) * 0.3)
    targets = torch.tensor([0, 299, 300, 999, 5, 650, 901, 1, 2, 3, 4, 600, 899])
    coef = torch.randn(13, generator=g)
    logp, ent = _ChunkedHead.apply(h, w, targets, temperature)
    (logp * coef).sum().backward()
    got = (logp.detach(), ent, h.grad.clone(), w.grad.clone())
    h.grad, w.grad = None, None
    want_logp, want_ent = _plain(h, w, targets, temperature)
    (want_logp * coef).sum().backward()
    torch.testing.assert_close(got[0], want_logp.detach(), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(got[1], want_ent.detach(), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(got[2], h.grad, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(got[3], w.grad, rtol=1e-5, atol=1e-6)
    assert not ent.requires_grad


def test_the_sink_adds_rows_into_the_buffer_as_a_dense_gradient_would():
    torch.manual_seed(0)
    p = torch.nn.Parameter(torch.zeros(10, 4))
    opt = AdamWBF16([p], lr=0.1)
    g = torch.randn(10, 4)
    add = opt.row_sink(p)
    add(6, g[6:])  # any order, rows not yet covered count as zero
    add(0, g[:6])
    torch.testing.assert_close(opt._grads[p].float(), g.bfloat16().float())
    p.grad = g.clone()  # a second gradient, the usual way: added
    opt._take(p)
    torch.testing.assert_close(opt._grads[p].float(), 2 * g, rtol=1e-2, atol=1e-2)
    opt.zero_grad()
    opt.row_sink(p)(3, g[3:5])  # fresh again: the other rows are zero, not the old sum
    held = opt._grads[p].float()
    assert torch.count_nonzero(held[:3]) == 0 and torch.count_nonzero(held[5:]) == 0
    torch.testing.assert_close(held[3:5], g[3:5].bfloat16().float())


@pytest.fixture(scope="module")
def chat():
    from agentgym.models import embedded

    return embedded.load()


@pytest.mark.slow
def test_the_embedded_model_trains_the_same_with_the_chunked_head(chat):
    """SmolLM2 (tied head), shared prefix and checkpointing as the trainer runs them: every
    parameter's gradient through the chunked head into `adamw_bf16`'s buffers equals the plain
    head's fp32 gradient to bf16 rounding, and no fp32 gradient of the head's size is allocated."""
    from agentgym.train.grpo import enable_checkpointing

    module = chat.model
    enable_checkpointing(module, True)
    module.train()
    batch = _batch(chat)
    weights = dict(module.named_parameters())
    head = module.get_output_embeddings().weight
    try:
        module.zero_grad(set_to_none=True)
        logp0, ent0 = masked_logprobs(module, batch, temperature=0.7, with_entropy=True)
        (-(logp0 * batch.mask[:, 1:]).sum()).backward()
        plain = {n: p.grad.clone() for n, p in weights.items() if p.grad is not None}
        module.zero_grad(set_to_none=True)

        opt = AdamWBF16(module.parameters(), lr=1e-6)
        seen = []
        hook = head.register_hook(lambda g: seen.append(g.is_sparse))  # the input side's: sparse
        logp1, ent1 = masked_logprobs(module, batch, temperature=0.7, with_entropy=True)
        (-(logp1 * batch.mask[:, 1:]).sum()).backward()
        hook.remove()
        held = {n: opt._grads[p].float() for n, p in weights.items() if p in opt._filled}
        assert seen and all(seen), seen  # no dense vocabulary-sized gradient
    finally:
        del opt
        gc.collect()
        module.zero_grad(set_to_none=True)
        module.eval()
        enable_checkpointing(module, False)
    torch.testing.assert_close(logp1.detach(), logp0.detach(), rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(ent1, ent0, rtol=1e-4, atol=1e-4)
    assert set(held) == set(plain)
    for name, g in plain.items():
        err = float((held[name] - g).norm() / g.norm())
        assert err < 1e-2, (name, err)
