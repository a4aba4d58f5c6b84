"""Token-exact capture: sampled ids spliced verbatim, the loss mask on exactly the model's tokens.

The unit tests use a character-level "tokenizer" so every id is visible; the real tests run
multi-turn episodes with the embedded model and check the sequence against a forward pass.
"""

from __future__ import annotations

import asyncio

import pytest
import torch

from agentgym.env import EnvConfig, ToolUseEnv
from agentgym.models import SamplingParams, load_model
from agentgym.models.tokens import assemble
from agentgym.policies import ModelPolicy
from agentgym.runner import run_episode
from agentgym.suites import load_suite


def _render(msgs, gen):
    text = "".join(f"<{m['role']}>{m['content']}</>" for m in msgs)
    return text + ("<assistant>" if gen else "")


def _encode(text):
    return [ord(c) for c in text]


def _decode(ids):
    return "".join(chr(i) for i in ids)


def test_sampled_ids_are_spliced_verbatim_and_masked():
    turn = {
        "role": "assistant",
        "content": "ok",
        "token_ids": [ord("o"), ord("k"), ord("<"), ord("/"), ord(">")],
    }
    turn["logprobs"] = [-0.1, -0.2, -0.3, -0.4, -0.5]
    msgs = [{"role": "user", "content": "hi"}, turn, {"role": "tool", "content": "R"}]
    seq = assemble(msgs, render=_render, encode=_encode, decode=_decode, add_generation_prompt=True)
    assert seq.exact and seq.spans == [(len("<user>hi</><assistant>"), len("<user>hi</><assistant>ok</>"))]
    assert _decode(seq.ids) == _render(msgs, True)
    a, b = seq.spans[0]
    assert seq.mask == [0] * a + [1] * (b - a) + [0] * (len(seq.ids) - b)
    assert seq.logprobs[a:b] == turn["logprobs"] and set(seq.logprobs[:a] + seq.logprobs[b:]) == {0.0}


def test_spliced_ids_win_over_retokenisation():
    # sampled id 1000 has no character form of its own; it decodes to "ok</>" and must stay 1000
    dec = lambda ids: "".join("ok</>" if i == 1000 else chr(i) for i in ids)  # noqa: E731
    msgs = [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "ok", "token_ids": [1000], "logprobs": [-1.0]},
        {"role": "user", "content": "more"},
    ]
    seq = assemble(msgs, render=_render, encode=_encode, decode=dec, add_generation_prompt=True)
    assert seq.exact and 1000 in seq.ids and seq.mask[seq.ids.index(1000)] == 1 and sum(seq.mask) == 1
    assert dec(seq.ids) == _render(msgs, True)


def test_a_template_that_rewrites_the_turn_restarts_the_sequence():
    def trimming(msgs, gen):  # renders assistant content stripped: cannot continue " ok"
        return _render([{**m, "content": m["content"].strip()} for m in msgs], gen)

    msgs = [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": " ok", "token_ids": _encode(" ok</>"), "logprobs": [-1.0] * 6},
        {"role": "user", "content": "again"},
    ]
    seq = assemble(msgs, render=trimming, encode=_encode, decode=_decode, add_generation_prompt=True)
    assert not seq.exact and seq.restarts == 1 and sum(seq.mask) == 0 and seq.spans == []
    assert _decode(seq.ids) == trimming(msgs, True)  # the model still sees the whole conversation


def test_turns_without_ids_are_plain_context():
    msgs = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "ok"}]
    seq = assemble(msgs, render=_render, encode=_encode, decode=_decode, add_generation_prompt=False)
    assert seq.exact and sum(seq.mask) == 0 and _decode(seq.ids) == _render(msgs, False)


# -- the real model -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def model():
    return load_model("embedded")


@pytest.mark.slow
def test_real_multi_turn_episode_is_token_exact(model):
    """Stored ids decode to the stored text; the mask covers exactly the model's tokens; a forward
    pass over the assembled sequence gives back the logprobs the sampler recorded."""
    suite = load_suite("agentic-multiturn")
    env = ToolUseEnv(suite, config=EnvConfig(max_turns=3))
    policy = ModelPolicy(model, SamplingParams(max_new_tokens=24, temperature=1.0, seed=7))
    multi = None
    for task_id in sorted(suite.tasks)[:6]:
        traj = asyncio.run(run_episode(env, policy, task_id, 0))
        if len(traj.turns) >= 2:
            multi = traj
            break
    assert multi is not None, "no multi-turn episode in the first 6 tasks"
    seq = model.sequence(policy.history, policy.tools)
    assert seq.exact and len(seq.spans) == len(multi.turns)
    assistant = [m for m in policy.history if m["role"] == "assistant"]
    for (a, b), turn, msg in zip(seq.spans, multi.turns, assistant, strict=True):
        assert tuple(seq.ids[a:b]) == turn.token_ids  # the trajectory holds what was sampled
        text = model.tokenizer.decode(seq.ids[a:b], skip_special_tokens=True)
        assert text == msg["content"]  # ... and it decodes to the stored text
    positions = [i for i, m in enumerate(seq.mask) if m]
    assert positions == [i for a, b in seq.spans for i in range(a, b)]
    assert len(positions) == sum(len(t.token_ids) for t in multi.turns)
    # tool results, user turns, system prompt and template tokens are all outside the mask
    tail = model.sequence(policy.history, policy.tools, add_generation_prompt=True)
    assert tail.ids[: len(seq.ids)] == seq.ids  # the next prompt extends the sequence exactly
    with torch.inference_mode():
        logp = torch.log_softmax(model.model(torch.tensor([seq.ids])).logits[0].float(), -1)
    got = torch.tensor([logp[i - 1, seq.ids[i]].item() for i in positions])
    want = torch.tensor([seq.logprobs[i] for i in positions])
    assert torch.allclose(got, want, atol=2e-3), (got - want).abs().max()


@pytest.mark.slow
def test_concurrent_requests_are_batched_with_identical_results(model):
    prompts = [[{"role": "user", "content": q}] for q in ("Name three colours.", "Say hi.", "What is 2+2?")]
    sp = SamplingParams(max_new_tokens=12)
    alone = [model.generate_sync(p, None, sp) for p in prompts]
    before = len(model.batches)

    async def together():
        return await asyncio.gather(*(model.generate(p, None, sp) for p in prompts))

    batched = asyncio.run(together())
    assert max(model.batches[before:]) > 1  # they really ran as one batch
    for a, b in zip(alone, batched, strict=True):
        assert a.token_ids == b.token_ids and a.text == b.text
        assert max(abs(x - y) for x, y in zip(a.logprobs, b.logprobs, strict=True)) < 1e-3
        assert b.prompt_tokens == a.prompt_tokens


@pytest.mark.slow
def test_a_failing_batch_reports_to_every_caller_and_the_worker_survives(model):
    sp = SamplingParams(max_new_tokens=4)
    bad = SamplingParams(max_new_tokens=4, temperature=0.5, top_p=1.0)
    real = model.model.forward
    calls = {"n": 0}

    def flaky(*a, **k):
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("out of memory (simulated)")
        return real(*a, **k)

    model.model.forward = flaky
    try:
        with pytest.raises(RuntimeError, match="simulated"):
            asyncio.run(model.generate([{"role": "user", "content": "x"}], None, bad))
        ok = asyncio.run(model.generate([{"role": "user", "content": "x"}], None, sp))
        assert ok.token_ids
    finally:
        model.model.forward = real


@pytest.mark.slow
def test_the_trainer_rebuilds_the_same_sequence_from_the_stored_trajectory(model):
    """`policy_view` turns a stored trajectory back into the policy's conversation, so the trainer's
    sequence (and loss mask) is the one generation saw, turn for turn."""
    from agentgym.train.sequences import masked_logprobs, pad, policy_view

    suite = load_suite("agentic-multiturn")
    env = ToolUseEnv(suite, config=EnvConfig(max_turns=3))
    policy = ModelPolicy(model, SamplingParams(max_new_tokens=16, temperature=1.0, seed=11))
    traj = asyncio.run(run_episode(env, policy, sorted(suite.tasks)[1], 0))
    live = model.sequence(policy.history, policy.tools)
    view = policy_view(traj, model.decode, model._eos)
    rebuilt = model.sequence(view, list(traj.tools))
    assert rebuilt.ids == live.ids and rebuilt.mask == live.mask and rebuilt.spans == live.spans
    assert sum(rebuilt.mask) == sum(len(t.token_ids) for t in traj.turns) > 0
    batch = pad([rebuilt, live], model._pad)
    assert batch.mask.sum() == 2 * sum(rebuilt.mask) and batch.ids.shape[1] == len(live.ids)
    # the trainer's log-probabilities (vocabulary head at the loss positions only) are the sampler's
    with torch.no_grad():
        logp, ent = masked_logprobs(model.model, batch, 1.0, with_entropy=True)
    where = batch.mask[:, 1:].bool()
    assert torch.allclose(logp[where], batch.sampler_logp[:, 1:][where], atol=2e-3)
    assert (logp[~where] == 0).all() and (ent[where] > 0).all()


def test_few_shot_examples_are_prompt_never_loss(model):
    """An agent's few-shot examples are in every prompt the model reads, outside the loss mask."""
    from agentgym.spec.agent import AgentSpec
    from agentgym.suites.suite import TaskSuite
    from agentgym.train.sequences import policy_view

    base = load_suite("agentic-multiturn")
    task_id = sorted(base.tasks)[1]
    aid = base.tasks[task_id].agent_id
    demo = [{"role": "user", "content": "Example?"}, {"role": "assistant", "content": "DEMO-REPLY-XYZ"}]
    agents = dict(base.agents)
    agents[aid] = AgentSpec.model_validate({**base.agents[aid].model_dump(), "examples": demo})
    suite = TaskSuite(base.name, base.world, agents, base.tasks)
    env = ToolUseEnv(suite, config=EnvConfig(max_turns=2))
    policy = ModelPolicy(model, SamplingParams(max_new_tokens=12, temperature=1.0, seed=3))
    traj = asyncio.run(run_episode(env, policy, task_id, 0))
    assert traj.examples == 2 and policy.history[2]["content"] == "DEMO-REPLY-XYZ"
    seq = model.sequence(policy_view(traj, model.decode, model._eos), list(traj.tools))
    assert seq.ids == model.sequence(policy.history, policy.tools).ids
    assert "DEMO-REPLY-XYZ" in model.decode(seq.ids)
    sampled = [i for i, m in zip(seq.ids, seq.mask, strict=True) if m]
    assert len(sampled) == sum(len(t.token_ids) for t in traj.turns) > 0
    assert "DEMO" not in model.decode(sampled)
