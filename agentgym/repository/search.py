"""Find tools by what they do: BM25 over each tool's name, description and parameter names.

`search(repo, query, k=10, source=None)` returns the `k` best `SearchHit`s (score, name, server,
taxonomy domain and category, source, the head of the description), best first, ties in repository
order. Only tools sharing at least one term with the query are returned.

Terms are case-folded words; identifiers are split (`getUserId` → get, user, id) and a mixed-case
word is also kept whole (`GitHub` → github, git, hub); plurals are folded (`events` → event); a few
stop words are dropped. Name words count twice, since a name says what a tool does more densely
than its description.

The index (`SearchIndex`) is built once per repository content: it is kept in memory for the
repository object and on disk under `cache_dir()/search/`, keyed by a hash of exactly what it
reads (source, name, description, parameter names, taxonomy of every tool), so an edited, added or
removed tool gives a new index and a stale one is never used. Building it for 25,000 tools takes a
few seconds; a query over it takes milliseconds.
"""

from __future__ import annotations

import hashlib
import os
import re
import weakref
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from scipy import sparse

from agentgym.paths import cache_dir
from agentgym.repository.stats import tool_source
from agentgym.repository.store import SOURCES, ToolRepository
from agentgym.repository.words import singular, words

VERSION = 1  # bump when tokenisation or weighting changes: old cache files are then never read
K1, B = 1.2, 0.75
NAME_WEIGHT = 2
HEAD = 160
STOP = frozenset((
    "a", "an", "and", "are", "as", "at", "be", "by", "can", "for", "from", "has", "have", "if", "in",
    "into", "is", "it", "its", "of", "on", "or", "such", "that", "the", "their", "then", "there", "these",
    "this", "to", "was", "will", "with", "you", "your",
))  # fmt: skip
_CHUNK = re.compile(r"[^\W_]+")


def terms(text: str) -> list[str]:
    """Search terms of a text or identifier (see module doc)."""
    out: list[str] = []
    for chunk in _CHUNK.findall(text):
        parts = words(chunk)
        whole = chunk.casefold()
        for w in [whole, *parts] if len(parts) > 1 else [whole]:
            if w not in STOP:
                out.append(singular(w))
    return out


def _tool_terms(tool: Mapping[str, Any]) -> list[str]:
    props = (tool.get("input_schema") or {}).get("properties") or {}
    name = terms(str(tool.get("name", "")))
    params = [t for p in props if isinstance(p, str) for t in terms(p)]
    return name * NAME_WEIGHT + terms(str(tool.get("description") or "")) + params


def _head(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= HEAD else line[: HEAD - 1].rstrip() + "…"


@dataclass(frozen=True)
class SearchHit:
    """One search result."""

    score: float
    name: str
    server: str
    domain: str
    category: str
    source: str
    description: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class SearchIndex:
    """A BM25 index over tools: term × tool weights, and what a hit shows of each tool."""

    def __init__(self, weights: sparse.csr_matrix, vocab: list[str], meta: list[list[str]]) -> None:
        self.weights = weights  # (terms, tools), rows summed per query
        self.vocab = {t: i for i, t in enumerate(vocab)}
        self._vocab_list = vocab
        self.meta = meta  # per tool: name, server, domain, category, source, description head
        self._source = np.array([SOURCES.index(m[4]) if m[4] in SOURCES else -1 for m in meta], dtype=np.int8)

    def __len__(self) -> int:
        return len(self.meta)

    @classmethod
    def build(cls, rows: Iterable[tuple[str, str, Mapping[str, Any]]]) -> SearchIndex:
        """Index `(source, server, raw tool)` triples."""
        vocab: dict[str, int] = {}
        indptr, indices, meta = [0], [], []
        for source, server, tool in rows:
            for t in _tool_terms(tool):
                indices.append(vocab.setdefault(t, len(vocab)))
            indptr.append(len(indices))
            tax = tool.get("taxonomy") or {}
            meta.append([
                str(tool.get("name", "")), server, str(tax.get("domain", "")), str(tax.get("category", "")),
                source, _head(str(tool.get("description") or "")),
            ])  # fmt: skip
        n_docs, n_terms = len(meta), len(vocab)
        counts = sparse.csr_matrix(
            (np.ones(len(indices), dtype=np.float32), np.array(indices, dtype=np.int64), np.array(indptr)),
            shape=(n_docs, n_terms),
        )
        counts.sum_duplicates()  # term frequencies
        lengths = np.diff(np.array(indptr)).astype(np.float32)
        df = np.bincount(counts.indices, minlength=n_terms).astype(np.float32)
        idf = np.log1p((n_docs - df + 0.5) / (df + 0.5))
        norm = K1 * (1 - B + B * lengths / max(float(lengths.mean()) if n_docs else 1.0, 1e-9))
        tf = counts.data
        row_norm = np.repeat(norm, np.diff(counts.indptr))
        counts.data = (idf[counts.indices] * tf * (K1 + 1) / (tf + row_norm)).astype(np.float32)
        ordered = sorted(vocab, key=vocab.__getitem__)
        return cls(counts.T.tocsr(), ordered, meta)

    def query(self, text: str, k: int = 10, source: str | None = None) -> list[SearchHit]:
        """The `k` best tools for `text`, optionally of one source."""
        if source is not None and source not in SOURCES:
            raise ValueError(f"source must be one of {SOURCES}, not {source!r}")
        ids = sorted({self.vocab[t] for t in terms(text) if t in self.vocab})
        if not ids or k <= 0:
            return []
        scores = np.asarray(self.weights[ids].sum(axis=0)).ravel()
        if source is not None:
            scores[self._source != SOURCES.index(source)] = 0.0
        hits = np.flatnonzero(scores > 0)
        if len(hits) > k:
            hits = hits[np.argpartition(-scores[hits], k - 1)[:k]]
        best = hits[np.lexsort((hits, -scores[hits]))]
        return [SearchHit(round(float(scores[i]), 4), *self.meta[i]) for i in best]

    # ---- disk ------------------------------------------------------------------------------------

    def save(self, path: Path) -> None:
        """Write `path` (.npz, the weights) and `path` with .json (vocabulary and hit fields),
        each atomically."""
        path.parent.mkdir(parents=True, exist_ok=True)
        w = self.weights
        tmp = path.with_name(path.name + ".tmp.npz")
        np.savez(tmp, data=w.data, indices=w.indices, indptr=w.indptr, shape=np.array(w.shape))
        side = path.with_suffix(".json")
        side_tmp = side.with_name(side.name + ".tmp")
        side_tmp.write_bytes(orjson.dumps({"vocab": self._vocab_list, "meta": self.meta}))
        os.replace(side_tmp, side)
        os.replace(tmp, path)  # last: the .npz existing means both files are complete

    @classmethod
    def load(cls, path: Path) -> SearchIndex:
        with np.load(path) as z:
            w = sparse.csr_matrix((z["data"], z["indices"], z["indptr"]), shape=tuple(z["shape"]))
        side = orjson.loads(path.with_suffix(".json").read_bytes())
        return cls(w, side["vocab"], side["meta"])


def _rows(repo: ToolRepository) -> list[tuple[str, str, dict[str, Any]]]:
    return [(tool_source(repo, d, t), d, t) for d, t in repo.raw_tools()]


def fingerprint(rows: list[tuple[str, str, Mapping[str, Any]]]) -> str:
    """Hash of everything the index reads from these rows (and the index version)."""
    parts = [
        (s, d, t.get("name"), t.get("description"), list((t.get("input_schema") or {}).get("properties") or {}),
         t.get("taxonomy"))
        for s, d, t in rows
    ]  # fmt: skip
    return hashlib.blake2b(orjson.dumps([VERSION, parts]), digest_size=16).hexdigest()


_MEMO: weakref.WeakKeyDictionary[ToolRepository, SearchIndex] = weakref.WeakKeyDictionary()


def index_for(repo: ToolRepository, cache: Path | None = None) -> SearchIndex:
    """The repository's index: from memory, else from the disk cache, else built and cached."""
    idx = _MEMO.get(repo)
    if idx is not None:
        return idx
    rows = _rows(repo)
    path = (cache or cache_dir() / "search") / f"bm25-{fingerprint(rows)}.npz"
    if path.exists():
        try:
            idx = SearchIndex.load(path)
        except (OSError, ValueError, KeyError):  # a damaged cache file: rebuild over it
            idx = None
    if idx is None or len(idx) != len(rows):
        idx = SearchIndex.build(rows)
        idx.save(path)
    _MEMO[repo] = idx
    return idx


def search(repo: ToolRepository, query: str, k: int = 10, source: str | None = None) -> list[SearchHit]:
    """The `k` tools of `repo` most relevant to `query`, optionally of one source (module doc)."""
    return index_for(repo).query(query, k, source)
