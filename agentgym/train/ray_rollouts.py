"""GRPO rollouts on Ray actors: each step the actors load the current weights and play a share of the episodes.

In: `RayPolicyRollouts(workers, model=, lora=, suite=)` starts `workers` `PolicyRolloutWorker` actors
on the Ray instance already initialised in this process (else a local one it starts and alone shuts
down). Each actor loads the policy model itself (`grpo.load_policy_model(model)`, wrapped with the
same LoRA config when there is one) and holds its own copy of the suite (a suite name is loaded
there; a `TaskSuite` object is pickled to it).

`play(module, version, jobs, sampling, max_turns, budget)`: the driver puts the weights in the object store
once (`ray.put`) and every actor reads them from there before playing its share of the (task, seed)
jobs (interleaved, so a group's episodes spread over the actors). The first call ships the whole
state dict, so an actor's weights are exactly the trainer's whatever it loaded; later calls ship
only the trainable tensors (the rest never change). Each actor tags every turn it played with
`version` and returns the trajectories as JSON (token ids and sampler logprobs included); the driver
validates them and returns them in job order (each actor answers in the order of its share). Scoring stays on the driver (the reward mix may hold
models of its own).

An actor that dies or an episode that raises stops the step with `RolloutError` (from
`agentgym.scale.ray_rollout`); nothing is retried.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Sequence
from typing import Any

import ray
import torch
from ray.exceptions import GetTimeoutError, RayError

from agentgym.env import EnvConfig, ToolUseEnv
from agentgym.models.base import SamplingParams
from agentgym.policies import ModelPolicy
from agentgym.runner import episode_key, run_episodes
from agentgym.scale.ray_rollout import RolloutError
from agentgym.spec.trajectory import Trajectory

Job = tuple[str, int]


class PolicyRolloutWorker:
    """One actor: a copy of the policy and of the suite (a plain class, usable in-process too)."""

    def __init__(self, model: str, lora: dict[str, Any] | None, suite: Any, threads: int | None) -> None:
        from agentgym.suites import load_suite
        from agentgym.train.grpo import load_policy_model

        self.chat = load_policy_model(model, threads)
        if lora is not None:
            from agentgym.train.lora import LoraSettings, with_lora

            self.chat.model = with_lora(self.chat.model, LoraSettings.model_validate(lora)).eval()
        self.suite = load_suite(suite) if isinstance(suite, str) else suite
        self.version: int | None = None

    async def ready(self) -> str:
        return self.chat.name

    async def play(
        self,
        weights: dict[str, torch.Tensor],
        version: int,
        jobs: Sequence[Job],
        sampling: SamplingParams,
        max_turns: int,
        budget: int | None = None,
    ) -> list[str]:
        if version != self.version:
            with self.chat._lock:  # no generation may see half-loaded weights
                self.chat.model.load_state_dict(weights, strict=False)
            self.version = version
        name = f"policy@{version}"
        trajs = await run_episodes(
            lambda: ToolUseEnv(self.suite, config=EnvConfig(max_turns=max_turns, token_budget=budget)),
            lambda: ModelPolicy(self.chat, sampling, name=name, token_budget=budget),
            list(jobs),
            concurrency=max(1, len(jobs)),
        )
        by_key = {tr.id: tr for tr in trajs}
        return [
            _tag(by_key[episode_key(task_id, seed, name)], version).model_dump_json()
            for task_id, seed in jobs
        ]


def _tag(tr: Trajectory, version: int) -> Trajectory:
    return tr.model_copy(
        update={"turns": tuple(t.model_copy(update={"policy_version": version}) for t in tr.turns)}
    )


class RayPolicyRollouts:
    """The trainer's Ray actors; see module doc. `close()` (or use as a context manager) when done."""

    def __init__(
        self,
        workers: int,
        *,
        model: str,
        lora: dict[str, Any] | None,
        suite: Any,
        threads: int | None = None,
        cpus_per_worker: float = 1.0,
        start_timeout_s: float = 600.0,
    ) -> None:
        if workers < 1:
            raise ValueError(f"need workers >= 1, got {workers}")
        self._owns_ray = not ray.is_initialized()
        if self._owns_ray:
            ray.init(
                include_dashboard=False,
                num_cpus=max(os.cpu_count() or 1, math.ceil(workers * cpus_per_worker)),
            )
        actor = ray.remote(PolicyRolloutWorker).options(
            num_cpus=cpus_per_worker, max_concurrency=2, max_restarts=0, max_task_retries=0
        )
        self.actors = [actor.remote(model, lora, suite, threads) for _ in range(workers)]
        try:
            ray.get([a.ready.remote() for a in self.actors], timeout=start_timeout_s)
        except GetTimeoutError:
            self.close()
            raise RolloutError(
                f"{workers} trainer rollout worker(s) did not start within {start_timeout_s:.0f}s"
            ) from None
        except RayError as e:
            self.close()
            raise RolloutError(f"trainer rollout workers failed to start: {e}") from e
        self._sent_full = False

    def play(
        self,
        module: torch.nn.Module,
        version: int,
        jobs: Sequence[Job],
        sampling: SamplingParams,
        max_turns: int,
        budget: int | None = None,
    ) -> list[Trajectory]:
        """Every job played by the actors with `module`'s current weights, in job order."""
        if self._sent_full:
            state = {n: p.detach().cpu() for n, p in module.named_parameters() if p.requires_grad}
        else:
            state = {k: v.detach().cpu() for k, v in module.state_dict().items()}
        ref = ray.put(state)  # once; every actor reads the same object
        shares = [list(jobs[i :: len(self.actors)]) for i in range(len(self.actors))]
        calls = [
            (share, a.play.remote(ref, version, share, sampling, max_turns, budget))
            for a, share in zip(self.actors, shares, strict=True)
            if share
        ]
        try:
            results = ray.get([c for _, c in calls])
        except RayError as e:
            raise RolloutError(f"a trainer rollout worker failed: {e}") from e
        self._sent_full = True
        out: list[Trajectory] = []
        for (share, _), rows in zip(calls, results, strict=True):
            if len(rows) != len(share):
                raise RolloutError(f"a worker returned {len(rows)} episodes for {len(share)} jobs")
            out.extend(Trajectory.model_validate_json(row) for row in rows)
        order = {job: i for i, job in enumerate(j for share, _ in calls for j in share)}
        return [out[order[j]] for j in jobs]

    def close(self) -> None:
        for a in getattr(self, "actors", []):
            with contextlib.suppress(Exception):  # already dead
                ray.kill(a)
        self.actors = []
        if self._owns_ray and ray.is_initialized():
            ray.shutdown()

    def __enter__(self) -> RayPolicyRollouts:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
