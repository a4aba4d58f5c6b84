"""Shared fixtures. Tests run against the real starter world and suite in tools/ and tasks/."""

from __future__ import annotations

import pytest

from agentgym.suites import load_suite


@pytest.fixture(scope="session")
def starter():
    return load_suite("starter")
