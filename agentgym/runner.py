"""Run episodes: one policy, one env, one task at a time, or many concurrently.

`run_episode` plays one task to its end and returns the `Trajectory`. `run_episodes` plays a list
of (task, seed) jobs with bounded concurrency (one env per worker), appends each finished
trajectory to a JSONL file as soon as it ends (fsynced, so an interrupted run loses nothing that
finished), and skips episodes whose key is already in that file (resume). Progress goes to an
optional callback.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import orjson

from agentgym.env.tool_env import ToolUseEnv, decode_observation
from agentgym.policies.base import Policy
from agentgym.spec.jsonl import JsonlAppender
from agentgym.spec.trajectory import Trajectory


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


async def run_episodes(
    make_env: Callable[[], ToolUseEnv],
    make_policy: Callable[[], Policy],
    jobs: Sequence[tuple[str, int]],
    *,
    out: str | Path | None = None,
    concurrency: int = 4,
    on_done: Callable[[Trajectory], Any] | None = None,
) -> list[Trajectory]:
    """Play every (task_id, seed) job; see module doc. Returns the trajectories run now."""
    done_keys: set[str] = set()
    writer = None
    if out is not None:
        out = Path(out)
        _repair_tail(out)
        done_keys = finished_keys(out)
        writer = JsonlAppender(out)
    probe = make_policy().name
    todo = [j for j in jobs if episode_key(j[0], j[1], probe) not in done_keys]
    queue: asyncio.Queue[tuple[str, int]] = asyncio.Queue()
    for j in todo:
        queue.put_nowait(j)
    results: list[Trajectory] = []

    async def worker() -> None:
        env, policy = make_env(), make_policy()
        try:
            while True:
                try:
                    task_id, seed = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                traj = await run_episode(env, policy, task_id, seed)
                results.append(traj)
                if writer is not None:
                    writer.append(traj)
                if on_done is not None:
                    on_done(traj)
        finally:
            env.close()

    try:
        await asyncio.gather(*(worker() for _ in range(max(1, min(concurrency, len(todo))))))
    finally:
        if writer is not None:
            writer.close()
    return results
