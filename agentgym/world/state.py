"""WorldState: the live, per-episode world — typed collections of JSON records.

Records are replaced on write, never mutated in place, so `snapshot()` is a cheap shallow copy and
every change is logged as (collection, id, before, after). `lineage` is a hash chain over the
initial state and every write: two states with the same lineage are the same state, which is what
the replay cache keys on. `diff` and `same_state` compare normalised records with trace fields
dropped (a read that stamps `last_opened_at` changes nothing that matters), never a raw hash.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator, Mapping
from typing import Any

import orjson

from agentgym.jsonutil import dumps
from agentgym.spec.trajectory import Change
from agentgym.spec.world import WorldSnapshot
from agentgym.world.normalize import canonical, same

Records = dict[str, dict[str, Any]]
_SUFFIX = re.compile(r"_(\d+)$")


class WorldState:
    """Mutable world state for one episode (see module doc)."""

    __slots__ = ("_counters", "_owned", "collections", "lineage", "log", "memo", "now", "version")

    def __init__(self, now: str, collections: dict[str, Records], lineage: str = "") -> None:
        self.now = now
        self.collections = collections
        self.version = 0
        self.lineage = lineage
        self.log: list[tuple[str, str, dict[str, Any] | None, dict[str, Any] | None]] = []
        self._counters: dict[str, int] = {}
        self._owned: set[str] = set(collections)
        """Collections whose table this state may write in place (the others are shared with a fork)."""
        self.memo: dict[Any, Any] = {}
        """Derived facts about this state for callers that never mutate it (e.g. the grader's
        matches on a task's initial state); a fork starts with an empty memo."""

    @classmethod
    def from_snapshot(cls, snap: WorldSnapshot | Mapping[str, Any]) -> WorldState:
        """A private deep copy of `snap`, ready to mutate."""
        if isinstance(snap, WorldSnapshot):
            now, cols = snap.now, snap.collections
        else:
            now, cols = snap.get("now", WorldSnapshot().now), snap.get("collections", {})
        raw = dumps(cols, sort_keys=True)
        copied = orjson.loads(raw)
        collections: dict[str, Records] = {}
        for name, recs in copied.items():
            table: Records = {}
            for r in recs:
                rid = r.get("id")
                if not isinstance(rid, str):
                    raise ValueError(f"record in {name!r} has no string id: {r!r}")
                if rid in table:
                    raise ValueError(f"duplicate id {rid!r} in {name!r}")
                table[rid] = r
            collections[name] = table
        lineage = hashlib.blake2b(now.encode() + raw, digest_size=16).hexdigest()
        return cls(now, collections, lineage)

    def fork(self) -> WorldState:
        """A new state equal to this one in O(collections): records are shared (never mutated in
        place) and tables are copied on first write by either side, so writes never leak across."""
        new = WorldState(self.now, dict(self.collections), self.lineage)
        new._counters = dict(self._counters)
        new._owned = set()
        self._owned = set()  # tables are shared now: both sides copy a table before writing it
        return new

    def touched(self) -> set[tuple[str, str]]:
        """(collection, id) of every record written since this state was made."""
        return {(c, i) for c, i, _, _ in self.log}

    def snapshot(self) -> WorldSnapshot:
        """The current state as data (records are shared, not copied: they are never mutated)."""
        return WorldSnapshot(
            now=self.now, collections={c: list(t.values()) for c, t in self.collections.items()}
        )

    def table(self, collection: str) -> Records:
        """The records of a collection, writable by this state (copied first if shared with a fork)."""
        t = self.collections.get(collection)
        if t is None:
            t = self.collections[collection] = {}
            self._owned.add(collection)
        elif collection not in self._owned:
            t = self.collections[collection] = dict(t)
            self._owned.add(collection)
        return t

    def get(self, collection: str, rid: str) -> dict[str, Any] | None:
        return self.collections.get(collection, {}).get(rid)

    def iter(self, collection: str) -> Iterator[dict[str, Any]]:
        return iter(self.collections.get(collection, {}).values())

    def _write(
        self, collection: str, rid: str, before: dict[str, Any] | None, after: dict[str, Any] | None
    ) -> None:
        self.log.append((collection, rid, before, after))
        self.version += 1
        h = hashlib.blake2b(self.lineage.encode(), digest_size=16)
        h.update(dumps([collection, rid, after], sort_keys=True))
        self.lineage = h.hexdigest()

    def put(self, collection: str, record: dict[str, Any]) -> None:
        """Insert or replace a record (the caller passes a fresh dict)."""
        table = self.table(collection)
        rid = record["id"]
        before = table.get(rid)
        table[rid] = record
        high = self._counters.get(collection)
        if high is not None:
            m = _SUFFIX.search(rid)
            if m and int(m.group(1)) > high:
                self._counters[collection] = int(m.group(1))
        self._write(collection, rid, before, record)

    def remove(self, collection: str, rid: str) -> dict[str, Any] | None:
        """Delete a record; returns it (None if absent)."""
        if rid not in self.collections.get(collection, {}):
            return None
        before = self.table(collection).pop(rid)
        if before is not None:
            self._write(collection, rid, before, None)
        return before

    def _high(self, collection: str) -> int:
        """Highest numeric id suffix in the collection (scanned once, then kept current by put)."""
        n = self._counters.get(collection)
        if n is None:
            n = 0
            for rid in self.collections.get(collection, {}):
                m = _SUFFIX.search(rid)
                if m:
                    n = max(n, int(m.group(1)))
            self._counters[collection] = n
        return n

    def next_id(self, collection: str, prefix: str) -> str:
        """A fresh id `{prefix}_{n:04d}` above every numeric suffix used in the collection. Asking
        reserves nothing: only a `put` of the record uses the id, so a refused create costs none."""
        n = self._high(collection)
        table = self.collections.get(collection, {})
        while True:
            n += 1
            rid = f"{prefix}_{n:04d}"
            if rid not in table:
                return rid

    def changes_since(self, mark: int) -> list[Change]:
        """Changes logged after position `mark` of the log."""
        return [Change(collection=c, id=i, before=b, after=a) for c, i, b, a in self.log[mark:]]


def _strip(record: Mapping[str, Any] | None, trace: frozenset[str]) -> Any:
    if record is None:
        return None
    return canonical({k: v for k, v in record.items() if k not in trace})


def changed_records(
    before: WorldSnapshot | WorldState,
    after: WorldSnapshot | WorldState,
    trace_fields: Mapping[str, frozenset[str]] | None = None,
    keys: set[tuple[str, str]] | None = None,
) -> list[tuple[str, str, Any, Any]]:
    """(collection, id, before, after) for each record that differs, normalised: `diff` without
    wrapping each as a `Change` (the grader needs only the keys)."""
    a, b = _tables(before), _tables(after)
    trace_fields = trace_fields or {}
    if keys is None:
        keys = {(c, i) for t in (a, b) for c, recs in t.items() for i in recs}
    out = []
    for col, rid in sorted(keys):
        ra = a.get(col, {}).get(rid)
        rb = b.get(col, {}).get(rid)
        if ra is rb or (ra is not None and rb is not None and same(ra, rb)):
            continue  # identical, or equal as written (no normalisation needed)
        trace = trace_fields.get(col, frozenset())
        ra, rb = _strip(ra, trace), _strip(rb, trace)
        if not same(ra, rb):
            out.append((col, rid, ra, rb))
    return out


def diff(
    before: WorldSnapshot | WorldState,
    after: WorldSnapshot | WorldState,
    trace_fields: Mapping[str, frozenset[str]] | None = None,
    keys: set[tuple[str, str]] | None = None,
) -> list[Change]:
    """Records that differ between two states, normalised, trace fields dropped; sorted by (collection, id).

    `keys` restricts the comparison to those (collection, id) pairs — when `after` was forked from
    `before`, `after.touched()` names every record that can differ, which makes this O(writes).
    """
    return [
        Change(collection=c, id=i, before=x, after=y)
        for c, i, x, y in changed_records(before, after, trace_fields, keys)
    ]


def same_state(
    a: WorldSnapshot | WorldState,
    b: WorldSnapshot | WorldState,
    trace_fields: Mapping[str, frozenset[str]] | None = None,
) -> bool:
    """Normalised equality of two states (trace fields ignored)."""
    return not diff(a, b, trace_fields)


def _tables(s: WorldSnapshot | WorldState) -> dict[str, Records]:
    if isinstance(s, WorldState):
        return s.collections
    return {c: {r["id"]: r for r in recs} for c, recs in s.collections.items()}
