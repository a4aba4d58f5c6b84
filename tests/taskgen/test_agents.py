"""Agent making: distinct coherent tool subsets, varied prompts, deterministic, coverage counted."""

from __future__ import annotations

from collections import Counter

import pytest

from agentgym.agents import make_agents
from agentgym.agents.make import MAX_TOOLS, MIN_TOOLS, STRATEGIES, coverage
from agentgym.agents.persona import LAYOUTS


@pytest.fixture(scope="module")
def batch(catalog):
    return make_agents(catalog, 400, seed=3)


def test_agents_are_distinct_and_sized(batch, catalog):
    agents = batch.agents
    assert len(agents) == 400
    assert len({frozenset(a.tools) for a in agents}) == 400
    assert len({a.id for a in agents}) == 400
    for a in agents:
        assert MIN_TOOLS <= len(a.tools) <= MAX_TOOLS
        assert len(set(a.tools)) == len(a.tools)
        # every tool exists and comes from the agent's declared domains
        assert {catalog.domain_of(t) for t in a.tools} <= set(a.domains)


def test_every_strategy_and_layout_is_used(batch, catalog):
    assert set(batch.strategies) == set(STRATEGIES)
    assert set(batch.layouts) == set(LAYOUTS)
    real_of = {a.id: {catalog.domains[catalog.domain_of(t)].real for t in a.tools} for a in batch.agents}
    for a in batch.agents:
        strategy = batch.strategy_of[a.id]
        want = {"mixed": {True, False}, "real": {True}}.get(strategy, {False})
        assert real_of[a.id] == want, (strategy, a.id)
        if strategy == "complementary":
            cats = {catalog.domains[d].category for d in a.domains}
            assert len(a.domains) == 2 and len(cats) == 1


def test_prompts_are_varied_not_one_template(batch):
    prompts = [a.system_prompt for a in batch.agents]
    assert len(set(prompts)) == len(prompts)
    openings = Counter(p.split()[0] for p in prompts)
    assert len(openings) >= 4  # layouts differ from the first word
    lengths = sorted(len(p) for p in prompts)
    assert lengths[-1] > 1.8 * lengths[0]
    for a in batch.agents:
        assert "ask" in a.system_prompt.lower()  # every agent knows to ask for a missing detail


def test_deterministic_in_seed(catalog):
    a = make_agents(catalog, 30, seed=11)
    b = make_agents(catalog, 30, seed=11)
    c = make_agents(catalog, 30, seed=12)
    assert [x.model_dump() for x in a.agents] == [x.model_dump() for x in b.agents]
    assert [x.id for x in a.agents] != [x.id for x in c.agents]


def test_exclude_keeps_subsets_out(catalog, batch):
    taken = {frozenset(a.tools) for a in batch.agents[:50]}
    more = make_agents(catalog, 50, seed=3, exclude=taken)
    assert not taken & {frozenset(a.tools) for a in more.agents}


def test_coverage_counts_held_tools(catalog, batch):
    cov = coverage(catalog, batch.agents)
    held = {t for a in batch.agents for t in a.tools}
    assert sum(r["tools_held"] for r in cov.values()) == len(held)
    assert sum(r["tools"] for r in cov.values()) == len(catalog.repo)
    assert cov["synthetic"]["tools_held"] > 0 and cov["crawl"]["tools_held"] > 0


def test_bad_requests_are_refused(catalog):
    with pytest.raises(ValueError, match="at least 1"):
        make_agents(catalog, 0)
    with pytest.raises(ValueError, match="unknown strategies"):
        make_agents(catalog, 5, strategies={"nope": 1.0})


@pytest.mark.slow
def test_five_thousand_distinct_agents(catalog):
    batch = make_agents(catalog, 5000, seed=0)
    assert len({frozenset(a.tools) for a in batch.agents}) == 5000
    assert len({a.system_prompt for a in batch.agents}) == 5000
