"""Ray scale-out on a local Ray instance: rollout actors play the oracle, the driver alone writes the
store; each episode lands exactly once whatever dies (an actor, every actor, the driver) and rewards
equal the local asyncio engine's."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections import Counter

import pytest
import ray  # a core dependency: a missing install must fail here, not skip

from agentgym.env.tool_env import ToolUseEnv
from agentgym.policies import OraclePolicy
from agentgym.runner import run_episodes
from agentgym.scale import EnvSpec, PolicySpec
from agentgym.scale.ray_rollout import RayRollout, RolloutError, run_episodes_ray
from agentgym.spec.trajectory import Trajectory

pytestmark = pytest.mark.slow

ENV, ORACLE = EnvSpec(suite="starter"), PolicySpec(model="oracle")
# small CPU shares: the module's rollout keeps its actors while other tests start theirs
CPU = {"cpus_per_worker": 0.25, "start_timeout_s": 120}


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, object_store_memory=128 * 1024**2)
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


@pytest.fixture(scope="module")
def rollout(local_ray):
    with RayRollout(ENV, ORACLE, workers=2, concurrency_per_worker=3, **CPU) as r:
        yield r


@pytest.fixture(scope="module")
def jobs(starter):
    return [(t, 0) for t in sorted(starter.tasks)[:20]]


def _ids(path):
    return [json.loads(line)["id"] for line in path.read_text().splitlines()]


def _exactly_once(path, jobs):
    ids = _ids(path)
    assert Counter(ids) == Counter(f"{t}/{s}/oracle" for t, s in jobs), "each job exactly once"


def test_two_workers_match_the_local_engine(rollout, starter, jobs, tmp_path):
    seen = []
    trajs = rollout.run(jobs, out=tmp_path / "ray.jsonl", on_done=seen.append)
    assert len(trajs) == len(seen) == 20
    _exactly_once(tmp_path / "ray.jsonl", jobs)
    local = asyncio.run(
        run_episodes(lambda: ToolUseEnv(starter), OraclePolicy, jobs, out=tmp_path / "local.jsonl")
    )
    assert {t.id: t.reward for t in trajs} == {t.id: t.reward for t in local}
    assert {t.id: t.messages for t in trajs} == {t.id: t.messages for t in local}


def test_resume_skips_finished_episodes(rollout, jobs, tmp_path):
    out = tmp_path / "t.jsonl"
    first = rollout.run(jobs[:8], out=out)
    head = out.read_bytes()
    rest = rollout.run(jobs, out=out)
    assert len(first) == 8 and len(rest) == 12 and out.read_bytes().startswith(head)
    _exactly_once(out, jobs)
    assert rollout.run(jobs, out=out) == [] and len(_ids(out)) == 20


def test_an_episode_that_raises_stops_the_run_with_its_job(rollout, tmp_path):
    with pytest.raises(RolloutError, match="no-such-task/0"):
        rollout.run([("no-such-task", 0)], out=tmp_path / "t.jsonl")


def test_a_killed_actor_has_its_jobs_requeued(local_ray, jobs, tmp_path, caplog):
    out, more, seen = tmp_path / "t.jsonl", [(t, s) for t, _ in jobs for s in (0, 1)], []
    with RayRollout(ENV, ORACLE, workers=2, concurrency_per_worker=2, **CPU) as r:

        def kill_first(traj):
            seen.append(traj)
            if len(seen) == 3:
                ray.kill(r.actors[0])

        with caplog.at_level(logging.WARNING, logger="agentgym.scale.ray_rollout"):
            r.run(more, out=out, on_done=kill_first)
    _exactly_once(out, more)
    assert any("rollout worker 0 died" in m and "re-queued" in m for m in caplog.messages), caplog.messages


def test_all_actors_dead_stops_cleanly_and_a_rerun_finishes(local_ray, jobs, tmp_path):
    out, seen = tmp_path / "t.jsonl", []
    with RayRollout(ENV, ORACLE, workers=2, concurrency_per_worker=1, **CPU) as r:

        def kill_all(traj):
            seen.append(traj)
            if len(seen) == 3:
                for a in r.actors:
                    ray.kill(a)

        with pytest.raises(RolloutError, match="no rollout worker is left alive"):
            r.run(jobs, out=out, on_done=kill_all)
    kept = _ids(out)
    assert 3 <= len(kept) < 20 and len(set(kept)) == len(kept)
    run_episodes_ray(ENV, ORACLE, jobs, out=out, workers=1, **CPU)
    _exactly_once(out, jobs)
    assert _ids(out)[: len(kept)] == kept


DRIVER = """
import sys, time
from agentgym.scale import EnvSpec, PolicySpec
from agentgym.scale.ray_rollout import run_episodes_ray
jobs = [(t, s) for t in sys.argv[3].split(",") for s in range(3)]
run_episodes_ray(EnvSpec(suite="starter"), PolicySpec(model="oracle"), jobs, out=sys.argv[2], workers=2,
                 cpus_per_worker=0.25, start_timeout_s=120, address=sys.argv[1],
                 on_done=lambda t: time.sleep(0.05))  # a slow driver, so the kill lands mid-run
"""


def test_killing_the_driver_loses_and_duplicates_nothing(local_ray, starter, tmp_path):
    out, tasks = tmp_path / "t.jsonl", sorted(starter.tasks)[:40]
    jobs = [(t, s) for t in tasks for s in range(3)]
    proc = subprocess.Popen([sys.executable, "-c", DRIVER, local_ray, str(out), ",".join(tasks)])
    try:
        deadline = time.monotonic() + 120
        while not (out.exists() and out.read_text().count("\n") >= 15):
            assert proc.poll() is None and time.monotonic() < deadline, "driver ended before the kill"
            time.sleep(0.01)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    finally:
        proc.kill()
    before = [line for line in out.read_text().split("\n")[:-1]]  # complete lines only
    assert 15 <= len(before) < len(jobs)
    run_episodes_ray(ENV, ORACLE, jobs, out=out, workers=2, concurrency_per_worker=4, **CPU)
    _exactly_once(out, jobs)
    assert out.read_text().split("\n")[: len(before)] == before


def test_workers_that_cannot_start_say_why(local_ray, tmp_path):
    with pytest.raises(RolloutError, match=r"failed to start(.|\n)*no-such-suite"):
        RayRollout(EnvSpec(suite="no-such-suite"), ORACLE, workers=1, **CPU)
    with pytest.raises(ValueError, match="workers >= 1"):
        RayRollout(ENV, ORACLE, workers=0)


def test_rollout_command_on_ray_workers(local_ray, tmp_path):
    from typer.testing import CliRunner

    from agentgym.cli.main import app

    # one worker: the module's rollout still holds part of the two CPUs of this local instance
    args = ["rollout", "--suite", "starter", "--model", "oracle", "--n", "2", "--sample", "4"]
    args += ["--ray-workers", "1", "--concurrency", "2", "--timeout", "30", "--out", str(tmp_path)]
    first = CliRunner().invoke(app, args)
    assert first.exit_code == 0, first.output
    assert "pass rate 100% over 8 episodes" in first.output
    lines = (tmp_path / "trajectories.jsonl").read_text().splitlines()
    assert len(lines) == 8 and len(set(_ids(tmp_path / "trajectories.jsonl"))) == 8
    again = CliRunner().invoke(app, args)
    assert again.exit_code == 0 and (tmp_path / "trajectories.jsonl").read_text().splitlines() == lines


async def test_worker_cuts_episodes_at_its_timeout(monkeypatch):
    """The worker class in-process (no Ray): the time-out reaches its pool."""
    from agentgym.scale.ray_rollout import RolloutWorker
    from agentgym.scale.specs import POLICIES

    class Stalls(OraclePolicy):
        async def act(self, observation):
            await asyncio.sleep(60)

    monkeypatch.setitem(POLICIES, "stalls", lambda spec: Stalls)
    worker = RolloutWorker(ENV, PolicySpec(model="stalls"), concurrency=2, episode_timeout_s=0.2)
    assert await worker.ready() == "oracle"
    out = await asyncio.gather(*(worker.play(t, 0) for t in ("calendar-dentist-time", "calendar-create-gym")))
    await worker.close()
    assert [Trajectory.model_validate_json(o).end_reason for o in out] == ["timeout", "timeout"]
