"""Sandbox tests run against the real Docker daemon and the locally built image.

They are never skipped in CI: `.ci/run` installs docker.io, starts `dockerd --bridge=none
--iptables=false` and builds the image. A developer machine without Docker can opt out with
AGENTGYM_SKIP_DOCKER=1 (CI never sets it); otherwise a missing daemon fails loudly.
"""

from __future__ import annotations

import os

import pytest

from agentgym.sandbox.docker_sandbox import LABEL


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/sandbox/" in str(item.fspath):
            item.add_marker(pytest.mark.docker)


@pytest.fixture(scope="session")
def image():
    if os.environ.get("AGENTGYM_SKIP_DOCKER") == "1":
        pytest.skip("AGENTGYM_SKIP_DOCKER=1")
    from agentgym.sandbox.image import build_image

    tag, _, _ = build_image()
    return tag


@pytest.fixture(scope="session")
def docker(image):
    from agentgym.sandbox.errors import docker_client

    return docker_client()


def ours(docker) -> list[dict]:
    return docker.api.containers(all=True, filters={"label": f"{LABEL}.pid={os.getpid()}"})


@pytest.fixture
def no_leftovers(docker):
    """After the test, none of this process's sandbox containers remains."""
    yield
    left = ours(docker)
    assert not left, f"containers left behind: {[c['Id'][:12] for c in left]}"
