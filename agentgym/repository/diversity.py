"""How diverse a set of tools is, measured rather than assumed.

`diversity(tools)` takes raw tool dicts (as `ToolRepository.raw_tools` yields them, or a sample)
and returns a JSON-ready dict:

- `distinct_n`: distinct n-grams / all n-grams (n = 1, 2, 3) over name words (namespace stripped)
  and description words, pooled over the set. Like every distinct-n it falls as a set grows, so
  compare sets of equal size (`sample_tools`).
- `name_uniqueness`: distinct bare names (server namespace stripped; case and separators ignored,
  so `getUser` and `get_user` are one name) / tools.
- `near_duplicates`: share of tools whose description has another within word-set Jaccard ≥
  `threshold` (0.8). Exact word sets are grouped first; the rest are found with MinHash LSH (100
  permutations, 20 bands of 5 rows: a pair at Jaccard 0.8 becomes a candidate with probability
  0.9996) and every candidate pair is checked exactly, so there are no false positives. Linear in
  the number of tools; 25,000 descriptions take a few seconds.
- `parameter_types`: the mix of top-level parameter types and its Shannon entropy in bits.
- `naming`: shares of naming styles (snake_case, camelCase, PascalCase, kebab-case, lowercase,
  UPPER_CASE, mixed) and of verb-first names.
- `coverage`: tools and taxonomy domains per category.
- `embedding` (when `embeddings` are given, one row per tool): mean pairwise cosine distance on a
  seeded sample.

Deterministic: the same tools, seed and embeddings give the same numbers. Pure functions.
"""

from __future__ import annotations

import hashlib
import math
import random
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from agentgym.repository.semantics import READ_VERBS, VERBS
from agentgym.repository.stats import parameter_types
from agentgym.repository.words import words

THRESHOLD = 0.8
BANDS, ROWS = 20, 5
PARTNERS = 64  # candidates checked per item in one LSH bucket; a bucket of templated text stays linear
_MORE_VERBS = (
    "send", "run", "execute", "start", "stop", "cancel", "generate", "close", "open", "move", "copy",
    "download", "sync", "publish", "archive", "restore", "assign", "reassign", "tag", "untag", "approve",
    "reject", "submit", "complete", "mark", "reply", "forward", "share", "invite", "schedule", "book",
    "pay", "refund", "transfer", "translate", "write", "navigate", "click", "take", "capture", "extract",
    "parse", "format", "render", "export", "import", "install", "deploy", "build", "test", "merge", "clone",
    "fork", "push", "pull", "commit", "reset", "enable", "disable", "toggle", "subscribe", "unsubscribe",
    "follow", "unfollow", "like", "post", "upload", "attach", "detach", "link", "unlink", "connect",
    "disconnect", "login", "logout", "authenticate", "verify", "sign", "play", "pause", "resume", "record",
    "track", "monitor", "watch", "notify", "log", "clear", "add", "set", "apply", "sort", "rank",
    "recommend", "suggest", "plan", "predict", "classify",
)  # fmt: skip
VERB_WORDS = frozenset(VERBS) | READ_VERBS | frozenset(_MORE_VERBS)
_WORD = re.compile(r"[^\W_]+")


# ---- text -----------------------------------------------------------------------------------------


def text_tokens(text: str) -> list[str]:
    """Case-folded word tokens (letters and digits; `_` and punctuation separate)."""
    return _WORD.findall(text.casefold())


def bare_name(tool: Mapping[str, Any]) -> str:
    """The tool's name on its server: `provenance.original_name`, else the part after `server__`."""
    original = (tool.get("provenance") or {}).get("original_name")
    if isinstance(original, str) and original:
        return original
    name = str(tool.get("name", ""))
    return name.split("__", 1)[1] if "__" in name else name


def distinct_n(sequences: Iterable[Sequence[str]], n: int) -> float:
    """Distinct n-grams / all n-grams over the sequences (0.0 when there is none)."""
    seen: set[tuple[str, ...]] = set()
    total = 0
    for seq in sequences:
        grams = [tuple(seq[i : i + n]) for i in range(len(seq) - n + 1)]
        total += len(grams)
        seen.update(grams)
    return round(len(seen) / total, 4) if total else 0.0


def naming_style(name: str) -> str:
    """snake_case, camelCase, PascalCase, kebab-case, lowercase (one word), UPPER_CASE or mixed."""
    has_upper, has_lower = any(c.isupper() for c in name), any(c.islower() for c in name)
    under, dash = "_" in name, "-" in name
    if has_upper and not has_lower:
        return "UPPER_CASE"
    if under and dash:
        return "mixed"
    if not has_upper:
        return "snake_case" if under else "kebab-case" if dash else "lowercase"
    if under or dash or not name[:1].isalpha():
        return "mixed"
    return "camelCase" if name[0].islower() else "PascalCase"


def verb_first(name: str) -> bool:
    """The first word of the name is a verb (`get_user`, `sendMessage`; not `user_get`)."""
    w = words(name)
    return bool(w) and w[0] in VERB_WORDS


# ---- near duplicates ------------------------------------------------------------------------------


def jaccard(a: Iterable[str], b: Iterable[str]) -> float:
    """|a ∩ b| / |a ∪ b|; two empty sets are identical (1.0)."""
    sa, sb = set(a), set(b)
    union = len(sa | sb)
    return len(sa & sb) / union if union else 1.0


def _minhash(sets: list[frozenset[str]], seed: int) -> np.ndarray:
    """(len(sets), BANDS * ROWS) MinHash signatures of non-empty sets."""
    rng = np.random.default_rng(seed)
    a = rng.integers(1, 2**63, BANDS * ROWS, dtype=np.uint64) | np.uint64(1)  # odd: a bijection mod 2^64
    b = rng.integers(0, 2**63, BANDS * ROWS, dtype=np.uint64)
    memo: dict[str, int] = {}

    def h(tok: str) -> int:
        v = memo.get(tok)
        if v is None:
            v = memo[tok] = int.from_bytes(hashlib.blake2b(tok.encode(), digest_size=8).digest(), "little")
        return v

    out = np.empty((len(sets), a.size), dtype=np.uint64)
    chunk = 1024
    for lo in range(0, len(sets), chunk):
        part = sets[lo : lo + chunk]
        hashes = np.fromiter((h(t) for s in part for t in sorted(s)), dtype=np.uint64)
        starts = np.cumsum([0] + [len(s) for s in part[:-1]])
        # a*x + b wraps modulo 2^64 in uint64 arithmetic: one random permutation per column
        out[lo : lo + len(part)] = np.minimum.reduceat(hashes[:, None] * a + b, starts, axis=0)
    return out


def near_duplicate_flags(texts: Sequence[str], threshold: float = THRESHOLD, seed: int = 0) -> np.ndarray:
    """For each text, whether another text's word set is within Jaccard ≥ `threshold` of its own
    (see module doc for the method)."""
    token_sets = [frozenset(text_tokens(t)) for t in texts]
    unique: dict[frozenset[str], list[int]] = defaultdict(list)
    for i, s in enumerate(token_sets):
        unique[s].append(i)
    keys = list(unique)
    flagged = np.array([len(unique[k]) > 1 for k in keys], dtype=bool)
    nonempty = [j for j, k in enumerate(keys) if k]
    if len(nonempty) > 1:
        sig = _minhash([keys[j] for j in nonempty], seed)
        index = np.array(nonempty)
        mix = np.random.default_rng(seed + 1).integers(1, 2**63, ROWS, dtype=np.uint64) | np.uint64(1)
        for band in range(BANDS):
            cols = sig[:, band * ROWS : (band + 1) * ROWS]
            bucket = (cols * mix).sum(axis=1)  # one 64-bit key per band; collisions are checked exactly
            order = np.argsort(bucket, kind="stable")
            ordered = bucket[order]
            starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
            ends = np.r_[starts[1:], len(order)]
            shared = ends - starts > 1
            for lo, hi in zip(starts[shared], ends[shared], strict=True):
                members = index[order[lo:hi]].tolist()
                for pos, i in enumerate(members):
                    if flagged[i]:
                        continue
                    for j in members[pos + 1 : pos + 1 + PARTNERS] + members[max(0, pos - PARTNERS) : pos]:
                        if jaccard(keys[i], keys[j]) >= threshold:
                            flagged[i] = flagged[j] = True
                            break
    out = np.zeros(len(texts), dtype=bool)
    for k, f in zip(keys, flagged, strict=True):
        if f:
            out[unique[k]] = True
    return out


# ---- the whole set --------------------------------------------------------------------------------


def entropy_bits(counts: Mapping[str, int]) -> float:
    """Shannon entropy of a distribution given by counts, in bits."""
    total = sum(counts.values())
    return round(-sum(c / total * math.log2(c / total) for c in counts.values() if c), 4) if total else 0.0


def mean_cosine_distance(embeddings: np.ndarray, sample: int = 1000, seed: int = 0) -> float:
    """Mean of 1 - cosine similarity over all pairs of a seeded sample of rows."""
    x = np.asarray(embeddings, dtype=np.float64)
    if len(x) < 2:
        return 0.0
    if len(x) > sample:
        x = x[np.sort(np.random.default_rng(seed).choice(len(x), sample, replace=False))]
    x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    sim = x @ x.T
    n = len(x)
    return round(float((n * n - sim.sum()) / (n * (n - 1))), 4)  # the diagonal adds 1 - 1 = 0


def sample_tools(tools: Sequence[Mapping[str, Any]], n: int, seed: int = 0) -> list[Mapping[str, Any]]:
    """Up to n tools, a seeded sample in the original order (for size-matched comparisons)."""
    if len(tools) <= n:
        return list(tools)
    keep = sorted(random.Random(seed).sample(range(len(tools)), n))
    return [tools[i] for i in keep]


def diversity(
    tools: Iterable[Mapping[str, Any]],
    embeddings: np.ndarray | None = None,
    *,
    threshold: float = THRESHOLD,
    embedding_sample: int = 1000,
    seed: int = 0,
) -> dict[str, Any]:
    """Diversity metrics of a set of raw tool dicts (see module doc); `embeddings`, if given, has
    one row per tool in the same order."""
    tools = list(tools)
    n = len(tools)
    names = [bare_name(t) for t in tools]
    name_words = [words(x) for x in names]
    desc_words = [text_tokens(str(t.get("description") or "")) for t in tools]
    flags = near_duplicate_flags([str(t.get("description") or "") for t in tools], threshold, seed)
    exact = Counter(frozenset(w) for w in desc_words)
    types = Counter(ty for t in tools for ty in parameter_types(t.get("input_schema") or {}))
    type_bits = entropy_bits(types)
    styles = Counter(naming_style(x) for x in names)
    coverage: dict[str, Counter[str]] = defaultdict(Counter)
    for t in tools:
        tax = t.get("taxonomy") or {}
        coverage[tax.get("category") or "(none)"][tax.get("domain") or "(none)"] += 1
    out: dict[str, Any] = {
        "tools": n,
        "distinct_n": {
            "name": {str(k): distinct_n(name_words, k) for k in (1, 2, 3)},
            "description": {str(k): distinct_n(desc_words, k) for k in (1, 2, 3)},
        },
        "name_uniqueness": round(len({"".join(w) for w in name_words}) / n, 4) if n else 0.0,
        "near_duplicates": {
            "threshold": threshold,
            "share": round(float(flags.mean()), 4) if n else 0.0,
            "exact_share": round(sum(c for c in exact.values() if c > 1) / n, 4) if n else 0.0,
        },
        "parameter_types": {
            "mix": dict(types.most_common()),
            "entropy_bits": type_bits,
            "normalized_entropy": round(type_bits / math.log2(len(types)), 4) if len(types) > 1 else 0.0,
        },
        "naming": {
            "styles": {s: round(c / n, 4) for s, c in styles.most_common()},
            "verb_first": round(sum(map(verb_first, names)) / n, 4) if n else 0.0,
        },
        "coverage": {
            c: {"tools": sum(doms.values()), "domains": len(doms)}
            for c, doms in sorted(coverage.items(), key=lambda kv: (-sum(kv[1].values()), kv[0]))
        },
        "embedding": None,
    }
    if embeddings is not None:
        if len(embeddings) != n:
            raise ValueError(f"{len(embeddings)} embeddings for {n} tools")
        out["embedding"] = {
            "mean_cosine_distance": mean_cosine_distance(embeddings, embedding_sample, seed),
            "sample": min(n, embedding_sample),
        }
    return out
