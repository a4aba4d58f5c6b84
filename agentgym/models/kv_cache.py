"""A key/value cache layer that grows in place, for `agentgym.models.decoding.DecodeBatch`.

transformers' `DynamicLayer` appends a decode step's keys and values with `torch.cat`, which copies
the layer's whole cache every token, and a `DynamicCache` rebuilt around existing tensors copies
it once more. At batch 4 that was 15 % of a SmolLM2-135M decode step on two cores.
`GrowingLayer` keeps each layer's keys and values, `(rows, heads, L, dim)`, as views of buffers
with spare columns on the right, so a decode step writes its token in place.

Contract:
- `GrowingLayer(keys, values)` starts from existing tensors, which are never written: the first
  update copies them into a buffer with room (`SPARE` more columns, or half the width if more).
  A full buffer is reallocated the same way.
- `update` writes the new columns past the ones in use and returns views of the used width. A view
  handed out earlier is never written where it holds data, so a caller that keeps one (the prefix
  store) sees it unchanged.
- `growing_layers(config, kv)` gives one layer per model layer, or `[]` when the model has a layer
  kind with its own update rule (a sliding window); the caller then uses `DynamicCache`.
"""

from __future__ import annotations

from typing import Any

import torch
from torch.utils.weak import WeakIdKeyDictionary
from transformers import DynamicCache
from transformers.cache_utils import DynamicLayer

SPARE = 64
"""Columns added beyond the need when a buffer is (re)allocated (at least half its width)."""
_PLAIN: WeakIdKeyDictionary = WeakIdKeyDictionary()
"""Model config -> whether every layer of its `DynamicCache` is a plain `DynamicLayer`."""


class GrowingLayer(DynamicLayer):
    """See module doc."""

    def __init__(self, keys: torch.Tensor | None = None, values: torch.Tensor | None = None) -> None:
        super().__init__()
        if keys is not None and values is not None:
            self._adopt(keys, values)

    def _adopt(self, keys: torch.Tensor, values: torch.Tensor) -> None:
        self.keys, self.values = keys, values
        self._bufs = (keys, values)
        self.device = keys.device
        self.is_initialized = True

    def update(
        self, key_states: torch.Tensor, value_states: torch.Tensor, *args: Any, **kwargs: Any
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if not self.is_initialized:
            self._adopt(key_states[:, :, :0], value_states[:, :, :0])
        n, q = self.keys.shape[-2], key_states.shape[-2]
        kb, vb = self._bufs
        # (a caller that replaced `keys`, as `DynamicLayer.crop` does, gets a fresh buffer)
        if n + q > kb.shape[-2] or kb.data_ptr() != self.keys.data_ptr():
            room = n + q + max(SPARE, n // 2)
            kb, vb = _widened(self.keys, room), _widened(self.values, room)
            self._bufs = (kb, vb)
        kb[:, :, n : n + q].copy_(key_states)
        vb[:, :, n : n + q].copy_(value_states)
        self.keys, self.values = kb[:, :, : n + q], vb[:, :, : n + q]
        return self.keys, self.values


def growing_layers(config: Any, kv: list[list[torch.Tensor]]) -> list[GrowingLayer]:
    """A `GrowingLayer` per layer over `kv` (per layer `[keys, values]`; empty: nothing cached yet),
    or [] when some layer is not a plain `DynamicLayer` (module doc)."""
    plain = _PLAIN.get(config)
    if plain is None:  # asked once per config, not at every join and leave of a batch
        plain = _PLAIN[config] = all(type(x) is DynamicLayer for x in DynamicCache(config=config).layers)
    if not plain:
        return []
    if not kv:
        return [GrowingLayer() for _ in range(config.get_text_config(decoder=True).num_hidden_layers)]
    return [GrowingLayer(k, v) for k, v in kv]


def _widened(t: torch.Tensor, width: int) -> torch.Tensor:
    out = t.new_empty((*t.shape[:2], width, t.shape[-1]))
    out[:, :, : t.shape[-2]].copy_(t)
    return out
