"""Token-exact conversations: the ids a local model is conditioned on, with its own turns spliced in.

Re-rendering a conversation and tokenising it again can give different ids for the model's earlier
turns than the ones it sampled (BPE merges across boundaries, templates that re-format calls). So
a local model never re-tokenises its own turns: `assemble` walks the messages, and for each
assistant message that carries the `token_ids` it sampled, tokenises only the *environment's* text
since the previous turn (template markup, tool results, user replies) and splices the sampled ids
in verbatim. The prompt of turn k is therefore exactly the sequence of turn k-1 plus the
environment's tokens, and the whole episode is one sequence:

    ids      = env₀ ‖ sampled₀ ‖ env₁ ‖ sampled₁ ‖ … ‖ env_tail
    mask     = 0…0  ‖ 1…1      ‖ 0…0  ‖ 1…1      ‖ … ‖ 0…0      (1 = the model sampled it: carries loss)
    logprobs = the sampler's log-probability at each masked position, 0.0 elsewhere

Splicing needs the rendered text to continue the text already consumed (prompt so far plus the
decoded sampled turn). When a template breaks that (it trims or re-formats the assistant's text),
the sequence restarts from a fresh tokenisation of the whole prompt: earlier turns lose their mask
(they are then context, not targets), `exact` is False and `restarts` counts it. Generation and
training call the same function on the same messages, so both always see the same ids.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

Render = Callable[[list[dict[str, Any]], bool], str]
"""(messages, add_generation_prompt) -> the template's text."""


@dataclass(slots=True)
class TokenSequence:
    """One conversation as token ids with a loss mask; see module doc."""

    ids: list[int] = field(default_factory=list)
    mask: list[int] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)
    spans: list[tuple[int, int]] = field(default_factory=list)
    """[start, end) of each spliced assistant turn, in order."""
    restarts: int = 0
    """Times the template did not continue the consumed text and the sequence was re-tokenised."""

    @property
    def exact(self) -> bool:
        return self.restarts == 0

    def _env(self, ids: Sequence[int]) -> None:
        self.ids.extend(ids)
        self.mask.extend([0] * len(ids))
        self.logprobs.extend([0.0] * len(ids))

    def _model(self, ids: Sequence[int], logprobs: Sequence[float] | None) -> None:
        start = len(self.ids)
        self.ids.extend(ids)
        self.mask.extend([1] * len(ids))
        lp = list(logprobs) if logprobs is not None and len(logprobs) == len(ids) else [0.0] * len(ids)
        self.logprobs.extend(lp)
        self.spans.append((start, len(self.ids)))


def assemble(
    messages: Sequence[dict[str, Any]],
    *,
    render: Render,
    encode: Callable[[str], list[int]],
    decode: Callable[[list[int]], str],
    add_generation_prompt: bool = True,
) -> TokenSequence:
    """The token-exact sequence of `messages` (see module doc)."""
    seq = TokenSequence()
    consumed = ""
    msgs = list(messages)
    for i, m in enumerate(msgs):
        sampled = m.get("token_ids") if m.get("role") == "assistant" else None
        if not sampled:
            continue
        prefix = render(msgs[:i], True)
        consumed = _extend(seq, consumed, prefix, encode)
        seq._model(sampled, m.get("logprobs"))
        consumed = prefix + decode(list(sampled))
    _extend(seq, consumed, render(msgs, add_generation_prompt), encode)
    return seq


def _extend(seq: TokenSequence, consumed: str, text: str, encode: Callable[[str], list[int]]) -> str:
    """Append the environment's tokens that take `consumed` to `text`; restart when it does not continue."""
    if text.startswith(consumed):
        seq._env(encode(text[len(consumed) :]))
    else:
        seq.ids, seq.mask, seq.logprobs, seq.spans = [], [], [], []
        seq.restarts += 1
        seq._env(encode(text))
    return text
