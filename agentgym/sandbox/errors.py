"""Sandbox errors, and the Docker client with a clear error when Docker is missing or down."""

from __future__ import annotations

from functools import lru_cache
from typing import Any


class SandboxError(RuntimeError):
    """A sandbox could not be built, started or used (Docker missing, daemon down, container died)."""


@lru_cache(maxsize=1)
def docker_client() -> Any:
    """The Docker SDK client for this machine's daemon (checked with a ping), or a SandboxError saying
    what to do."""
    try:
        import docker
        from docker.errors import DockerException
    except ImportError as e:  # pragma: no cover - a dependency
        raise SandboxError("the docker Python SDK is not installed (pip install docker)") from e
    try:
        client = docker.from_env(timeout=30)
        client.ping()
    except DockerException as e:
        raise SandboxError(
            "cannot reach the Docker daemon: install the engine (apt-get install docker.io) and start it "
            f"(dockerd --bridge=none --iptables=false); DOCKER_HOST={_host()} ({e})"
        ) from None
    return client


def _host() -> str:
    import os

    return os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
