"""Replay cache: results of deterministic reads, keyed by canonical JSON of (state lineage, tool, arguments).

The lineage (`WorldState.lineage`) identifies the exact state a call saw, so a hit is always the
result the engine would compute; bounded LRU; hit and miss counts are kept for reports. Only
results without side effects are stored.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from agentgym.jsonutil import dumps


class ReplayCache:
    """A bounded LRU map from call keys to results."""

    def __init__(self, max_entries: int = 50_000) -> None:
        self.max_entries = max_entries
        self._data: OrderedDict[bytes, Any] = OrderedDict()
        self.hits = 0
        self.misses = 0

    @staticmethod
    def key(lineage: str, tool: str, args: Any) -> bytes:
        return dumps([lineage, tool, args], sort_keys=True)

    def get(self, key: bytes) -> Any | None:
        v = self._data.get(key)
        if v is None:
            self.misses += 1
            return None
        self._data.move_to_end(key)
        self.hits += 1
        return v

    def put(self, key: bytes, value: Any) -> None:
        self._data[key] = value
        self._data.move_to_end(key)
        while len(self._data) > self.max_entries:
            self._data.popitem(last=False)

    def __len__(self) -> int:
        return len(self._data)
