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
per-token index of the turn each masked token belongs to (for per-turn advantages).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
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


def masked_logprobs(
    module: Any, batch: Padded, temperature: float = 1.0, with_entropy: bool = False
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Log-probabilities `[B, T-1]` of each next token at the loss positions (0 elsewhere), and
    optionally their entropies.

    The vocabulary projection runs only where the shifted mask is 1: a 49k-word head over a 4k-token
    conversation is gigabytes of logits, of which the loss needs the model's few hundred tokens.
    """
    base = module.get_base_model() if hasattr(module, "get_base_model") else module
    hidden = base.model(
        input_ids=batch.ids, attention_mask=batch.attention, use_cache=False
    ).last_hidden_state
    where = batch.mask[:, 1:].bool()
    logits = base.lm_head(hidden[:, :-1][where]).float() / temperature
    targets = batch.ids[:, 1:][where]
    picked = logits.gather(-1, targets[:, None]).squeeze(-1) - torch.logsumexp(logits, dim=-1)
    logp = torch.zeros(where.shape, dtype=torch.float32).masked_scatter(where, picked)
    ent = None
    if with_entropy:
        with torch.no_grad():
            p = torch.softmax(logits, -1)
            e = -torch.special.xlogy(p, p).sum(-1)
            ent = torch.zeros(where.shape, dtype=torch.float32).masked_scatter(where, e)
    return logp, ent
