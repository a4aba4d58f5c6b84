"""The shared-prefix forward (`sequences.masked_logprobs`) gives the plain forward's logprobs and gradients."""

from __future__ import annotations

import weakref

import pytest
import torch

from agentgym.models.tokens import TokenSequence
from agentgym.train import sequences
from agentgym.train.sequences import masked_logprobs, pad, shared_prefix


def _seq(ids: list[int], mask: list[int]) -> TokenSequence:
    s = TokenSequence()
    for i, m in zip(ids, mask, strict=True):
        (s._model([i], None) if m else s._env([i]))
    return s


def test_shared_prefix_length():
    a = _seq([1, 2, 3, 4, 5], [0, 0, 0, 1, 1])
    b = _seq([1, 2, 3, 9], [0, 0, 0, 1])
    assert shared_prefix(pad([a, b], 0)) == 3
    assert shared_prefix(pad([a], 0)) == 0  # one row: nothing to share
    same = pad([a, a], 0)
    assert shared_prefix(same) == 4  # identical rows: all but the last token
    c = _seq([1, 2], [0, 1])  # shorter row: its padding is never part of the prefix,
    assert shared_prefix(pad([a, c], 0)) == 2
    assert shared_prefix(pad([a, c], 3)) == 2  # not even when the pad id matches the other row's token


@pytest.fixture(scope="module")
def chat():
    from agentgym.models import embedded

    return embedded.load()


def _batch(chat):
    head = chat.encode("<|im_start|>system\nYou answer weather questions with the tool you have.<|im_end|>\n")
    rows = []
    for k, tail in enumerate(["Paris is 10 C and clear.", "Lima: 19 C, rain", "It is cold in Oslo today"]):
        ids = head + chat.encode(f"<|im_start|>user\nweather {k}?<|im_end|>\n<|im_start|>assistant\n" + tail)
        n = len(chat.encode(tail))
        rows.append(_seq(ids, [0] * (len(ids) - n) + [1] * n))
    return pad(rows, chat._pad)


@pytest.mark.slow
@pytest.mark.parametrize("checkpointing", [False, True])
def test_shared_forward_equals_plain_forward(chat, checkpointing):
    from agentgym.train.grpo import enable_checkpointing

    module = chat.model
    enable_checkpointing(module, checkpointing)
    module.train()
    batch = _batch(chat)
    assert shared_prefix(batch) >= sequences.MIN_SHARED_PREFIX
    got = {}
    try:
        for share in (False, True):
            module.zero_grad(set_to_none=True)
            logp, ent = masked_logprobs(module, batch, temperature=0.7, with_entropy=True, share_prefix=share)
            (-(logp * batch.mask[:, 1:]).sum()).backward()
            grads = torch.cat([p.grad.flatten() for p in module.parameters() if p.grad is not None])
            got[share] = (logp.detach(), ent, grads)
    finally:
        module.zero_grad(set_to_none=True)
        module.eval()
        enable_checkpointing(module, False)
    (lp0, e0, g0), (lp1, e1, g1) = got[False], got[True]
    assert batch.mask[:, 1:].sum() > 0
    assert torch.allclose(lp0, lp1, atol=1e-4)
    assert torch.allclose(e0, e1, atol=1e-4)
    assert float((g0 - g1).norm() / g0.norm()) < 1e-4


def _saved_bytes(module, batch, share: bool) -> int:
    """Bytes of activations autograd keeps for the backward of one `masked_logprobs` call."""
    params = {p.untyped_storage().data_ptr() for p in module.parameters()}
    kept: dict[int, int] = {}

    def pack(t):
        st = t.untyped_storage()
        if st.data_ptr() not in params:
            kept[st.data_ptr()] = st.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        logp, _ = masked_logprobs(module, batch, share_prefix=share)
    del logp
    return sum(kept.values())


@pytest.mark.slow
def test_shared_forward_keeps_checkpointing(chat):
    """Under activation checkpointing the shared path saves only layer inputs, as the plain
    checkpointed forward does: far less than either path without checkpointing."""
    from agentgym.train.grpo import enable_checkpointing

    module = chat.model
    batch = _batch(chat)
    module.train()
    try:
        full = _saved_bytes(module, batch, share=True)
        enable_checkpointing(module, True)
        plain, shared = _saved_bytes(module, batch, share=False), _saved_bytes(module, batch, share=True)
    finally:
        module.eval()
        enable_checkpointing(module, False)
    assert shared < full / 4, (shared, full)
    assert shared < plain * 1.5, (shared, plain)


@pytest.mark.slow
def test_suffix_gradients_land_before_the_prefix_backward(chat, monkeypatch):
    """Every parameter gets its suffix-pass gradient before the prefix pass's backward starts, so
    none waits in autograd's buffers for the prefix (which would hold every parameter's gradient at
    once, beside `p.grad` or an optimizer's own store); and the prefix pass's graph is freed after
    the backward (not kept alive by a reference cycle autograd's hooks can make)."""
    module = chat.model
    module.train()
    events: list[str] = []
    names = {p: n for n, p in module.named_parameters()}
    handles = [p.register_post_accumulate_grad_hook(lambda p: events.append(names[p])) for p in names]
    prefix_outputs: list[weakref.ref] = []
    forward = sequences._Junction.forward

    def spy(ctx, sources, *copies):
        prefix_outputs.extend(weakref.ref(t) for t in sources)
        return forward(ctx, sources, *copies)

    monkeypatch.setattr(sequences._Junction, "forward", staticmethod(spy))
    try:
        logp, _ = masked_logprobs(module, _batch(chat))
        (-logp.sum()).backward()
        del logp
    finally:
        for h in handles:
            h.remove()
        module.zero_grad(set_to_none=True)
        module.eval()
    repeat = next(i for i, n in enumerate(events) if n in events[:i])  # the prefix pass's first
    assert set(events[:repeat]) == set(names.values())
    assert len(events) == 2 * len(names)
    assert len(prefix_outputs) == 1 + 2 * len(module.model.layers)
    assert all(ref() is None for ref in prefix_outputs)
