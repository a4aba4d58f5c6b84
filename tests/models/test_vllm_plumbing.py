"""VLLMChatModel's plumbing, with a stand-in for `vllm` (no GPU here): token-exact prompts go in
as `TokensPrompt`s, the sampled ids and logprobs come back from vLLM-shaped outputs.

This checks our side of the contract only; the real engine is exercised on a GPU machine.
"""

from __future__ import annotations

import asyncio
import sys
import types
from dataclasses import dataclass

import pytest
from transformers import AutoTokenizer

from agentgym.models import SamplingParams, embedded
from agentgym.models.vllm_engine import VLLMChatModel, VLLMUnavailable


@dataclass
class _Lp:
    logprob: float


class _FakeLLM:
    """Answers every prompt with the ids of a fixed reply plus the end token."""

    def __init__(self, tok):
        self.tok = tok
        self.seen = []

    def generate(self, prompts, params, use_tqdm=False):
        self.seen.append((prompts, params))
        outs = []
        for p in prompts:
            ids = self.tok("Hello there", add_special_tokens=False)["input_ids"] + [self.tok.eos_token_id]
            o = types.SimpleNamespace(
                token_ids=ids, logprobs=[{t: _Lp(-0.5)} for t in ids], finish_reason="stop"
            )
            outs.append(types.SimpleNamespace(outputs=[o], metrics=None, prompt=p))
        return outs


@pytest.fixture
def fake_vllm(monkeypatch):
    mod = types.ModuleType("vllm")
    mod.SamplingParams = lambda **kw: kw
    inputs = types.ModuleType("vllm.inputs")
    inputs.TokensPrompt = lambda prompt_token_ids: {"prompt_token_ids": prompt_token_ids}
    monkeypatch.setitem(sys.modules, "vllm", mod)
    monkeypatch.setitem(sys.modules, "vllm.inputs", inputs)


def test_prompts_are_token_exact_and_samples_come_back(fake_vllm):
    tok = AutoTokenizer.from_pretrained(embedded.prepare(log=lambda *_: None))
    llm = _FakeLLM(tok)
    m = VLLMChatModel(llm, tok, name="fake-vllm")
    first = [{"role": "user", "content": "hi"}]
    a = asyncio.run(m.generate(first, None, SamplingParams(max_new_tokens=8, temperature=0.7)))
    assert a.text == "Hello there" and a.finish_reason == "stop" and a.logprobs == [-0.5] * len(a.token_ids)
    convo = [
        *first,
        {"role": "assistant", "content": a.text, "token_ids": a.token_ids},
        {"role": "user", "content": "again"},
    ]
    asyncio.run(m.generate(convo, None, SamplingParams(max_new_tokens=8)))
    prompt_ids = llm.seen[-1][0][0]["prompt_token_ids"]
    assert prompt_ids == m.sequence(convo, None, add_generation_prompt=True).ids
    start = len(m.sequence(first, None, add_generation_prompt=True).ids)
    assert prompt_ids[start : start + len(a.token_ids)] == a.token_ids  # spliced, not re-tokenised
    params = llm.seen[-1][1][0]
    assert params["logprobs"] == 0 and params["max_tokens"] == 8 and params["temperature"] == 0


def test_missing_vllm_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "vllm", None)
    with pytest.raises(VLLMUnavailable, match="agentgym\\[vllm\\]"):
        VLLMChatModel.from_pretrained(tmp_path)
