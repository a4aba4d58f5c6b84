"""Every starter task is solvable and gradable: oracle 1.0, do-nothing < 0.5, also under faults."""

from __future__ import annotations

import pytest

from agentgym.suites import SuiteError, TaskSuite, load_suite
from agentgym.suites.validate import validate_suite
from agentgym.world.faults import FaultConfig, FaultRates

SUITE = load_suite("starter")
FAULTS = FaultConfig(
    default=FaultRates(timeout=0.15, rate_limited=0.1, server_error=0.05, partial_result=0.3, page_size=4)
)


def test_suite_size_and_coverage():
    assert len(SUITE) >= 40
    domains = {t.tags[0] for t in SUITE}
    assert {"calendar", "shop", "notes", "messaging"} <= domains
    assert {t.difficulty for t in SUITE} == {"simple", "moderate", "complex"}
    assert sum(bool(t.user.follow_ups) for t in SUITE) >= 4  # multi-turn tasks
    assert len(SUITE.world.domains) >= 4
    assert all(6 <= len(d.tools) <= 12 for d in SUITE.world.domains.values())


@pytest.mark.parametrize("fmt", ["hermes", "glm_xml", "pythonic", "json"])
def test_every_task_oracle_one_noop_below_half(fmt):
    checks = validate_suite(SUITE, fmt=fmt)
    bad = [(c.task_id, c.problems) for c in checks if not c.ok]
    assert not bad
    assert all(c.oracle == 1.0 and c.noop < 0.5 for c in checks)


def test_every_task_survives_injected_faults():
    for seed in (0, 1):
        bad = [(c.task_id, c.problems) for c in validate_suite(SUITE, faults=FAULTS, seed=seed) if not c.ok]
        assert not bad


def test_inconsistent_suite_is_refused():
    agent = next(iter(SUITE.agents.values()))
    bad_agent = agent.model_copy(update={"tools": (*agent.tools, "nope__tool")})
    with pytest.raises(SuiteError, match="unknown tool"):
        TaskSuite("x", SUITE.world, {agent.id: bad_agent}, {})
    task = next(t for t in SUITE if t.agent_id == agent.id)
    other = next(a for a in SUITE.agents.values() if not set(a.tools) & set(agent.tools))
    with pytest.raises(SuiteError, match="lacks"):
        TaskSuite("x", SUITE.world, {agent.id: other.model_copy(update={"id": agent.id})}, {task.id: task})
