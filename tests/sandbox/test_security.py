"""The security suite: each attack is contained, the host stays healthy, no container is left behind."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from agentgym.sandbox.docker_sandbox import LABEL, DockerSandbox, SandboxConfig

pytestmark = pytest.mark.usefixtures("image", "no_leftovers")


def run(argv, **cfg):
    async def go():
        async with DockerSandbox(SandboxConfig(**cfg)) as sb:
            first = await sb.exec(argv)
            after = await sb.exec(["echo", "alive"])  # the sandbox still answers after the attack
            return first, after

    return asyncio.run(go())


def host_healthy():
    assert subprocess.run(["true"]).returncode == 0  # the host can still fork
    load = os.getloadavg()[0]
    assert load < 50, load


def test_network_egress_blocked():
    # a public address: with no network there is no route at all, and nothing leaves the container
    code = "import socket\ns=socket.socket()\ns.settimeout(3)\ns.connect(('1.1.1.1', 80))"
    r, after = run(["python3", "-c", code])
    assert r.exit_code != 0 and "Network is unreachable" in r.stderr
    ifaces, _ = run(["cat", "/proc/net/dev"])
    names = {ln.split(":")[0].strip() for ln in ifaces.stdout.splitlines()[2:]}
    assert names == {"lo"}
    assert after.stdout == "alive\n"
    host_healthy()


def test_host_files_invisible(tmp_path):
    secret = tmp_path / f"secret-{uuid.uuid4().hex}"
    secret.write_text("host only")
    r, _ = run(["sh", "-c", f"cat {secret}; ls /root; cat /etc/shadow; ls {tmp_path}"])
    assert "host only" not in r.stdout and r.exit_code != 0
    assert "No such file" in r.stderr and "Permission denied" in r.stderr
    host_name = Path("/etc/hostname").read_text().strip()
    r, _ = run(["cat", "/etc/hostname"])
    assert r.stdout.strip() != host_name


def test_fork_bomb_contained():
    t0 = time.perf_counter()
    bomb = "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass"
    r, after = run(["python3", "-c", bomb], timeout_s=3, pids=64)
    assert time.perf_counter() - t0 < 30
    assert r.timed_out or r.error, r
    assert after.stdout == "alive\n"
    host_healthy()


def test_memory_bomb_killed():
    r, after = run(["python3", "-c", "a = []\nwhile True: a.append(bytearray(10**7))"], memory_mb=128)
    assert r.exit_code == 137 and "memory" in r.error
    assert after.stdout == "alive\n"
    host_healthy()


def test_infinite_loop_timed_out():
    t0 = time.perf_counter()
    r, after = run(["python3", "-c", "while True: pass"], timeout_s=1.5)
    assert r.timed_out and "timed out" in r.error
    assert time.perf_counter() - t0 < 15
    assert after.ok


def test_gigabytes_of_output_truncated():
    r, after = run(
        ["sh", "-c", "head -c 3000000000 /dev/zero | tr '\\0' x"], max_output_bytes=65536, timeout_s=20
    )
    assert r.truncated and len(r.stdout) <= 65536 and "truncated" in r.error
    assert after.ok


def test_privileges_cannot_be_gained():
    checks = (
        "id -u; grep -E '^(CapEff|CapPrm|NoNewPrivs)' /proc/self/status; "
        "python3 -c 'import os; os.setuid(0)' 2>&1 | tail -1; "
        "touch /etc/passwd 2>&1; touch /x 2>&1; mount -t tmpfs none /mnt 2>&1; chroot / true 2>&1; "
        "command -v sudo su || echo no-sudo"
    )
    r, _ = run(["sh", "-c", checks])
    out = r.stdout
    assert out.splitlines()[0] == "1000"
    assert "CapEff:\t0000000000000000" in out and "CapPrm:\t0000000000000000" in out
    assert "NoNewPrivs:\t1" in out
    assert "PermissionError" in out  # setuid(0)
    assert "cannot touch '/etc/passwd': Permission denied" in out
    assert "cannot touch '/x': Read-only file system" in out
    assert "must be superuser to use mount" in out and "chroot: cannot change root" in out
    assert "no-sudo" in out


def test_killed_run_leaves_nothing_after_gc(docker):
    """A run killed mid-episode (SIGKILL: no atexit) leaves its container; `agentgym sandbox gc` reaps it."""
    code = (
        "import asyncio, sys\n"
        "from agentgym.sandbox.docker_sandbox import DockerSandbox\n"
        "async def main():\n"
        "    sb = DockerSandbox()\n"
        "    await sb.start()\n"
        "    print(sb.id, flush=True)\n"
        "    await sb.exec(['sleep', '60'], timeout_s=60)\n"
        "asyncio.run(main())\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    cid = proc.stdout.readline().strip()
    assert cid
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert docker.api.containers(filters={"id": cid}), "the killed run's container is still there before gc"
    out = subprocess.run([sys.executable, "-m", "agentgym", "sandbox", "gc"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert not docker.api.containers(all=True, filters={"label": f"{LABEL}=1"})


def test_sandbox_run_command_exit_codes():
    ok = subprocess.run(
        [sys.executable, "-m", "agentgym", "sandbox", "run", "--", "python3", "-c", "print(6*7)"],
        capture_output=True,
        text=True,
    )
    assert ok.returncode == 0 and ok.stdout == "42\n"
    bad = subprocess.run(
        [sys.executable, "-m", "agentgym", "sandbox", "run", "--", "sh", "-c", "exit 3"],
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 3
    slow = subprocess.run(
        [sys.executable, "-m", "agentgym", "sandbox", "run", "--timeout", "1", "--", "sleep", "9"],
        capture_output=True,
        text=True,
    )
    assert slow.returncode != 0 and "timed out" in slow.stderr


def test_clear_error_when_the_daemon_is_unreachable(monkeypatch, tmp_path):
    from agentgym.sandbox import errors

    errors.docker_client.cache_clear()
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-such.sock")
    try:
        with pytest.raises(errors.SandboxError, match="dockerd --bridge=none"):
            errors.docker_client()
        out = subprocess.run(
            [sys.executable, "-m", "agentgym", "sandbox", "run", "--", "true"], capture_output=True, text=True
        )
        assert out.returncode == 2 and "cannot reach the Docker daemon" in out.stdout + out.stderr
    finally:
        errors.docker_client.cache_clear()
