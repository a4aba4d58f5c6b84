"""PrefixStore: the key/value caches of recent sequences, so that a later prompt that extends one
is prefilled from where it stopped instead of from its first token.

A multi-turn episode's next prompt is its previous prompt, the tokens the model sampled, and the
environment's reply (token-exact, `agentgym.models.tokens`). Without a cache, every turn prefills
the whole conversation again: on a CPU that is most of a multi-turn rollout's cost. With it, a turn
prefills only the environment's new tokens.

Contract:
- `longest(ids)` returns the stored entry with the longest token prefix of `ids` (strictly shorter
  than `ids`, so at least one token is left to feed), or None; a hit becomes the most recently used.
- `put(ids, kv)` stores the per-layer `(keys, values)` of exactly `ids` (each `(heads, len, dim)`,
  one row, no padding). Entries are evicted least recently used first to stay within
  `budget_bytes`; an entry larger than the whole budget is not stored. An entry put with
  `once=True` (an episode's finished turn, which only that episode continues) leaves the store on
  its first hit; a prompt entry (a GRPO group's G rows share it) stays. `discard(ids)` drops one.
- `scope(key)`: entries are valid for one set of weights only. The caller passes a key that changes
  whenever the weights do (the adapter in use and `weights_version`: in-place version counters and a
  checksum of sampled elements); a new key empties the store, so a cache never outlives the weights that
  computed it.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import torch

KV = list[tuple[torch.Tensor, torch.Tensor]]


@dataclass(frozen=True, slots=True)
class Prefix:
    ids: tuple[int, ...]
    kv: KV
    nbytes: int
    once: bool = False


class PrefixStore:
    """See module doc."""

    def __init__(self, budget_bytes: int) -> None:
        if budget_bytes < 0:
            raise ValueError(f"budget_bytes must be >= 0, got {budget_bytes}")
        self.budget_bytes = budget_bytes
        self._entries: OrderedDict[tuple[int, ...], Prefix] = OrderedDict()
        self._scope: Hashable = None
        self.nbytes = 0
        self.hits = 0
        """Lookups answered (for benchmarks and tests)."""
        self.reused_tokens = 0
        """Prompt tokens not prefilled again thanks to a hit."""

    def __len__(self) -> int:
        return len(self._entries)

    def scope(self, key: Hashable) -> None:
        if key != self._scope:
            self.clear()
            self._scope = key

    def clear(self) -> None:
        self._entries.clear()
        self.nbytes = 0

    def longest(self, ids: Sequence[int]) -> Prefix | None:
        best: Prefix | None = None
        n = len(ids)
        for e in self._entries.values():
            k = len(e.ids)
            if k < n and (best is None or k > len(best.ids)) and tuple(ids[:k]) == e.ids:
                best = e
        if best is not None:
            if best.once:
                self.discard(best.ids)
            else:
                self._entries.move_to_end(best.ids)
            self.hits += 1
            self.reused_tokens += len(best.ids)
        return best

    def discard(self, ids: Sequence[int]) -> None:
        old = self._entries.pop(tuple(ids), None)
        if old is not None:
            self.nbytes -= old.nbytes

    def put(self, ids: Sequence[int], kv: KV, once: bool = False) -> Prefix | None:
        key = tuple(ids)
        nbytes = sum(k.nbytes + v.nbytes for k, v in kv)
        if not key or nbytes > self.budget_bytes:
            return None
        old = self._entries.pop(key, None)
        if old is not None:
            self.nbytes -= old.nbytes
        while self._entries and self.nbytes + nbytes > self.budget_bytes:
            _, evicted = self._entries.popitem(last=False)
            self.nbytes -= evicted.nbytes
        entry = Prefix(key, kv, nbytes, once)
        self._entries[key] = entry
        self.nbytes += nbytes
        return entry


def weights_version(module: torch.nn.Module, samples: int = 64) -> tuple[int, int, float]:
    """Changes whenever a parameter or buffer of `module` is written or replaced: the sum of the
    tensors' in-place version counters and of their ids, and a checksum of `samples` elements spread
    over each tensor (fused kernels such as torch's fused AdamW update weights without bumping the
    counters). A few thousand elements are read, not the weights."""
    v = i = 0
    picked = []
    for t in (*module.parameters(), *module.buffers()):
        v += t._version
        i += id(t)
        flat = t.detach().reshape(-1)
        if flat.numel() and (flat.is_floating_point() or flat.dtype == torch.int8):
            picked.append(flat[:: max(1, flat.numel() // samples)][:samples].double())
    if not picked:
        return v, i, 0.0
    x = torch.cat(picked)
    return v, i, float((x * torch.arange(1, len(x) + 1, dtype=x.dtype, device=x.device)).sum())
