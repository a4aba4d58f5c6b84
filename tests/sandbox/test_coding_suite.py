"""The coding suite, run for real: every oracle passes its hidden tests in the sandbox, doing
nothing scores below 0.5, and a run killed mid-episode leaves nothing that `gc` does not remove."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter

import pytest

from agentgym.sandbox.docker_sandbox import LABEL
from agentgym.suites import load_suite
from agentgym.suites.validate import validate_suite

pytestmark = pytest.mark.usefixtures("image")


def test_every_coding_task_is_solvable_and_graded_by_real_tests():
    suite = load_suite("coding")
    assert len(suite) >= 30
    assert Counter(t.tags[1] for t in suite) == {"implement": 18, "fix": 9, "module": 5}
    checks = validate_suite(suite)
    bad = [(c.task_id, c.problems) for c in checks if not c.ok]
    assert not bad, bad
    assert all(c.oracle == 1.0 for c in checks) and max(c.noop for c in checks) < 0.5


def test_run_killed_mid_episode_then_gc_leaves_zero_containers(docker, tmp_path):
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "agentgym",
            "run",
            "--suite",
            "coding",
            "--model",
            "oracle",
            "--out",
            str(tmp_path),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    mine = {"label": f"{LABEL}.pid={proc.pid}"}
    deadline = time.time() + 60
    while not docker.api.containers(filters=mine) and time.time() < deadline:
        time.sleep(0.05)
    assert docker.api.containers(filters=mine), "the run never started a sandbox"
    os.killpg(proc.pid, signal.SIGKILL)  # no atexit, no cleanup: a crash
    proc.wait()
    assert docker.api.containers(all=True, filters=mine), "the killed episode's container is left behind"
    out = subprocess.run([sys.executable, "-m", "agentgym", "sandbox", "gc"], capture_output=True, text=True)
    assert out.returncode == 0 and "removed" in out.stdout
    assert docker.api.containers(all=True, filters={"label": f"{LABEL}=1"}) == []
