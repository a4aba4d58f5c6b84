"""Train/test splits with held-out domains, and near-duplicate checks across them.

`assign_splits(tasks, agents, rng, heldout_frac, test_frac)` holds out a share of the domains:
every task of an agent that touches a held-out domain is test, and so are all tasks of a random
share of the other agents (in-domain test); the rest is train. `near_duplicates(a, b)` finds
pairs of instructions, one from each list, whose word-trigram Jaccard similarity is at least
`threshold` after normalisation (case, ids and numbers masked) — exactly, with a prefix filter
on rare shingles instead of comparing every pair. `decontaminate` drops the train side of every
such pair, so no test request has a near copy in train.
"""

from __future__ import annotations

import math
import random
import re
from collections import Counter, defaultdict
from collections.abc import Sequence

from agentgym.spec.agent import AgentSpec
from agentgym.spec.task import TaskSpec

_ID = re.compile(r"\b[a-z][a-z0-9]*_\d{2,}\b")
_NUM = re.compile(r"\d+(?:[.,:]\d+)*")
_WORD = re.compile(r"[a-z#@]+")


def shingles(text: str, n: int = 3) -> frozenset[str]:
    """Word n-grams of the normalised text (ids → '@', numbers → '#')."""
    t = _NUM.sub("#", _ID.sub("@", text.lower()))
    words = _WORD.findall(t)
    if len(words) < n:
        return frozenset([" ".join(words)])
    return frozenset(" ".join(words[i : i + n]) for i in range(len(words) - n + 1))


def jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    return len(a & b) / len(a | b) if a or b else 1.0


def near_duplicates(
    a: Sequence[str], b: Sequence[str], threshold: float = 0.8
) -> list[tuple[int, int, float]]:
    """(index in a, index in b, similarity) for every cross pair at or above `threshold`."""
    sa, sb = [shingles(x) for x in a], [shingles(x) for x in b]
    df: Counter[str] = Counter()
    for s in (*sa, *sb):
        df.update(s)

    def prefix(s: frozenset[str]) -> list[str]:
        # two sets with Jaccard >= t share a shingle among the |s| - ceil(t|s|) + 1 rarest of each
        ordered = sorted(s, key=lambda g: (df[g], g))
        return ordered[: len(ordered) - math.ceil(threshold * len(ordered)) + 1]

    index: dict[str, list[int]] = defaultdict(list)
    for j, s in enumerate(sb):
        for g in prefix(s):
            index[g].append(j)
    out = []
    for i, s in enumerate(sa):
        cands = {j for g in prefix(s) for j in index.get(g, ())}
        for j in cands:
            sim = jaccard(s, sb[j])
            if sim >= threshold:
                out.append((i, j, sim))
    return out


def assign_splits(
    tasks: Sequence[TaskSpec],
    agents: dict[str, AgentSpec],
    rng: random.Random,
    heldout_frac: float = 0.1,
    test_frac: float = 0.1,
) -> tuple[list[TaskSpec], set[str]]:
    """Tasks with `split` set (see module doc), and the held-out domains."""
    domains = sorted({d for a in agents.values() for d in a.domains})
    heldout = set(rng.sample(domains, round(heldout_frac * len(domains))))
    rest = sorted(a.id for a in agents.values() if not heldout & set(a.domains))
    in_domain_test = set(rng.sample(rest, round(test_frac * len(rest))))
    out = []
    for t in tasks:
        agent = agents[t.agent_id]
        test = bool(heldout & set(agent.domains)) or agent.id in in_domain_test
        tags = t.tags + (("heldout_domain",) if heldout & set(agent.domains) else ())
        out.append(t.model_copy(update={"split": "test" if test else "train", "tags": tags}))
    return out, heldout


def decontaminate(tasks: Sequence[TaskSpec], threshold: float = 0.8) -> tuple[list[TaskSpec], int]:
    """Drop train tasks whose instruction nearly duplicates a test one; returns (kept, dropped)."""
    train = [t for t in tasks if t.split == "train"]
    test = [t for t in tasks if t.split == "test"]
    pairs = near_duplicates([t.instruction for t in train], [t.instruction for t in test], threshold)
    drop = {train[i].id for i, _, _ in pairs}
    return [t for t in tasks if t.id not in drop], len(drop)
