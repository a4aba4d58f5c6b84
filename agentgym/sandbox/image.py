"""The sandbox image, built locally: debootstrap a Debian root, add our runner and user, docker import.

No registry is reachable, so the image is made from Debian packages: `debootstrap --variant=minbase
--include=python3,nodejs bookworm` into a folder (the mirror is the machine's own apt source),
then a non-root user (`sandbox`, uid 1000) and an empty `/work`; `tar | docker import` adds the
in-container runner (`runner.py` → `/opt/agentgym/run.py`) and sets `USER`/`WORKDIR`. The tag is
`agentgym-sandbox:<hash>` where the hash covers the recipe (suite, packages, user, runner source):
an image with that tag is reused, a changed recipe builds a new one. The debootstrapped root is
cached under `~/.cache/agentgym/rootfs/<base hash>` (suite, packages, user), so a new runner or a
rebuild after `docker image rm` takes seconds.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from agentgym.sandbox.errors import SandboxError, docker_client

SUITE = "bookworm"
PACKAGES = ("python3", "nodejs")
USER_ID = 1000
REPO = "agentgym-sandbox"
RUNNER = Path(__file__).with_name("runner.py")
DEFAULT_MIRROR = "http://deb.debian.org/debian"


def _digest(*parts: str) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(part.encode() + b"\0")
    return h.hexdigest()[:12]


def base_hash() -> str:
    """The debootstrapped root: suite, packages, user (cached on disk under this hash)."""
    return _digest(SUITE, *PACKAGES, str(USER_ID), "base-v1")


def recipe_hash() -> str:
    """The image: the base root plus the runner's source."""
    return _digest(base_hash(), RUNNER.read_text(encoding="utf-8"))


def image_tag() -> str:
    return f"{REPO}:{recipe_hash()}"


def mirror() -> str:
    """The Debian mirror of this machine's apt sources (deb822 or one-line format)."""
    for path in (Path("/etc/apt/sources.list.d/debian.sources"), Path("/etc/apt/sources.list")):
        if path.exists():
            m = re.search(r"(?:URIs:|deb)\s+(https?://\S+/debian)\b", path.read_text(encoding="utf-8"))
            if m:
                return m.group(1)
    return DEFAULT_MIRROR


def _cache_dir() -> Path:
    root = Path(os.environ.get("AGENTGYM_CACHE", Path.home() / ".cache" / "agentgym"))
    return root / "rootfs" / base_hash()


def _debootstrap(dest: Path, log: Callable[[str], None]) -> None:
    if shutil.which("debootstrap") is None:
        raise SandboxError(
            "debootstrap is not installed (apt-get install debootstrap); it builds the sandbox image"
        )
    tmp = dest.with_name(dest.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.parent.mkdir(parents=True, exist_ok=True)
    cmd = ["debootstrap", "--variant=minbase", f"--include={','.join(PACKAGES)}", SUITE, str(tmp), mirror()]
    log(f"debootstrap {SUITE} with {', '.join(PACKAGES)} from {cmd[-1]} (about a minute)")
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SandboxError(
            f"debootstrap failed ({proc.returncode}): {proc.stderr.strip()[-800:] or proc.stdout[-800:]}"
        )
    _customise(tmp)
    tmp.rename(dest)  # atomic: an interrupted build never leaves a half root behind


def _customise(root: Path) -> None:
    with open(root / "etc/passwd", "a", encoding="utf-8") as f:
        f.write(f"sandbox:x:{USER_ID}:{USER_ID}:agentgym sandbox:/work:/bin/sh\n")
    with open(root / "etc/group", "a", encoding="utf-8") as f:
        f.write(f"sandbox:x:{USER_ID}:\n")
    (root / "work").mkdir(exist_ok=True)
    os.chown(root / "work", USER_ID, USER_ID)
    for junk in ("var/cache/apt/archives", "var/lib/apt/lists", "usr/share/doc", "usr/share/man"):
        shutil.rmtree(root / junk, ignore_errors=True)
        (root / junk).mkdir(parents=True, exist_ok=True)


def image_exists(tag: str | None = None) -> bool:
    from docker.errors import ImageNotFound

    try:
        docker_client().images.get(tag or image_tag())
        return True
    except ImageNotFound:
        return False


def build_image(force: bool = False, log: Callable[[str], None] = lambda s: None) -> tuple[str, float, bool]:
    """(tag, seconds, built?): the sandbox image, built only when its recipe's tag is missing."""
    tag = image_tag()
    client = docker_client()
    if not force and image_exists(tag):
        return tag, 0.0, False
    t0 = time.perf_counter()
    root = _cache_dir()
    if force or not root.exists():
        shutil.rmtree(root, ignore_errors=True)
        _debootstrap(root, log)
    log(f"importing {root} as {tag}")
    with tempfile.TemporaryDirectory() as tmp:
        archive = Path(tmp) / "rootfs.tar"
        with tarfile.open(archive, "w") as tar:
            for entry in sorted(os.listdir(root)):
                tar.add(root / entry, arcname=entry)
            tar.add(RUNNER, arcname="opt/agentgym/run.py")
        changes = [
            f"USER {USER_ID}:{USER_ID}",
            "WORKDIR /work",
            "ENV HOME=/work LANG=C.UTF-8 PYTHONDONTWRITEBYTECODE=1",
        ]
        repo, _, version = tag.partition(":")
        client.api.import_image_from_file(str(archive), repository=repo, tag=version, changes=changes)
    if not image_exists(tag):
        raise SandboxError(f"docker import did not produce {tag}")
    return tag, time.perf_counter() - t0, True
