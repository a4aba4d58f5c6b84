"""Continuous batching: rows leave the batch when done and new requests join it between tokens,
with the embedded model; sampling filters match transformers' own."""

from __future__ import annotations

import asyncio

import pytest
import torch

from agentgym.models import SamplingParams
from agentgym.models.decoding import _top_p
from agentgym.models.embedded import prepare
from agentgym.models.transformers_model import TransformersChatModel


def test_top_p_filters_as_transformers_does():
    from transformers.generation.logits_process import TopPLogitsWarper

    torch.manual_seed(0)
    logits = torch.randn(5, 300) * 3
    for p in (0.1, 0.5, 0.9, 0.999):
        want = TopPLogitsWarper(top_p=p)(None, logits.clone())
        assert torch.equal(_top_p(logits, p), want)


@pytest.fixture(scope="module")
def model():
    m = TransformersChatModel.from_pretrained(prepare(log=lambda *a: None), name="cb")
    yield m
    m.close()


def _prompt(model, text):
    return model.sequence([{"role": "user", "content": text}], None, add_generation_prompt=True).ids


@pytest.mark.slow
def test_a_short_row_returns_before_the_long_one_and_a_late_request_joins(model):
    long = SamplingParams(temperature=1.0, max_new_tokens=40)
    short = SamplingParams(temperature=1.0, max_new_tokens=2)
    before = len(model.batches)

    async def go():
        a = asyncio.ensure_future(model.generate_ids(_prompt(model, "Tell me a long story."), long))
        await asyncio.sleep(1.0)  # the long row is decoding alone by now
        b = asyncio.ensure_future(model.generate_ids(_prompt(model, "Say hi."), short))
        done, _ = await asyncio.wait({a, b}, return_when=asyncio.FIRST_COMPLETED)
        first = next(iter(done))
        return first is b, not a.done(), await a, await b

    short_first, long_running, a, b = asyncio.run(go())
    assert short_first and long_running  # the short row did not wait for the long one
    assert len(b.token_ids) <= 2 and len(a.token_ids) > 2
    assert model.batches[before:][:2] == [1, 2]  # the late request joined the running batch


@pytest.mark.slow
def test_rows_with_different_token_limits_share_a_batch(model):
    """`max_new_tokens` is per row (an episode's remaining budget), so it splits no batch."""
    before = len(model.batches)
    prompts = [_prompt(model, q) for q in ("Name a fruit.", "Name a colour.", "Name a city.")]

    async def go():
        return await asyncio.gather(
            *(
                model.generate_ids(p, SamplingParams(temperature=0, max_new_tokens=n))
                for p, n in zip(prompts, (3, 6, 9), strict=True)
            )
        )

    outs = asyncio.run(go())
    assert max(model.batches[before:]) == 3
    for p, c, n in zip(prompts, outs, (3, 6, 9), strict=True):
        assert len(c.token_ids) <= n
        solo = asyncio.run(model.generate_ids(p, SamplingParams(temperature=0, max_new_tokens=n)))
        assert solo.token_ids == c.token_ids  # greedy: the same tokens alone as in company
