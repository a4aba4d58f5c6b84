"""Fixtures for agent and task generation: the real repository, a catalog over it, a world."""

from __future__ import annotations

import pytest

from agentgym.agents import Catalog
from agentgym.repository.store import ToolRepository


@pytest.fixture(scope="session")
def repo():
    return ToolRepository.load()


@pytest.fixture(scope="session")
def catalog(repo):
    return Catalog(repo)


@pytest.fixture
def drawn_tasks(starter):
    """Tasks (copies of a starter task) spread over given agents, with distinct instructions."""
    base = next(iter(starter))
    words = [
        "alpha",
        "bravo",
        "charlie",
        "delta",
        "echo",
        "foxtrot",
        "golf",
        "hotel",
        "india",
        "juliett",
        "kilo",
        "lima",
        "mike",
    ]

    def make(agents):
        out = []
        for i, aid in enumerate(sorted(agents)):
            for k in range(3):
                text = f"{words[i % 13]} {words[(i * 3 + k) % 13]} {words[(i * 7 + k * 5) % 13]} request number {i * 3 + k} {aid}"
                out.append(base.model_copy(update={"id": f"{aid}.{k}", "agent_id": aid, "instruction": text}))
        return out

    return make
