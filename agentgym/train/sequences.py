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
