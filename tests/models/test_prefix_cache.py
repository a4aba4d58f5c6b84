"""The prefix store: an episode's next turn prefills only its new tokens, with the same result.

Unit tests of the store use tensors of known size; the real tests play concurrent multi-turn
episodes of the embedded model with the store on and off and compare every sampled token.
"""

from __future__ import annotations

import asyncio

import pytest
import torch

from agentgym.env import EnvConfig, ToolUseEnv
from agentgym.models import SamplingParams
from agentgym.models.embedded import prepare
from agentgym.models.prefix_cache import PrefixStore, weights_version
from agentgym.models.transformers_model import TransformersChatModel
from agentgym.policies import ModelPolicy
from agentgym.runner import run_episodes
from agentgym.suites import load_suite


def _kv(n: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """One layer, one head, n positions, dim 4: 32 n bytes."""
    return [(torch.zeros(1, n, 4), torch.zeros(1, n, 4))]


def test_longest_strict_prefix_wins():
    s = PrefixStore(1 << 20)
    s.put([1, 2], _kv(2))
    s.put([1, 2, 3], _kv(3))
    s.put([9, 9, 9, 9], _kv(4))
    assert s.longest([1, 2, 3, 4]).ids == (1, 2, 3)
    assert s.longest([1, 2, 3]).ids == (1, 2)  # at least one token is left to feed
    assert s.longest([1, 5]) is None
    assert s.longest([2, 1, 3]) is None
    assert (s.hits, s.reused_tokens) == (2, 5)


def test_eviction_is_least_recently_used_within_the_byte_budget():
    s = PrefixStore(32 * 10)  # room for 10 positions
    s.put([1], _kv(4))
    s.put([2], _kv(4))
    assert s.longest([1, 0]) is not None  # [1] is now the most recently used
    s.put([3], _kv(4))  # 12 positions > 10: the least recently used ([2]) goes
    assert s.longest([2, 0]) is None and s.longest([1, 0]) is not None and s.longest([3, 0]) is not None
    assert s.nbytes == 32 * 8 and len(s) == 2
    assert s.put([4], _kv(11)) is None and len(s) == 2  # larger than the whole budget: not stored
    s.discard([1])
    assert len(s) == 1 and s.nbytes == 32 * 4
    with pytest.raises(ValueError, match="budget_bytes"):
        PrefixStore(-1)


def test_a_new_scope_empties_the_store():
    s = PrefixStore(1 << 20)
    s.scope("a")
    s.put([1, 2], _kv(2))
    s.scope("a")
    assert len(s) == 1
    s.scope("b")
    assert len(s) == 0 and s.nbytes == 0


def test_weights_version_moves_with_in_place_writes_only():
    lin = torch.nn.Linear(3, 3)
    v0 = weights_version(lin)
    lin(torch.ones(1, 3)).sum().backward()
    assert weights_version(lin) == v0  # a forward and a backward write no weights
    torch.optim.AdamW(lin.parameters(), lr=0.1, fused=True).step()  # bumps no version counter
    v1 = weights_version(lin)
    assert v1 != v0
    lin.load_state_dict({k: v.clone() for k, v in lin.state_dict().items()})
    assert weights_version(lin) != v1
    v2 = weights_version(lin)
    lin.weight = torch.nn.Parameter(lin.weight.detach().clone())
    assert weights_version(lin) != v2  # a replaced tensor counts too


@pytest.fixture(scope="module")
def pair():
    path = prepare(log=lambda *a: None)
    on = TransformersChatModel.from_pretrained(path, name="on")
    off = TransformersChatModel.from_pretrained(path, name="off", prefix_cache_mb=0)
    yield on, off
    on.close()
    off.close()


def _play(model, tasks, sampling):
    """One episode of each task, in the order of `tasks` (run_episodes returns them as they finish,
    and that order follows the timing: the two models' finish in different orders)."""
    suite = load_suite("agentic-multiturn")
    trajs = asyncio.run(
        run_episodes(
            lambda: ToolUseEnv(suite, task_ids=tasks, config=EnvConfig(max_turns=3)),
            lambda: ModelPolicy(model, sampling),
            [(t, 0) for t in tasks],
            concurrency=len(tasks),
        )
    )
    by_task = {tr.task_id: tr for tr in trajs}
    return [by_task[t] for t in tasks]


def _same_up_to_a_tie(x, y, tol: float = 1e-3) -> bool:
    """True when two greedy turns sampled the same tokens with log-probabilities within `tol`.
    Batch composition follows the event loop's timing, so the two paths sum in different orders
    and a greedy choice between two tokens whose log-probabilities differ by less than that noise
    may fall either way. That is allowed only as a tie: at the first differing token both runs'
    chosen log-probabilities (each the maximum of its run) agree within `tol`. Returns False there,
    since what follows is no longer comparable; raises on any real difference."""
    for i, (s, t) in enumerate(zip(x.token_ids, y.token_ids, strict=False)):
        assert abs(x.logprobs[i] - y.logprobs[i]) < tol, (i, s, t, x.logprobs[i], y.logprobs[i])
        if s != t:
            return False
    assert len(x.token_ids) == len(y.token_ids)
    return True


@pytest.mark.slow
def test_concurrent_multi_turn_episodes_sample_the_same_tokens_with_the_store(pair):
    """Batches mix rows with and without a stored prefix, of different lengths; every token and
    log-probability matches the plain left-padded path."""
    on, off = pair
    tasks = sorted(load_suite("agentic-multiturn").tasks)[:4]
    greedy = SamplingParams(temperature=0, max_new_tokens=24)
    before = on.prefix_store.reused_tokens
    got, want = _play(on, tasks, greedy), _play(off, tasks, greedy)
    turns = 0
    for a, b in zip(got, want, strict=True):
        for x, y in zip(a.turns, b.turns, strict=False):
            turns += 1
            if not _same_up_to_a_tie(x, y):
                break  # a near-tie went the other way: the rest of the episode is another story
        else:
            assert len(a.turns) == len(b.turns)
    assert turns > len(tasks)  # there were later turns to reuse prefixes for
    assert on.prefix_store.reused_tokens > before
    assert off.prefix_store is None


@pytest.mark.slow
def test_changed_weights_never_reuse_old_keys(pair):
    """After an in-place weight update the store is emptied: the next turn equals a model that
    never cached anything."""
    on, off = pair
    sp = SamplingParams(temperature=0, max_new_tokens=8)
    prompt = on.encode("<|im_start|>user\nName a colour.<|im_end|>\n<|im_start|>assistant\n")
    first = asyncio.run(on.generate_ids(prompt, sp))
    assert len(on.prefix_store) > 0
    nxt = [
        *prompt,
        *first.token_ids,
        *on.encode("\n<|im_start|>user\nAnother.<|im_end|>\n<|im_start|>assistant\n"),
    ]
    w_on = on.model.model.layers[0].mlp.down_proj.weight
    w_off = off.model.model.layers[0].mlp.down_proj.weight
    with torch.no_grad():
        w_on.mul_(1.5)
        w_off.mul_(1.5)
    try:
        hits = on.prefix_store.hits
        a = asyncio.run(on.generate_ids(nxt, sp))
        b = asyncio.run(off.generate_ids(nxt, sp))
        assert on.prefix_store.hits == hits  # the old prefix was gone, not reused
        assert a.token_ids == b.token_ids
        assert max(abs(p - q) for p, q in zip(a.logprobs, b.logprobs, strict=True)) < 1e-3
    finally:
        with torch.no_grad():
            w_on.div_(1.5)
            w_off.div_(1.5)


def test_only_a_tie_may_change_a_greedy_token():
    from types import SimpleNamespace as T

    a = T(token_ids=(1, 2, 3), logprobs=(-0.1, -0.7, -0.2))
    assert _same_up_to_a_tie(a, T(token_ids=(1, 2, 3), logprobs=(-0.1, -0.7004, -0.2)))
    assert not _same_up_to_a_tie(a, T(token_ids=(1, 5, 6), logprobs=(-0.1, -0.7002, -3.0)))
    with pytest.raises(AssertionError):  # a different token that was not a tie
        _same_up_to_a_tie(a, T(token_ids=(1, 5, 3), logprobs=(-0.1, -0.3, -0.2)))
    with pytest.raises(AssertionError):  # same tokens, log-probabilities apart
        _same_up_to_a_tie(a, T(token_ids=(1, 2, 3), logprobs=(-0.1, -0.7, -0.25)))
