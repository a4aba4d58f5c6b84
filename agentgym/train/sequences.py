"""Training sequences from trajectories: token-exact ids, the loss mask, and padded batches.

`policy_view(trajectory, decode)` rebuilds the conversation exactly as the policy saw it: the
trajectory's messages, except that each assistant message is the raw text the model sampled
(decoded from its `TurnRecord.token_ids`, tool-call markup included) carrying those ids. Passing
that to `TransformersChatModel.sequence` gives the same ids the model was conditioned on during
the episode (`agentgym.models.tokens`), with mask 1 on exactly the sampled tokens.

`sft_sequence(model, messages, tools)` is the supervised counterpart for trajectories that carry
no sampled ids (oracle or exported ones): the loss covers each assistant turn's rendered text,
template end token included, and nothing else.

`pad(seqs)` right-pads a list of sequences into tensors: ids, mask, sampler logprobs, and the
per-token index of the turn each masked token belongs to (for per-turn advantages); `Padded.to`
moves a batch to a device, and `masked_logprobs` moves it to the module's device itself.

**Shared prefixes.** The G episodes of a GRPO group start with the same prompt (system prompt,
tool schemas, instruction), and SFT conversations of one agent share at least the system prompt
and tools — usually most of a short sequence. `masked_logprobs` runs the tokens that every row of
the batch has in common once (batch 1), then runs only the rows' own suffixes on top of that
prefix's keys and values, broadcast across the batch. Every suffix token attends to the same keys
and values as in the full forward, and the prefix's gradient is the sum over the rows, so logprobs
and gradients are those of the plain forward up to float rounding (tested); the work is
P + B·(T−P) tokens instead of B·T. The two passes talk through caches that never change under a
replay (`Record` only keeps the prefix's last keys and values, `Frozen` returns the prefix's
concatenated with the suffix's and stores nothing), so activation checkpointing stays on for both:
a recomputed layer reads and writes exactly what it did the first time.

The backward runs the suffix pass to the end before the prefix pass starts. The suffix is built on
detached stand-ins for the prefix's outputs (its last hidden states and every layer's keys and
values); once backward has their gradients, `_Junction` carries them on through the prefix pass (a
nested backward). In one graph, every parameter's gradient node would wait for its prefix-pass
share, which autograd computes last, so every parameter's fp32 gradient from the suffix would sit in
autograd's buffers at once (a second copy of the weights in memory, whatever the optimizer does with
gradients). Split, each parameter's gradient is accumulated the moment the suffix pass has it.
Gradients reach the parameters through `.backward()` (the trainers' way); `torch.autograd.grad`
over the shared path would miss the prefix's share.

**The head.** Where `adamw_bf16` takes the output head's gradient (`optim.takes_rows`), the head
runs over blocks of the vocabulary (`_ChunkedHead`). No `[tokens, vocab]` logits are kept, and the
weight's gradient goes into the optimizer's bf16 buffer one block at a time (`optim.row_sink`), not
as a vocabulary-sized fp32 `.grad` (113 MB for SmolLM2's tied head). The values are the plain
head's and so are the gradients (tests). With other optimizers the head is one matrix product, as
before.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from typing import Any

import torch

from agentgym.models.tokens import TokenSequence
from agentgym.spec.trajectory import Trajectory


def policy_view(
    trajectory: Trajectory, decode: Callable[[list[int]], str], eos: set[int]
) -> list[dict[str, Any]]:
    """The conversation as the policy saw it (see module doc)."""
    by_index = {t.message_index: t for t in trajectory.turns}
    out: list[dict[str, Any]] = []
    for i, m in enumerate(trajectory.messages):
        turn = by_index.get(i)
        if m.role == "assistant" and turn is not None and turn.token_ids:
            ids = list(turn.token_ids)
            text = decode(ids[:-1] if ids[-1] in eos else ids)
            out.append(
                {
                    "role": "assistant",
                    "content": text,
                    "token_ids": ids,
                    "logprobs": list(turn.logprobs) if turn.logprobs else None,
                }
            )
        else:
            out.append(m.openai())
    return out


def sft_sequence(
    model: Any, messages: Sequence[dict[str, Any]], tools: list[dict[str, Any]] | None
) -> TokenSequence:
    """Ids of a whole conversation with mask 1 on the assistant turns' rendered text (see module doc)."""
    seq = TokenSequence()
    msgs = list(messages)
    done = ""
    for i, m in enumerate(msgs):
        if m.get("role") != "assistant":
            continue
        prefix = model.render(msgs[:i], tools, True)
        upto = model.render(msgs[: i + 1], tools, False)
        if not (prefix.startswith(done) and upto.startswith(prefix)):
            raise ValueError("the chat template does not render this conversation incrementally")
        seq._env(model.encode(prefix[len(done) :]))
        seq._model(model.encode(upto[len(prefix) :]), None)
        done = upto
    full = model.render(msgs, tools, False)
    seq._env(model.encode(full[len(done) :]) if full.startswith(done) else [])
    return seq


@dataclass(slots=True)
class Padded:
    ids: torch.Tensor
    """[B, T] token ids (right-padded with `pad_id`)."""
    mask: torch.Tensor
    """[B, T] 1.0 where the token carries loss."""
    sampler_logp: torch.Tensor
    """[B, T] the sampler's log-probability at masked positions (0 elsewhere)."""
    attention: torch.Tensor
    """[B, T] 1 on real tokens."""
    lengths: list[int]

    def to(self, device: torch.device | str) -> Padded:
        """The same batch on `device` (the trained module's)."""
        return Padded(
            self.ids.to(device),
            self.mask.to(device),
            self.sampler_logp.to(device),
            self.attention.to(device),
            self.lengths,
        )


def pad(seqs: Sequence[TokenSequence], pad_id: int) -> Padded:
    width = max(len(s.ids) for s in seqs)
    b = len(seqs)
    ids = torch.full((b, width), pad_id, dtype=torch.long)
    mask = torch.zeros((b, width))
    lp = torch.zeros((b, width))
    att = torch.zeros((b, width), dtype=torch.long)
    for r, s in enumerate(seqs):
        n = len(s.ids)
        ids[r, :n] = torch.tensor(s.ids, dtype=torch.long)
        mask[r, :n] = torch.tensor(s.mask, dtype=torch.float32)
        lp[r, :n] = torch.tensor(s.logprobs, dtype=torch.float32)
        att[r, :n] = 1
    return Padded(ids, mask, lp, att, [len(s.ids) for s in seqs])


MIN_SHARED_PREFIX = 16
"""Shorter common prefixes are not worth a second forward call."""


def shared_prefix(batch: Padded) -> int:
    """Length of the longest run of leading tokens that every row has, identically (at most T−1)."""
    if batch.ids.shape[0] < 2:
        return 0
    same = (batch.ids == batch.ids[:1]).all(0) & (batch.attention == 1).all(0)
    differs = (~same).nonzero()
    p = int(differs[0]) if len(differs) else batch.ids.shape[1]
    return min(p, batch.ids.shape[1] - 1)


@cache
def _layer_types() -> tuple[type, type]:
    """The two replay-safe cache layers (built on first use: transformers is imported lazily)."""
    from transformers.cache_utils import DynamicLayer

    class Record(DynamicLayer):
        """The prefix pass's cache layer: keeps the keys and values it is given (a replay under
        checkpointing overwrites them with equal ones) and returns them unchanged."""

        def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *a: Any, **kw: Any) -> Any:
            if not self.is_initialized:
                self.lazy_initialization(key_states, value_states)
            self.keys, self.values = key_states, value_states
            return key_states, value_states

    class Frozen(DynamicLayer):
        """The suffix pass's cache layer: the prefix's keys and values (batch 1) before each row's
        own; stores nothing, so a replayed layer sees the same prefix."""

        def __init__(self, keys: torch.Tensor, values: torch.Tensor) -> None:
            super().__init__()
            self.lazy_initialization(keys, values)
            self.keys, self.values = keys, values

        def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *a: Any, **kw: Any) -> Any:
            b = key_states.shape[0]
            keys = torch.cat([self.keys.expand(b, -1, -1, -1), key_states], dim=-2)
            values = torch.cat([self.values.expand(b, -1, -1, -1), value_states], dim=-2)
            return keys, values

    return Record, Frozen


def _cache(config: Any, layers: list[Any]) -> Any:
    from transformers import DynamicCache

    out = DynamicCache(config=config)
    out.layers = layers
    return out


@contextmanager
def _cache_kept_under_checkpointing(layers: Sequence[Any]) -> Iterator[bool]:
    """Lets HF's checkpointed decoder layers keep the cache (they drop it unless told it is
    replay-safe, which `Record` and `Frozen` are). Yields False where this transformers has no
    such switch and checkpointing is on: then the shared path would lose the prefix."""
    known = all(hasattr(type(m), "_can_checkpoint_with_cache") for m in layers)
    checkpointed = any(getattr(m, "gradient_checkpointing", False) is True for m in layers)
    if not known:
        yield not checkpointed
        return
    for m in layers:
        m._can_checkpoint_with_cache = True
    try:
        yield True
    finally:
        for m in layers:
            del m._can_checkpoint_with_cache


def _hidden(base: Any, batch: Padded, share_prefix: bool) -> torch.Tensor:
    """Last hidden states [B, T, H]: one forward, or the shared prefix once plus the suffixes."""
    p = shared_prefix(batch) if share_prefix else 0
    b, t = batch.ids.shape
    layers = list(base.model.layers)
    with _cache_kept_under_checkpointing(layers) as kept:
        if p < MIN_SHARED_PREFIX or not kept:
            return base.model(
                input_ids=batch.ids, attention_mask=batch.attention, use_cache=False
            ).last_hidden_state
        record_layer, frozen_layer = _layer_types()
        record = _cache(base.config, [record_layer() for _ in layers])
        head = base.model(input_ids=batch.ids[:1, :p], cache=record, use_cache=False)
        top, *kv = _cut([head.last_hidden_state] + [t for m in record.layers for t in (m.keys, m.values)])
        frozen = _cache(base.config, [frozen_layer(k, v) for k, v in zip(kv[::2], kv[1::2], strict=True)])
        positions = torch.arange(p, t, device=batch.ids.device)
        tail = base.model(
            input_ids=batch.ids[:, p:],
            attention_mask=batch.attention,
            cache=frozen,
            position_ids=positions.expand(b, -1),
            cache_position=positions,
            use_cache=False,
        )
    return torch.cat([top.expand(b, -1, -1), tail.last_hidden_state], dim=1)


def _cut(tensors: list[torch.Tensor]) -> list[torch.Tensor]:
    """Stand-ins for `tensors` that the suffix pass is built on: once backward has computed all
    their gradients (those the loss reaches), it goes on from `tensors` with them, through the
    prefix pass, in a nested backward (module doc)."""
    if not torch.is_grad_enabled() or not any(t.requires_grad for t in tensors):
        return tensors
    return list(_Junction.apply(tensors, *(t.detach().requires_grad_(t.requires_grad) for t in tensors)))


class _Junction(torch.autograd.Function):
    """Identity on detached copies of the prefix pass's outputs. Autograd calls its backward once,
    with every output's gradient, after the suffix pass's nodes (they run first, being newer);
    it backpropagates those gradients through the prefix pass from the original outputs.

    Not `register_multi_grad_hook` on the copies: its hooks hold the copies' gradient accumulators,
    which hold the copies, a cycle through C++ that Python's collector cannot break, so every
    step's prefix graph would leak."""

    @staticmethod
    def forward(ctx: Any, sources: list[torch.Tensor], *copies: torch.Tensor) -> tuple[torch.Tensor, ...]:
        ctx.sources = sources
        ctx.set_materialize_grads(False)
        return tuple(c.view_as(c) for c in copies)

    @staticmethod
    def backward(ctx: Any, *grads: torch.Tensor | None) -> tuple[None, ...]:
        pairs = [(t, g) for t, g in zip(ctx.sources, grads, strict=True) if g is not None and t.requires_grad]
        ctx.sources = None
        if pairs:
            torch.autograd.backward([t for t, _ in pairs], [g for _, g in pairs])
        return (None,) * (len(grads) + 1)


@contextmanager
def _sparse_tied_embedding(base: Any) -> Iterator[None]:
    """While the forward runs, the input embedding of a tied head gives a sparse gradient.

    The tied weight's dense gradient comes from the head; a dense embedding gradient would be a
    second vocabulary-sized tensor (113 MB for SmolLM2) at the end of the backward, when every other
    gradient is alive, only to be added into the first. The sparse one holds the batch's rows and is
    added in place. Untied or frozen embeddings are left alone (a sparse-only gradient would reach the
    optimizer)."""
    embed, head = base.get_input_embeddings(), base.get_output_embeddings()
    tied = (
        isinstance(embed, torch.nn.Embedding)
        and head is not None
        and embed.weight is head.weight
        and embed.weight.requires_grad
        and torch.is_grad_enabled()
    )
    if not tied or embed.sparse:
        yield
        return
    embed.sparse = True
    try:
        yield
    finally:
        embed.sparse = False


def masked_logprobs(
    module: Any,
    batch: Padded,
    temperature: float = 1.0,
    with_entropy: bool = False,
    share_prefix: bool = True,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Log-probabilities `[B, T-1]` of each next token at the loss positions (0 elsewhere), and
    optionally their entropies.

    The vocabulary projection runs only where the shifted mask is 1: a 49k-word head over a 4k-token
    conversation is gigabytes of logits, of which the loss needs the model's few hundred tokens.
    Where `adamw_bf16` takes the head's gradient, the head runs over blocks of the vocabulary and
    hands the weight's gradient to the optimizer block by block (`_ChunkedHead`).
    The rows' common prefix runs once (module doc) unless `share_prefix` is False.
    """
    base = module.get_base_model() if hasattr(module, "get_base_model") else module
    batch = batch.to(base.lm_head.weight.device)  # a no-op when it is there already
    with _sparse_tied_embedding(base):
        hidden = _hidden(base, batch, share_prefix)
    where = batch.mask[:, 1:].bool()
    targets = batch.ids[:, 1:][where]
    h = hidden[:, :-1][where]
    head = base.lm_head
    if _chunked_head_applies(head, h):
        picked, e = _ChunkedHead.apply(h, head.weight, targets, temperature)
    else:
        logits = head(h).float() / temperature
        picked = logits.gather(-1, targets[:, None]).squeeze(-1) - torch.logsumexp(logits, dim=-1)
        e = None
        if with_entropy:
            with torch.no_grad():
                p = torch.softmax(logits, -1)
                e = -torch.special.xlogy(p, p).sum(-1)
    logp = torch.zeros(where.shape, dtype=torch.float32, device=picked.device).masked_scatter(where, picked)
    ent = None
    if with_entropy:
        ent = torch.zeros(where.shape, dtype=torch.float32, device=e.device).masked_scatter(where, e.detach())
    return logp, ent


HEAD_BLOCK = 1 << 21
"""Logits per block of the chunked head (8 MB in fp32): the vocabulary is cut to fit the tokens."""


def _chunked_head_applies(head: Any, h: torch.Tensor) -> bool:
    """A plain fp32 linear head without bias, gradients on, no autocast, and an `adamw_bf16` that
    takes the weight's gradient (`optim.takes_rows`)."""
    from agentgym.train.optim import takes_rows

    w = getattr(head, "weight", None)
    if (
        type(head) is not torch.nn.Linear
        or head.bias is not None
        or not torch.is_grad_enabled()
        or w is None
        or not w.requires_grad
        or w.dtype != torch.float32
        or h.dtype != torch.float32
        or torch.is_autocast_enabled(h.device.type)
    ):
        return False
    return takes_rows(w)


class _ChunkedHead(torch.autograd.Function):
    """Per-token log-probability of `targets` and entropy under `softmax(h Wᵀ / temperature)`, over
    blocks of the vocabulary, never the whole `[tokens, vocab]` logits (module doc).

    Forward keeps a running max, the sum of `exp(z − max)` and of `exp(z − max)·z` per token, and
    saves `h` and the log-normaliser. Backward recomputes each block's logits, and adds that
    block's weight gradient to the optimizer's buffer (`optim.row_sink`). It returns none for the
    weight itself, so no vocabulary-sized fp32 gradient is ever allocated. Should the optimizer be
    gone by then, the weight's gradient is returned whole instead. The entropy carries no
    gradient."""

    @staticmethod
    def forward(ctx: Any, h: torch.Tensor, w: torch.Tensor, targets: torch.Tensor, temperature: float) -> Any:
        t, vocab = h.shape[0], w.shape[0]
        step = max(256, min(vocab, HEAD_BLOCK // max(t, 1)))
        top = torch.full((t,), -torch.inf, dtype=torch.float32, device=h.device)
        total = torch.zeros(t, dtype=torch.float32, device=h.device)
        moment = torch.zeros(t, dtype=torch.float32, device=h.device)
        picked = torch.zeros(t, dtype=torch.float32, device=h.device)
        rows = torch.arange(t, device=h.device)
        for a in range(0, vocab, step):
            z = (h @ w[a : a + step].t()).div_(temperature)
            new = torch.maximum(top, z.max(1).values)
            scale = torch.exp(top - new)
            e = torch.exp(z - new[:, None])
            total.mul_(scale).add_(e.sum(1))
            moment.mul_(scale).add_((e * z).sum(1))
            top = new
            inside = (targets >= a) & (targets < a + z.shape[1])
            picked[inside] = z[rows[inside], targets[inside] - a]
        lse = top + torch.log(total)
        ctx.save_for_backward(h, w, targets, lse)
        ctx.temperature, ctx.step = temperature, step
        entropy = lse - moment / total
        ctx.mark_non_differentiable(entropy)
        return picked - lse, entropy

    @staticmethod
    def backward(ctx: Any, g: torch.Tensor, _entropy: Any) -> Any:
        from agentgym.train.optim import row_sink

        h, w, targets, lse = ctx.saved_tensors
        step, temperature = ctx.step, ctx.temperature
        gh = torch.zeros_like(h) if ctx.needs_input_grad[0] else None
        gw = None
        sink = row_sink(w) if ctx.needs_input_grad[1] else None
        if ctx.needs_input_grad[1] and sink is None:
            gw = torch.zeros_like(w)

            def sink(a: int, rows: torch.Tensor) -> None:
                gw[a : a + rows.shape[0]] = rows

        rows = torch.arange(h.shape[0], device=h.device)
        g = g.to(torch.float32)
        for a in range(0, w.shape[0], step):
            wb = w[a : a + step]
            z = (h @ wb.t()).div_(temperature)
            dz = torch.exp(z.sub_(lse[:, None])).mul_(-g[:, None])
            inside = (targets >= a) & (targets < a + wb.shape[0])
            dz[rows[inside], targets[inside] - a] += g[inside]
            dz.div_(temperature)
            if gh is not None:
                gh.addmm_(dz, wb)
            if sink is not None:
                sink(a, dz.t() @ h)
        return gh, gw, None, None
