"""Make agents: coherent tool subsets from the repository, each with its own system prompt.

`make_agents(catalog, n, seed)` draws agents by strategy (`STRATEGIES`, weighted):

- `domain` — one synthetic domain: for one or two of its collections, a way to find records
  (search or list), to read one, and a few ways to change them (3–12 tools);
- `complementary` — two synthetic domains of the same category, a few tools of each;
- `mixed` — a synthetic subset plus one to three real tools (crawled or live) of the same category;
- `real` — tools of one real MCP server (crawled or live), as the server offers them.

No two agents hold the same tool set (a draw that repeats one is dropped and counted). The result
carries coverage: how many of the repository's tools and domains some agent holds, per source.
Deterministic in `seed`.
"""

from __future__ import annotations

import hashlib
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from agentgym.agents.catalog import Catalog, CollectionTools, DomainEntry
from agentgym.agents.persona import area_of, compose
from agentgym.spec.agent import AgentSpec

MIN_TOOLS, MAX_TOOLS = 3, 12


@dataclass(slots=True)
class Subset:
    strategy: str
    tools: list[str]
    domains: list[str]
    areas: list[str]


def _pick(rng: random.Random, tools: list[str], k: int = 1) -> list[str]:
    return rng.sample(tools, min(k, len(tools))) if tools else []


def entity_tools(rng: random.Random, ct: CollectionTools, writes: int, must: str | None = None) -> list[str]:
    """A coherent slice of one collection's tools: find, read, then `writes` kinds of change
    (`must` among them when the collection has it)."""
    out = _pick(rng, ct.tools("search") or ct.tools("list"))
    out += _pick(rng, ct.tools("get"))
    extras = ct.tools("list_for_parent", "get_by_key", "count")
    out += _pick(rng, [t for t in extras if t not in out], rng.randint(0, 2))
    write_ops = [op for op in ("update", "action", "create", "delete", "clone") if ct.tools(op)]
    chosen = rng.sample(write_ops, min(writes, len(write_ops)))
    if must in write_ops and must not in chosen:
        chosen = [must, *chosen[: max(0, writes - 1)]]
    for op in chosen:
        out += _pick(rng, ct.tools(op), 2 if op == "action" and rng.random() < 0.5 else 1)
    return list(dict.fromkeys(out))


def _collections(d: DomainEntry) -> list[CollectionTools]:
    return [c for c in d.collections.values() if c.tools("search", "list") and c.tools("get")]


def _slice(
    d: DomainEntry, rng: random.Random, writes: tuple[int, int], family: float
) -> tuple[list[str], list[str]] | None:
    """(tools, area phrases) for one domain. With probability `family`, when the domain has one, a
    family: a child collection to list by parent and change (an action or an update), and the
    parent to find — what the many-call tasks need."""
    cols = _collections(d)
    if not cols:
        return None
    children = [c for c in cols if any(p in d.collections for p in c.parents) and c.tools("list_for_parent")]
    if children and rng.random() < family:
        focus = rng.choice(children)
        parent = d.collections[next(p for p in focus.parents if p in d.collections)]
        must = rng.choice([op for op in ("action", "update") if focus.tools(op)] or [None])
        tools = entity_tools(rng, focus, rng.randint(*writes), must) + _pick(
            rng, focus.tools("list_for_parent")
        )
        tools += _pick(rng, parent.tools("search") or parent.tools("list")) + _pick(rng, parent.tools("get"))
        return tools, [_area_phrase(d, focus), _area_phrase(d, parent)]
    focus = rng.choice(cols)
    tools = entity_tools(rng, focus, rng.randint(*writes))
    others = [c for c in cols if c is not focus]
    if others and rng.random() < 0.5:
        parent = next((c for c in others if c.collection in focus.parents), None) or rng.choice(others)
        tools += entity_tools(rng, parent, rng.randint(0, 1))
    return tools, [_area_phrase(d, focus)]


def _domain(cat: Catalog, rng: random.Random) -> Subset | None:
    d = rng.choice(cat.synthetic())
    got = _slice(d, rng, (1, 3), family=0.7)
    return Subset("domain", got[0], [d.name], got[1]) if got else None


def _complementary(cat: Catalog, rng: random.Random) -> Subset | None:
    a = rng.choice(cat.synthetic())
    peers = [n for n in cat.by_category[a.category] if n != a.name and not cat.domains[n].real]
    peers = [n for n in peers if cat.domains[n].executable]
    if not peers:
        return None
    b = cat.domains[rng.choice(peers)]
    first, second = _slice(a, rng, (1, 2), family=0.5), _slice(b, rng, (1, 1), family=0.0)
    if first is None or second is None:
        return None
    return Subset("complementary", first[0] + second[0][:5], [a.name, b.name], first[1] + second[1])


def _mixed(cat: Catalog, rng: random.Random) -> Subset | None:
    d = rng.choice(cat.synthetic())
    real = [n for n in cat.by_category[d.category] if cat.domains[n].real] or [r.name for r in cat.real()]
    got = _slice(d, rng, (1, 2), family=0.4)
    if got is None or not real:
        return None
    server = cat.domains[rng.choice(real)]
    tools = got[0][:9] + _pick(rng, server.tools, rng.randint(1, 3))
    return Subset("mixed", tools, [d.name, server.name], [*got[1], _real_phrase(server)])


def _real(cat: Catalog, rng: random.Random) -> Subset | None:
    servers = [d for d in cat.real() if len(d.tools) >= MIN_TOOLS]
    d = rng.choice(servers)
    k = rng.randint(MIN_TOOLS, min(MAX_TOOLS, len(d.tools)))
    tools = d.tools if len(d.tools) <= k else sorted(rng.sample(d.tools, k), key=d.tools.index)
    return Subset("real", list(tools), [d.name], [_real_phrase(d)])


def _area_phrase(d: DomainEntry, focus: CollectionTools) -> str:
    return f"{area_of(d.name)} ({focus.noun} records)"


def _real_phrase(d: DomainEntry) -> str:
    desc = d.description.strip().split(". ")[0].rstrip(".")
    if len(desc) > 80:
        desc = desc[:80].rsplit(" ", 1)[0]
    return f"the {area_of(d.name)} service" + (f" ({desc[0].lower()}{desc[1:]})" if desc else "")


STRATEGIES: dict[str, tuple[float, Callable[[Catalog, random.Random], Subset | None]]] = {
    "domain": (0.4, _domain),
    "complementary": (0.25, _complementary),
    "mixed": (0.25, _mixed),
    "real": (0.1, _real),
}


@dataclass(slots=True)
class AgentBatch:
    """Made agents and what they cover."""

    agents: list[AgentSpec]
    strategies: Counter[str]
    layouts: Counter[str]
    rejected: Counter[str] = field(default_factory=Counter)
    strategy_of: dict[str, str] = field(default_factory=dict)
    """Agent id → the strategy that made it."""
    coverage: dict[str, dict[str, int]] = field(default_factory=dict)


def agent_id(subset: Subset) -> str:
    digest = hashlib.sha1("|".join(sorted(subset.tools)).encode()).hexdigest()[:8]
    return f"{subset.domains[0][:40]}-{digest}"


def make_agents(
    cat: Catalog,
    n: int,
    seed: int = 0,
    *,
    strategies: dict[str, float] | None = None,
    exclude: set[frozenset[str]] | None = None,
) -> AgentBatch:
    """`n` distinct agents (see module doc); `exclude` holds tool sets already taken."""
    if n < 1:
        raise ValueError("n must be at least 1")
    rng = random.Random(seed)
    weights = strategies or {k: w for k, (w, _) in STRATEGIES.items()}
    unknown = set(weights) - set(STRATEGIES)
    if unknown:
        raise ValueError(f"unknown strategies {sorted(unknown)}; known: {sorted(STRATEGIES)}")
    names, probs = zip(*sorted(weights.items()), strict=True)
    taken: set[frozenset[str]] = set(exclude or ())
    batch = AgentBatch([], Counter(), Counter())
    attempts = 0
    while len(batch.agents) < n:
        attempts += 1
        if attempts > 50 * n + 1000:
            raise RuntimeError(
                f"made only {len(batch.agents)} of {n} distinct agents in {attempts} draws: "
                "the repository is too small for that many"
            )
        name = rng.choices(names, probs)[0]
        sub = STRATEGIES[name][1](cat, rng)
        if sub is None:
            batch.rejected["no_fit"] += 1
            continue
        sub.tools = list(dict.fromkeys(sub.tools))[:MAX_TOOLS]
        if len(sub.tools) < MIN_TOOLS:
            batch.rejected["too_few_tools"] += 1
            continue
        key = frozenset(sub.tools)
        if key in taken:
            batch.rejected["duplicate_subset"] += 1
            continue
        taken.add(key)
        display, prompt, layout = compose(rng, sub.areas, area_of(sub.domains[0]))
        batch.agents.append(
            AgentSpec(
                id=agent_id(sub),
                name=display,
                system_prompt=prompt,
                tools=tuple(sub.tools),
                domains=tuple(sub.domains),
            )
        )
        batch.strategies[name] += 1
        batch.strategy_of[batch.agents[-1].id] = name
        batch.layouts[layout] += 1
    batch.coverage = coverage(cat, batch.agents)
    return batch


def coverage(cat: Catalog, agents: list[AgentSpec]) -> dict[str, dict[str, int]]:
    """Per source: tools and domains in the repository, and how many some agent holds."""
    held = {t for a in agents for t in a.tools}
    out: dict[str, dict[str, int]] = {}
    for d in cat.domains.values():
        row = out.setdefault(d.source, {"tools": 0, "tools_held": 0, "domains": 0, "domains_held": 0})
        row["tools"] += len(d.tools)
        n_held = sum(t in held for t in d.tools)
        row["tools_held"] += n_held
        row["domains"] += 1
        row["domains_held"] += n_held > 0
    return out
