"""Continuous batching for a local causal LM: rows join and leave a running batch between tokens.

`DecodeBatch` is the loop `TransformersChatModel` generates with, in place of `generate`. Rows that
finish (an end token, their `max_new_tokens`, a caller that gave up) leave the batch at once and
their callers get the result; new requests join between two decode steps. A multi-turn episode
whose turn ended is not held until the batch's longest row is done, so its tool result and next turn
overlap the other rows' decoding: a batch costs about as many decode steps as its longest episode,
not the sum over turns of each turn's longest row.

Contract:
- All rows share one sampling setting (temperature, top-p) and one adapter; `max_new_tokens` is per
  row. The caller keeps that invariant (`TransformersChatModel` admits only requests whose key
  matches the running batch's).
- `admit(request)` gives a row its prompt's keys and values: the longest prefix the `PrefixStore`
  holds, the rest prefilled at batch 1 on top of it. A prompt with nothing stored is stored once
  prefilled, so a GRPO group's G identical prompts are prefilled once. The prompt's last token is
  fed by the next decode step, with every other row's.
- `step()` runs one forward over every row's pending token, samples from the distribution
  `generate` samples from (temperature, then top-p with at least one token kept; greedy at
  temperature 0; one uniform draw per row, `_categorical`) and records each token's
  log-probability under that distribution. It returns the rows that finished; their keys and
  values go to the store for the episode's next turn.
- The step's linear layers run on `agentgym.models.few_rows`'s loop on the CPU (one pass over each
  weight matrix for all rows; MKL's sgemm takes up to twice as long at 2-8 rows).
- Keys and values grow in place (`agentgym.models.kv_cache.GrowingLayer`): a decode step writes
  its token into spare columns instead of copying the cache.
- Rows are left-aligned by padding on the left, masked out; positions are each row's own, so a
  row's tokens and log-probabilities do not depend on which rows it shared the batch with (up to
  float rounding). Columns no row needs any more are trimmed when rows leave.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import torch

from agentgym.models.few_rows import few_row_linears
from agentgym.models.prefix_cache import Prefix, PrefixStore


@dataclass(slots=True)
class Row:
    request: Any
    """The caller's request: `.ids`, `.sampling`, `.future`."""
    tokens: list[int] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)
    pending: int = 0
    """The token the next decode step feeds (the prompt's last token, then each sampled token)."""
    length: int = 0
    """Real tokens before `pending` (its position)."""
    started: float = field(default_factory=time.perf_counter)
    stopped: bool = False


class DecodeBatch:
    """See module doc."""

    def __init__(
        self,
        model: Any,
        *,
        eos: set[int] | frozenset[int],
        store: PrefixStore | None,
        temperature: float,
        top_p: float,
        min_prefill: int = 16,
    ) -> None:
        self.model = model
        self.eos = frozenset(eos)
        self.store = store
        self.temperature = temperature
        self.top_p = top_p
        self.min_prefill = min_prefill
        self.rows: list[Row] = []
        self._kv: list[list[torch.Tensor]] = []  # per layer [keys, values], (rows, heads, L, dim)
        self._layers: list[Any] | None = None  # `_GrowingLayer`s over `_kv`; None: to be rebuilt
        self._mask: torch.Tensor | None = None  # (rows, L), 1 on real tokens

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def device(self) -> torch.device:
        return self.model.device

    # -- joining ----------------------------------------------------------------------------------
    def admit(self, request: Any) -> None:
        ids = list(request.ids)
        if not ids:
            raise ValueError("an empty prompt: nothing to continue")
        kv = self._prompt_kv(ids[:-1])
        self._join(kv, len(ids) - 1)
        self.rows.append(Row(request, pending=ids[-1], length=len(ids) - 1))

    def _prompt_kv(self, ids: list[int]) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Keys and values of `ids`, each `(heads, len(ids), dim)`."""
        hit: Prefix | None = None
        if self.store is not None and ids:
            hit = self.store.longest([*ids, -1])  # `ids` itself may be stored
        done = len(hit.ids) if hit is not None else 0
        if hit is not None and done == len(ids):
            return hit.kv
        if not ids:
            return self._empty_kv()
        from transformers import DynamicCache

        cache = DynamicCache(config=self.model.config)
        if hit is not None:
            for layer, (k, v) in enumerate(hit.kv):
                cache.update(k[None], v[None], layer)
        x = torch.tensor([ids[done:]], dtype=torch.long, device=self.device)
        pos = torch.arange(done, len(ids), device=self.device)[None]
        self.model(input_ids=x, position_ids=pos, cache=cache, use_cache=True, logits_to_keep=1)
        kv = [(layer.keys[0], layer.values[0]) for layer in cache.layers]
        # a fresh prompt is kept (a GRPO group's G rows share it); a continuation is one episode's
        if self.store is not None and hit is None and len(ids) >= self.min_prefill:
            self.store.put(ids, kv)
        return kv

    def _empty_kv(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        cfg = self.model.config
        heads = getattr(cfg, "num_key_value_heads", None) or cfg.num_attention_heads
        dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
        dtype = next(self.model.parameters()).dtype
        z = torch.zeros((heads, 0, dim), dtype=dtype, device=self.device)
        return [(z, z)] * cfg.num_hidden_layers

    def _join(self, kv: list[tuple[torch.Tensor, torch.Tensor]], n: int) -> None:
        """Append one row with `n` cached positions, padding it or the batch on the left."""
        if not self.rows:
            self._kv = [[k[None], v[None]] for k, v in kv]
            self._layers = None
            self._mask = torch.ones((1, n), dtype=torch.long, device=self.device)
            return
        width = self._mask.shape[1]
        if n > width:  # the newcomer is longer: widen every row on the left
            self._kv = [[_pad_left(t, n - width) for t in pair] for pair in self._kv]
            self._mask = _pad_left(self._mask, n - width)
            width = n
        row_mask = torch.zeros((1, width), dtype=torch.long, device=self.device)
        row_mask[0, width - n :] = 1
        self._kv = [
            [torch.cat([big, _pad_left(t[None], width - n)]) for big, t in zip(pair, new, strict=True)]
            for pair, new in zip(self._kv, kv, strict=True)
        ]
        self._layers = None
        self._mask = torch.cat([self._mask, row_mask])

    # -- decoding ---------------------------------------------------------------------------------
    def step(self) -> list[Row]:
        """One token for every row; returns the rows that finished (removed from the batch)."""
        from transformers import DynamicCache
        from transformers.cache_utils import Cache

        from agentgym.models.kv_cache import growing_layers

        rows = self.rows
        x = torch.tensor([[r.pending] for r in rows], dtype=torch.long, device=self.device)
        pos = torch.tensor([[r.length] for r in rows], dtype=torch.long, device=self.device)
        ones = torch.ones((len(rows), 1), dtype=torch.long, device=self.device)
        mask = torch.cat([self._mask, ones], dim=1)
        if self._layers is None:
            self._layers = growing_layers(self.model.config, self._kv)
        if self._layers:
            cache = Cache(layers=self._layers)
        else:  # a layer kind with its own update rule (sliding windows): rebuilt every token
            cache = DynamicCache(config=self.model.config)
            if self._mask.shape[1]:
                cache = DynamicCache(ddp_cache_data=[tuple(p) for p in self._kv], config=self.model.config)
        with few_row_linears(self.model):
            out = self.model(input_ids=x, attention_mask=mask, position_ids=pos, cache=cache, use_cache=True)
        logits = out.logits[:, -1].float()
        self._kv = [[layer.keys, layer.values] for layer in cache.layers]
        self._mask = mask
        tokens, logps = self._sample(logits)
        finished = []
        for r, t, lp in zip(rows, tokens.tolist(), logps.tolist(), strict=True):
            r.tokens.append(t)
            r.logprobs.append(lp)
            r.length += 1
            r.pending = t
            r.stopped = t in self.eos
            if r.stopped or len(r.tokens) >= r.request.sampling.max_new_tokens:
                finished.append(r)
        if finished:
            self._remember(finished)
            self.drop(finished)
        return finished

    def _sample(self, logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.temperature == 0:
            logp = torch.log_softmax(logits, -1)
            tok = logits.argmax(-1)
            return tok, logp.gather(-1, tok[:, None])[:, 0]
        if self.temperature != 1.0:
            logits = logits / self.temperature
        if self.top_p < 1.0:
            logits = _top_p(logits, self.top_p)
        return _categorical(logits)

    # -- leaving ----------------------------------------------------------------------------------
    def drop(self, rows: list[Row]) -> None:
        """Remove `rows` from the batch and trim the columns nobody needs."""
        gone = {id(r) for r in rows}
        keep = [i for i, r in enumerate(self.rows) if id(r) not in gone]
        self.rows = [self.rows[i] for i in keep]
        self._layers = None
        if not self.rows:
            self._kv, self._mask = [], None
            return
        idx = torch.tensor(keep, dtype=torch.long, device=self.device)
        mask = self._mask.index_select(0, idx)
        used = mask.any(0).nonzero()
        start = int(used[0]) if len(used) else mask.shape[1]
        self._mask = mask[:, start:]
        self._kv = [[t.index_select(0, idx)[:, :, start:] for t in pair] for pair in self._kv]

    def _remember(self, rows: list[Row]) -> None:
        """Store each finished row's prompt and sampled tokens but the last (whose keys and values
        were never computed), for the episode's next turn."""
        if self.store is None:
            return
        for r in rows:
            i = self.rows.index(r)
            where = self._mask[i].nonzero().flatten()
            kv = [(k[i].index_select(1, where), v[i].index_select(1, where)) for k, v in self._kv]
            self.store.put([*r.request.ids, *r.tokens[:-1]], kv, once=True)


def _categorical(logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """One token per row drawn from `softmax(logits)`, and its log-probability.

    The token comes from inverting the cumulative sum of `exp(logits - max)` at one uniform draw per
    row: `torch.multinomial` draws an exponential variate per vocabulary entry (4 ms a decode step
    for 4 rows of SmolLM2's 49,152 entries on two cores), and normalising first (`log_softmax`, then
    `exp`) is two more passes over the vocabulary (1.4 -> 0.24 ms for 4 rows). The sum runs in
    float64, and the first index whose cumulative mass exceeds the draw always has positive mass,
    so a token that top-p removed (-inf) is never drawn. The log-probability is
    `logits[token] - max - log(sum)`, the `log_softmax` formula."""
    shift = logits.amax(-1, keepdim=True)
    cdf = (logits - shift).exp_().double().cumsum_(-1)
    total = cdf[:, -1:]
    u = torch.rand((logits.shape[0], 1), dtype=torch.float64, device=logits.device) * total
    tok = torch.searchsorted(cdf, u, right=True)[:, 0].clamp_(max=logits.shape[-1] - 1)
    logp = logits.gather(-1, tok[:, None])[:, 0] - shift[:, 0] - total[:, 0].log().float()
    return tok, logp


def _top_p(logits: torch.Tensor, top_p: float) -> torch.Tensor:
    """Nucleus filtering as transformers' `TopPLogitsWarper` (at least one token kept)."""
    sorted_logits, order = torch.sort(logits, descending=False)
    cum = sorted_logits.softmax(-1).cumsum(-1)
    remove = cum <= (1 - top_p)
    remove[..., -1] = False
    return logits.masked_fill(remove.scatter(-1, order, remove), float("-inf"))


def _pad_left(t: torch.Tensor, n: int) -> torch.Tensor:
    """Zeros prepended along the sequence dimension (the last for masks, -2 for keys/values)."""
    if n == 0:
        return t
    dim = -1 if t.dim() == 2 else -2
    shape = list(t.shape)
    shape[dim] = n
    return torch.cat([t.new_zeros(shape), t], dim=dim)
