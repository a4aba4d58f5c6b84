"""Asynchronous GRPO rollouts with bounded staleness: a producer thread plays groups while the trainer trains.

In: a `SamplerModel` (a second `TransformersChatModel` over a *copy* of the trained module, sharing
its tokenizer and template) and a coroutine function `play_round(round) -> list[RolloutGroup]`
supplied by the trainer (it picks the round's tasks, plays `group_size` episodes of each with the
sampler and scores them). Out: `RolloutGroup`s, one per task, from a bounded queue
(`RolloutProducer.take`).

- **Weights.** The trainer calls `producer.publish(state, version)` after every update with the
  trained module's state dict (the LoRA adapter alone under LoRA: the sampler copy is a peft model
  too). `publish` clones the tensors and leaves them pending; the sampler loads them
  (`load_state_dict`) under its generation lock at the start of its next batch, so the trainer never
  waits for a generation in flight and a batch never sees half-loaded weights.
- **Versions.** Every completion the sampler returns carries the version of the weights that
  produced it (`VersionedCompletion`, passed to the env as the action's `policy_version`, which
  `ToolUseEnv` writes into `TurnRecord.policy_version`). Weights can change between two turns of
  one episode, so turns are tagged individually; all tokens of a turn come from one batch, hence one
  version. `RolloutGroup.min_version` is the oldest turn of the group.
- **Staleness.** The queue holds at most `maxsize` groups (the trainer sizes it `k * tasks_per_step`)
  and the producer starts a round (`round_size` groups) only when it will fit, so with k = 1 the
  round for step n+1 is played while step n trains, and with k rounds queued the producer waits. The trainer (`GRPOTrainer`) keeps a group only when
  `min_version >= current_version - k` and drops (and counts) staler ones.
- **Shutdown.** `stop()` sets the stop flag, cancels the round in flight on the producer's own event
  loop, closes the sampler's batching worker (a generation in flight stops at its next token) and
  joins the thread with a time-out; the trainer calls it when training ends, raises or is
  interrupted. An exception inside the producer is re-raised by the next `take`.

Nothing here is checkpointed: rollouts still queued when a run stops are discarded, and a resumed
run starts a fresh producer from the restored weights.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import dataclasses
import queue
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import torch

from agentgym.models.base import Completion
from agentgym.models.transformers_model import TransformersChatModel
from agentgym.spec.trajectory import Trajectory

PRODUCER_THREAD = "grpo-rollout-producer"
"""Name of the producer thread (tests look for it)."""


@dataclass(slots=True)
class VersionedCompletion(Completion):
    """A completion that knows which policy version sampled it."""

    policy_version: int | None = None

    def as_action(self) -> dict[str, Any]:
        action = Completion.as_action(self)
        action["policy_version"] = self.policy_version
        return action


class SamplerModel(TransformersChatModel):
    """A sampling copy of a trained policy; see module doc."""

    def __init__(self, source: TransformersChatModel, version: int) -> None:
        module = copy.deepcopy(source.model).eval().requires_grad_(False)
        for p in module.parameters():
            p.grad = None  # gradients the trained module may hold are not the sampler's to keep
        super().__init__(
            module,
            source.tokenizer,
            name=f"{source.name}/sampler",
            tool_format=source.tool_format,
            chat_template=source.chat_template,
            max_batch=source.max_batch,
            batch_wait_ms=source.batch_wait_ms,
        )
        self.version = version
        self._batch_version = version
        self._pending: tuple[dict[str, torch.Tensor], int] | None = None
        self._pending_lock = threading.Lock()

    def publish(self, state: dict[str, torch.Tensor], version: int) -> None:
        """Queue new weights (cloned now) for the next batch; a newer publish replaces an unloaded one."""
        snapshot = {k: v.detach().clone() for k, v in state.items()}
        with self._pending_lock:
            self._pending = (snapshot, version)

    def _load_pending(self) -> None:
        with self._pending_lock:
            pending, self._pending = self._pending, None
        if pending is not None:
            state, version = pending
            self.model.load_state_dict(state, strict=False)
            self.version = version

    def _begin_batch(self) -> None:
        # under the generation lock, before a batch's first token: "load weights, read version,
        # generate" is one step, and every row of the batch is sampled by that version
        self._load_pending()
        self._batch_version = self.version

    def _row_completion(self, row: Any) -> Completion:
        c = super()._row_completion(row)
        return VersionedCompletion(
            **{f.name: getattr(c, f.name) for f in dataclasses.fields(Completion)},
            policy_version=self._batch_version,
        )


@dataclass(slots=True)
class RolloutGroup:
    """One task's group of scored trajectories, as the producer made it."""

    task_id: str
    trajectories: list[Trajectory]
    temperature: float
    """The sampling temperature (the trainer's log-probabilities must use the same)."""
    round: int
    """Which producer round made it."""

    @property
    def versions(self) -> list[int]:
        return [
            t.policy_version for tr in self.trajectories for t in tr.turns if t.policy_version is not None
        ]

    @property
    def min_version(self) -> int:
        v = self.versions
        if not v:
            raise ValueError(f"group of {self.task_id!r} has no turn tagged with a policy version")
        return min(v)


class RolloutProducer:
    """The producer thread and its bounded queue; see module doc."""

    def __init__(
        self,
        play_round: Callable[[int], Awaitable[list[RolloutGroup]]],
        sampler: SamplerModel,
        *,
        maxsize: int,
        round_size: int = 1,
        first_round: int = 0,
        join_timeout_s: float = 30.0,
    ) -> None:
        if not 1 <= round_size <= maxsize:
            raise ValueError(f"need 1 <= round_size <= maxsize, got {round_size} and {maxsize}")
        self.round_size = round_size
        self.sampler = sampler
        self._play_round = play_round
        self._queue: queue.Queue[RolloutGroup] = queue.Queue(maxsize=maxsize)
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[Any] | None = None
        self._round = first_round
        self.join_timeout_s = join_timeout_s
        self.thread = threading.Thread(target=self._main, name=PRODUCER_THREAD, daemon=True)

    def start(self) -> RolloutProducer:
        self.thread.start()
        return self

    def publish(self, state: dict[str, torch.Tensor], version: int) -> None:
        self.sampler.publish(state, version)

    def _main(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            while not self._stop.is_set():
                # start a round only when its groups will fit: a round played into a full queue would
                # wait there going stale instead of being played with fresher weights
                if self._queue.qsize() > self._queue.maxsize - self.round_size:
                    self._stop.wait(0.05)
                    continue
                self._task = loop.create_task(self._play_round(self._round))
                groups = loop.run_until_complete(self._task)
                self._round += 1
                for g in groups:
                    while not self._stop.is_set():
                        try:
                            self._queue.put(g, timeout=0.1)
                            break
                        except queue.Full:
                            continue
        except asyncio.CancelledError:
            pass
        except BaseException as e:  # handed to the trainer by the next take()
            if not self._stop.is_set():
                self._error = e
        finally:
            with contextlib.suppress(Exception):
                pending = asyncio.all_tasks(loop)
                for t in pending:
                    t.cancel()
                if pending:
                    loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.close()

    def take(self, timeout_s: float | None = None) -> RolloutGroup:
        """The next group (blocking); re-raises the producer's exception if it died."""
        deadline = None if timeout_s is None else time.perf_counter() + timeout_s
        while True:
            if self._error is not None:
                raise RuntimeError("the rollout producer failed") from self._error
            try:
                return self._queue.get(timeout=0.1)
            except queue.Empty:
                if not self.thread.is_alive() and self._queue.empty():
                    if self._error is not None:
                        continue
                    raise RuntimeError("the rollout producer stopped") from None
                if deadline is not None and time.perf_counter() > deadline:
                    raise TimeoutError(f"no rollout group within {timeout_s:.0f}s") from None

    def stop(self) -> bool:
        """Stop the producer and its sampler; True when the thread ended within the time-out."""
        self._stop.set()
        loop, task = self._loop, self._task
        if loop is not None and task is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(task.cancel)
        self.sampler.close()
        if self.thread.is_alive() and self.thread is not threading.current_thread():
            self.thread.join(timeout=self.join_timeout_s)
        with contextlib.suppress(queue.Empty):
            while True:
                self._queue.get_nowait()
        return not self.thread.is_alive()
