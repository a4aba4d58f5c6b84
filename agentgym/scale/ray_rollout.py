"""Scale-out of the rollout engine over Ray: rollout workers are Ray actors, the driver owns the store.

`RayRollout(env_spec, policy_spec, workers=N, concurrency_per_worker=C)` starts N `RolloutWorker`
actors, on the Ray instance already initialised in this process, else the cluster at `address`, else a
local instance it starts (and alone shuts down). Each actor builds its own envs and policy from the
picklable specs (`agentgym.scale.specs`) and plays episodes on the asyncio engine
(`agentgym.runner.EnvPool`, per-episode time-out included), C at a time.

`run(jobs, out=...)` reads the store, keeps the (task, seed) jobs whose episode key is not in it and
hands them out one episode per actor call, keeping up to 2*C calls queued on each live actor: a faster
actor takes more of the work (the shards are drawn as it goes), and each finished episode comes back
as soon as it ends. The DRIVER alone appends trajectories to the JSONL store (fsynced, one line per
episode, when its result reaches the driver), so the local engine's resume guarantee holds: kill the
driver at any point, rerun, and nothing finished is lost or duplicated (an episode that was in flight
is played again). `on_done` runs on the driver for each one, for a progress bar.

An actor that dies: its episodes that had already come back are kept, the rest go back to the front
of the queue for the live actors, with one warning in the log saying how many; with no actor left the
run stops with `RolloutError` (everything finished is in the store). An episode that raises inside a
worker stops the run with `RolloutError` naming the job, as an exception stops the local engine.
Workers never write to the store and nothing here retries an episode that raised.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import ray
from ray.exceptions import GetTimeoutError, RayActorError, RayError, RayTaskError

from agentgym.runner import EnvPool, episode_key, open_store
from agentgym.scale.specs import EnvSpec, PolicySpec
from agentgym.spec.trajectory import Trajectory

log = logging.getLogger(__name__)

Job = tuple[str, int]


class RolloutError(RuntimeError):
    """The Ray rollout cannot go on: workers would not start, all died, or an episode raised."""


class RolloutWorker:
    """One rollout worker: its own envs and policy, `concurrency` episodes at a time. A plain class
    (usable in-process); `RayRollout` runs it as an async Ray actor."""

    def __init__(
        self, env_spec: EnvSpec, policy_spec: PolicySpec, concurrency: int, episode_timeout_s: float | None
    ) -> None:
        make_policy = policy_spec.factory()
        self.policy_name = make_policy().name
        self.pool = EnvPool(env_spec.factory(), make_policy, concurrency, episode_timeout_s)

    async def ready(self) -> str:
        """The name episodes are keyed by, once the suite and model are loaded."""
        return self.policy_name

    async def play(self, task_id: str, seed: int) -> str:
        """One episode, as the trajectory's JSON (cheap to ship, validated by the driver)."""
        return (await self.pool.play(task_id, seed)).model_dump_json()

    async def close(self) -> None:
        self.pool.close()


class RayRollout:
    """N rollout actors and the driver loop; see module doc. Use as a context manager or `close()`."""

    def __init__(
        self,
        env_spec: EnvSpec,
        policy_spec: PolicySpec,
        *,
        workers: int = 2,
        concurrency_per_worker: int = 4,
        episode_timeout_s: float | None = None,
        address: str | None = None,
        cpus_per_worker: float = 1.0,
        start_timeout_s: float = 600.0,
        ray_init: dict[str, Any] | None = None,
    ) -> None:
        if workers < 1 or concurrency_per_worker < 1:
            raise ValueError(
                f"need workers >= 1 and concurrency >= 1, got {workers} and {concurrency_per_worker}"
            )
        if episode_timeout_s is not None and episode_timeout_s <= 0:
            raise ValueError(f"episode time-out must be > 0 seconds, got {episode_timeout_s}")
        self.window = 2 * concurrency_per_worker
        self._owns_ray = not ray.is_initialized()
        if self._owns_ray:
            opts: dict[str, Any] = {"include_dashboard": False, **(ray_init or {})}
            if address is not None:
                opts["address"] = address
            else:  # logical CPUs: enough that every worker is placed even on a small machine
                opts.setdefault("num_cpus", max(os.cpu_count() or 1, math.ceil(workers * cpus_per_worker)))
            ray.init(**opts)
        free = ray.available_resources().get("CPU", 0.0)
        if free < workers * cpus_per_worker:
            log.warning(
                "the Ray cluster has %g free CPUs and %d rollout worker(s) need %g: they wait for CPUs",
                free, workers, workers * cpus_per_worker,
            )  # fmt: skip
        actor = ray.remote(RolloutWorker).options(
            num_cpus=cpus_per_worker, max_concurrency=self.window, max_restarts=0, max_task_retries=0
        )
        self.actors = [
            actor.remote(env_spec, policy_spec, concurrency_per_worker, episode_timeout_s)
            for _ in range(workers)
        ]
        try:
            names = ray.get([a.ready.remote() for a in self.actors], timeout=start_timeout_s)
        except GetTimeoutError:
            self.close()
            raise RolloutError(
                f"{workers} rollout worker(s) did not start within {start_timeout_s:.0f}s: does the Ray "
                f"cluster have {workers * cpus_per_worker:g} free CPUs?"
            ) from None
        except RayError as e:
            self.close()
            raise RolloutError(f"rollout workers failed to start: {e}") from e
        self.policy_name: str = names[0]

    def run(
        self,
        jobs: Sequence[Job],
        *,
        out: str | Path,
        on_done: Callable[[Trajectory], Any] | None = None,
    ) -> list[Trajectory]:
        """Play every job not yet in `out`; returns the trajectories played now (see module doc)."""
        writer, done_keys = open_store(out)
        todo: deque[Job] = deque(
            j for j in jobs if episode_key(j[0], j[1], self.policy_name) not in done_keys
        )
        inflight: dict[ray.ObjectRef, tuple[int, Job]] = {}
        load = [0] * len(self.actors)
        alive = set(range(len(self.actors)))
        results: list[Trajectory] = []

        def finish(ref: ray.ObjectRef, job: Job) -> None:
            """Store a settled episode; a dead actor's RayActorError passes through to the caller."""
            try:
                data = ray.get(ref)
            except RayTaskError as e:
                raise RolloutError(f"episode {job[0]}/{job[1]} failed in a rollout worker: {e}") from e
            traj = Trajectory.model_validate_json(data)
            writer.append(traj)
            results.append(traj)
            if on_done is not None:
                on_done(traj)

        def settle(ref: ray.ObjectRef) -> None:
            i, job = inflight.pop(ref)
            load[i] -= 1
            try:
                finish(ref, job)
            except RayActorError as e:
                todo.appendleft(job)
                self._bury(i, e, inflight, load, alive, todo, finish)

        try:
            while todo or inflight:
                self._dispatch(todo, inflight, load, alive)
                if not inflight:
                    raise RolloutError(
                        f"no rollout worker is left alive; {len(todo)} job(s) unfinished. Finished episodes "
                        f"are in {out}: run again to resume."
                    )
                ready, rest = ray.wait(list(inflight), num_returns=1)
                if rest:  # take everything else that is ready too, without waiting
                    ready += ray.wait(rest, num_returns=len(rest), timeout=0)[0]
                for ref in ready:
                    if ref in inflight:  # not already settled by `_bury`
                        settle(ref)
        finally:
            writer.close()
        return results

    def _dispatch(
        self,
        todo: deque[Job],
        inflight: dict[ray.ObjectRef, tuple[int, Job]],
        load: list[int],
        alive: set[int],
    ) -> None:
        """Queue jobs on the least-loaded live actors, up to `window` calls each."""
        while todo and alive:
            i = min(alive, key=load.__getitem__)
            if load[i] >= self.window:
                return
            job = todo.popleft()
            inflight[self.actors[i].play.remote(*job)] = (i, job)
            load[i] += 1

    def _bury(
        self,
        i: int,
        error: RayActorError,
        inflight: dict[ray.ObjectRef, tuple[int, Job]],
        load: list[int],
        alive: set[int],
        todo: deque[Job],
        finish: Callable[[ray.ObjectRef, Job], None],
    ) -> None:
        """Actor i died: keep what it had already finished, re-queue the rest, say so once."""
        if i not in alive:
            return
        alive.discard(i)
        ray.kill(self.actors[i])  # a half-alive actor must not come back with stale work
        refs = [r for r, (a, _) in inflight.items() if a == i]
        resolved = set(ray.wait(refs, num_returns=len(refs), timeout=5.0)[0]) if refs else set()
        requeued = 1  # the job whose call reported the death
        for ref in refs:
            _, job = inflight.pop(ref)
            if ref in resolved:
                try:
                    finish(ref, job)  # it came back before the actor died: keep it
                    continue
                except RayActorError:
                    pass
            todo.appendleft(job)
            requeued += 1
        load[i] = 0
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        log.warning(
            "rollout worker %d died (%s): re-queued its %d unfinished job(s) on the %d live worker(s)",
            i, reason, requeued, len(alive),
        )  # fmt: skip

    def close(self) -> None:
        """Stop the actors (and the Ray instance, if this started it)."""
        for a in self.actors if hasattr(self, "actors") else []:
            with contextlib.suppress(RayError):  # dead already, or stuck: killed next either way
                ray.get(a.close.remote(), timeout=10)
            ray.kill(a)
        self.actors = []
        if self._owns_ray and ray.is_initialized():
            ray.shutdown()

    def __enter__(self) -> RayRollout:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def run_episodes_ray(
    env_spec: EnvSpec,
    policy_spec: PolicySpec,
    jobs: Sequence[Job],
    *,
    out: str | Path,
    workers: int = 2,
    concurrency_per_worker: int = 4,
    episode_timeout_s: float | None = None,
    address: str | None = None,
    on_done: Callable[[Trajectory], Any] | None = None,
    **options: Any,
) -> list[Trajectory]:
    """`run_episodes` over Ray: start the actors, play the jobs not yet in `out`, stop the actors."""
    with RayRollout(
        env_spec,
        policy_spec,
        workers=workers,
        concurrency_per_worker=concurrency_per_worker,
        episode_timeout_s=episode_timeout_s,
        address=address,
        **options,
    ) as rollout:
        return rollout.run(jobs, out=out, on_done=on_done)
