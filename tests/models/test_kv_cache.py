"""The in-place key/value cache and the one-uniform categorical draw of the decode loop."""

from __future__ import annotations

import pytest
import torch

from agentgym.models import SamplingParams, kv_cache
from agentgym.models.decoding import _categorical, _top_p
from agentgym.models.embedded import prepare
from agentgym.models.kv_cache import GrowingLayer, growing_layers
from agentgym.models.transformers_model import TransformersChatModel, _Request


def _kv(rows, n, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(rows, 3, n, 8, generator=g), torch.randn(rows, 3, n, 8, generator=g)


def test_updates_equal_concatenation_and_write_in_place():
    k0, v0 = _kv(2, 5, 0)
    keep = (k0.clone(), v0.clone())
    layer = GrowingLayer(k0, v0)
    want_k, want_v = k0, v0
    seen_k, ptrs = [], set()
    for step in range(80):
        k, v = _kv(2, 1 if step else 3, step + 1)
        got_k, got_v = layer.update(k, v)
        want_k, want_v = torch.cat([want_k, k], -2), torch.cat([want_v, v], -2)
        assert torch.equal(got_k, want_k) and torch.equal(got_v, want_v)
        assert layer.get_seq_length() == want_k.shape[-2]
        seen_k.append((got_k, want_k.clone()))
        ptrs.add(got_k.data_ptr())
    # the tensors it started from are never written; the buffer is reallocated only when full
    assert torch.equal(k0, keep[0]) and torch.equal(v0, keep[1])
    assert len(ptrs) <= 3
    # every view handed out still holds what it held
    assert all(torch.equal(a, b) for a, b in seen_k)


def test_an_empty_layer_starts_from_the_first_update():
    layer = GrowingLayer()
    k, v = _kv(1, 4, 0)
    got_k, got_v = layer.update(k, v)
    assert torch.equal(got_k, k) and torch.equal(got_v, v)


def test_a_sliding_window_model_keeps_transformers_cache():
    from transformers import LlamaConfig, MistralConfig

    slide = MistralConfig(num_hidden_layers=2, sliding_window=8, hidden_size=32, num_attention_heads=4)
    assert growing_layers(slide, []) == []
    plain = LlamaConfig(num_hidden_layers=2, hidden_size=32, num_attention_heads=4)
    assert [type(x) for x in growing_layers(plain, [])] == [GrowingLayer, GrowingLayer]


def test_categorical_draws_the_distribution_and_never_a_removed_token():
    torch.manual_seed(0)
    logits = _top_p(torch.tensor([[2.0, 1.0, 0.0, -1.0, 0.5, -3.0]]).repeat(40_000, 1), 0.9)
    tok, logp = _categorical(logits)
    freq = torch.bincount(tok, minlength=6).double() / len(tok)
    want = torch.softmax(logits[0], -1).double()
    assert want[5] == 0 and freq[5] == 0  # removed by top-p: never drawn
    assert torch.allclose(freq, want, atol=0.01)
    # each drawn token's log-probability is log_softmax's
    assert torch.allclose(logp, torch.log_softmax(logits, -1).gather(-1, tok[:, None])[:, 0], atol=1e-6)
    torch.manual_seed(7)
    a, _ = _categorical(logits[:8])
    torch.manual_seed(7)
    assert torch.equal(a, _categorical(logits[:8])[0])


def three_greedy_rows(model) -> list[tuple[list[int], list[float]]]:
    """Tokens and log-probabilities of three greedy rows of 5, 24 and 12 tokens decoded in one batch
    (the short ones leave it early)."""
    prompts = [
        model.sequence([{"role": "user", "content": q}], None, add_generation_prompt=True).ids
        for q in ("Name a fruit.", "Write two sentences about the sea.", "Count to ten.")
    ]
    reqs = [
        _Request(p, SamplingParams(temperature=0, max_new_tokens=n))
        for p, n in zip(prompts, (5, 24, 12), strict=True)
    ]
    return [(c.token_ids, c.logprobs) for c in model._run(reqs)]


@pytest.fixture(scope="module")
def model():
    m = TransformersChatModel.from_pretrained(prepare(log=lambda *a: None), name="kv", prefix_cache_mb=0)
    yield m
    m.close()


@pytest.mark.slow
def test_decoding_with_growing_layers_matches_transformers_cache(model, monkeypatch):
    """Greedy rows of different lengths (the short ones leave the batch early): the same tokens and
    log-probabilities through `GrowingLayer` as through transformers' `DynamicCache`."""
    ours = three_greedy_rows(model)
    monkeypatch.setattr(kv_cache, "growing_layers", lambda config, kv: [])
    theirs = three_greedy_rows(model)
    for (ids_a, lp_a), (ids_b, lp_b) in zip(ours, theirs, strict=True):
        assert ids_a == ids_b
        assert lp_a == pytest.approx(lp_b, abs=1e-4)
