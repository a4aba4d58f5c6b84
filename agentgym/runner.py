"""Run episodes: one policy, one env, one task at a time, or many concurrently.

`run_episode` plays one task to its end and returns the `Trajectory`. `run_episode_with_timeout`
does the same under a wall-clock limit: an episode still running at the limit is cancelled and
returned as what the env had accumulated, marked `truncated=True`, `end_reason="timeout"`, not graded
(no rubric, reward 0: an agent that cannot finish in time has not done the task). The limit acts at
the episode's await points (model calls, tool I/O), so a step that never yields is not cut midway;
a model still generating for a cut episode goes on in its own thread. `EnvPool` holds up
to `size` (env, policy) pairs, each playing one episode at a time, and replaces a pair whose episode
timed out (a cancelled env or policy may be left mid-call, so it is closed and never reused).

`run_episodes` plays a list of (task, seed) jobs with bounded concurrency through an `EnvPool`,
appends each finished trajectory to a JSONL file as soon as it ends (written at once, so a killed run
loses nothing that finished; fsynced in groups every ~50 ms, so a crash of the machine can lose the
last such window, `JsonlAppender`), and skips episodes whose key is already in that file (resume).
A timed-out episode is a finished one: it is written and counted like any other, and resume does
not run it again (rerunning it would make a run's outcome depend on how often it was restarted);
delete its line to retry it. Progress goes to an optional callback. The Ray driver
(`agentgym.scale`) reuses `EnvPool`, `finished_keys` and `open_store` so both engines keep the same
store and resume rules.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import orjson

from agentgym.env.tool_env import ToolUseEnv, decode_observation
from agentgym.policies.base import Policy
from agentgym.spec.jsonl import JsonlAppender
from agentgym.spec.trajectory import Trajectory

log = logging.getLogger(__name__)

TIMEOUT = "timeout"
"""`end_reason` of an episode cut off by the per-episode wall-clock limit."""


def episode_key(task_id: str, seed: int, policy: str) -> str:
    return f"{task_id}/{seed}/{policy}"


async def run_episode(env: ToolUseEnv, policy: Policy, task_id: str, seed: int) -> Trajectory:
    """Play `task_id` with `policy` until the episode ends."""
    obs, info = await env.areset(seed=seed, options={"task_id": task_id})
    policy.start(env.task, decode_observation(obs), info["tools"])  # type: ignore[arg-type]
    observation = decode_observation(obs)
    while True:
        action = await policy.act(observation)
        obs, _, terminated, truncated, _ = await env.astep(action)
        observation = decode_observation(obs)
        if terminated or truncated:
            return env.trajectory(policy=policy.name, episode_id=episode_key(task_id, seed, policy.name))


async def run_episode_with_timeout(
    env: ToolUseEnv, policy: Policy, task_id: str, seed: int, timeout_s: float | None
) -> Trajectory:
    """`run_episode` under a wall-clock limit (None: no limit); see module doc for a time-out's record.
    After a time-out `env` and `policy` are mid-episode: do not reuse them."""
    if timeout_s is None:
        return await run_episode(env, policy, task_id, seed)
    if timeout_s <= 0:
        raise ValueError(f"episode time-out must be > 0 seconds, got {timeout_s}")
    scope = asyncio.timeout(timeout_s)
    try:
        async with scope:
            return await run_episode(env, policy, task_id, seed)
    except TimeoutError:
        if not scope.expired():
            raise  # a TimeoutError raised by the episode itself, not our limit
    return _timed_out(env, policy.name, task_id, seed, timeout_s)


def _timed_out(env: ToolUseEnv, policy: str, task_id: str, seed: int, timeout_s: float) -> Trajectory:
    key = episode_key(task_id, seed, policy)
    started = not env.done and env.task is not None and env.task.id == task_id
    if started:
        traj = env.trajectory(policy=policy, episode_id=key)
    else:  # cut during reset: nothing was played
        task = env.suite.tasks[task_id]
        traj = Trajectory(
            id=key, task_id=task_id, agent_id=task.agent_id, seed=None, policy=policy,
            tools=(), messages=(), turns=(), versions={"suite": env.suite.name},
        )  # fmt: skip
    return traj.model_copy(
        update={
            "terminated": False,
            "truncated": True,
            "end_reason": TIMEOUT,
            "metrics": {**traj.metrics, "timeout_s": float(timeout_s)},
        }
    )


class EnvPool:
    """Up to `size` (env, policy) pairs made on demand; `play` runs one episode on a free pair."""

    def __init__(
        self,
        make_env: Callable[[], ToolUseEnv],
        make_policy: Callable[[], Policy],
        size: int,
        episode_timeout_s: float | None = None,
    ) -> None:
        if size < 1:
            raise ValueError(f"pool size must be >= 1, got {size}")
        if episode_timeout_s is not None and episode_timeout_s <= 0:
            raise ValueError(f"episode time-out must be > 0 seconds, got {episode_timeout_s}")
        self.make_env, self.make_policy = make_env, make_policy
        self.timeout_s = episode_timeout_s
        self._slots = asyncio.Semaphore(size)
        self._free: list[tuple[ToolUseEnv, Policy]] = []
        self._envs: list[ToolUseEnv] = []  # every env made and not yet closed

    async def play(self, task_id: str, seed: int) -> Trajectory:
        async with self._slots:
            env, policy = self._free.pop() if self._free else self._make()
            # an episode that raises leaves its pair out of `_free`; `close` still closes its env
            traj = await run_episode_with_timeout(env, policy, task_id, seed, self.timeout_s)
            if traj.end_reason == TIMEOUT:
                await self._discard(env)
            else:
                self._free.append((env, policy))
            return traj

    def _make(self) -> tuple[ToolUseEnv, Policy]:
        env = self.make_env()
        self._envs.append(env)
        return env, self.make_policy()

    async def _discard(self, env: ToolUseEnv) -> None:
        """Close an env left mid-episode, off the event loop and bounded, so a stuck backend cannot
        stall the other episodes."""
        self._envs.remove(env)
        try:
            await asyncio.wait_for(asyncio.to_thread(env.close), timeout=self.timeout_s or 30.0)
        except Exception as e:  # the env is dropped either way; say so instead of failing the run
            log.warning("closing an env after a cut episode failed: %s: %s", type(e).__name__, e)

    def close(self) -> None:
        for env in self._envs:
            env.close()
        self._envs.clear()
        self._free.clear()


def finished_keys(path: str | Path) -> set[str]:
    """Keys of the episodes already in a trajectory file (a torn last line is ignored)."""
    p = Path(path)
    if not p.exists():
        return set()
    keys = set()
    with open(p, "rb") as f:
        for line in f:
            try:
                keys.add(orjson.loads(line)["id"])
            except (orjson.JSONDecodeError, KeyError, TypeError):
                continue  # a line cut by a crash: that episode will be run again
    return keys


def _repair_tail(path: Path) -> None:
    """Drop a partial last line left by a crash, so appends start on a fresh line."""
    if not path.exists() or path.stat().st_size == 0:
        return
    with open(path, "rb+") as f:
        f.seek(-1, 2)
        if f.read(1) == b"\n":
            return
        f.seek(0)
        data = f.read()
        cut = data.rfind(b"\n") + 1
        f.truncate(cut)


def open_store(path: str | Path) -> tuple[JsonlAppender, set[str]]:
    """Open a trajectory file for appending after repairing a torn tail; returns it and its keys."""
    p = Path(path)
    _repair_tail(p)
    return JsonlAppender(p), finished_keys(p)


async def run_episodes(
    make_env: Callable[[], ToolUseEnv],
    make_policy: Callable[[], Policy],
    jobs: Sequence[tuple[str, int]],
    *,
    out: str | Path | None = None,
    concurrency: int = 4,
    on_done: Callable[[Trajectory], Any] | None = None,
    episode_timeout_s: float | None = None,
) -> list[Trajectory]:
    """Play every (task_id, seed) job; see module doc. Returns the trajectories run now, in the order
    they finished (which follows timing, not `jobs`): match them to jobs by `task_id`/`seed`."""
    done_keys: set[str] = set()
    writer = None
    if out is not None:
        writer, done_keys = open_store(out)
    probe = make_policy().name
    todo = [j for j in jobs if episode_key(j[0], j[1], probe) not in done_keys]
    queue: asyncio.Queue[tuple[str, int]] = asyncio.Queue()
    for j in todo:
        queue.put_nowait(j)
    results: list[Trajectory] = []
    workers = max(1, min(concurrency, len(todo)))
    pool = EnvPool(make_env, make_policy, workers, episode_timeout_s)

    async def worker() -> None:
        while True:
            try:
                task_id, seed = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            traj = await pool.play(task_id, seed)
            results.append(traj)
            if writer is not None:
                writer.append(traj)
            if on_done is not None:
                on_done(traj)

    try:
        await asyncio.gather(*(worker() for _ in range(workers)))
    finally:
        pool.close()
        if writer is not None:
            writer.close()
    return results
