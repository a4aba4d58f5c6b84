"""Multi-turn GRPO: rollouts through the environment, token-exact sequences, masked clipped loss.

One step:
1. Pick `tasks_per_step` tasks of the split; play `group_size` episodes of each through
   `ToolUseEnv` with the policy being trained (`ModelPolicy` over a `TransformersChatModel` that
   shares the trained module; concurrent episodes are batched by the model). Tools, state and the
   simulated user are the environment's.
2. Score each group with the reward mix (`agentgym.rewards`), every component kept in metrics.
3. Group-relative advantages (`ADVANTAGES` registry); groups whose rewards are all equal carry no
   signal and are dropped (`filter_zero_advantage`, Magistral).
4. Each episode becomes one sequence (`train.sequences.policy_view` + `model.sequence`): exactly
   the tokens that were sampled plus the environment's tokens, mask 1 on the sampled ones only.
5. `updates_per_batch` passes of the clipped surrogate (`policy_loss`: ε_low/ε_high, optional k3
   KL to a frozen reference, truncated importance weights against the sampler's logprobs), in
   micro-batches with exact gradient accumulation, then one optimizer step per pass.

Every step appends a metrics line to `<out>/metrics.jsonl` (and TensorBoard under `<out>/tb`);
`<out>/checkpoint` holds weights (or the LoRA adapter), optimizer, step and RNG state, written
atomically every `save_every` steps and at the end, and a run resumes from it exactly where it
stopped. `curve.png` plots reward and pass rate per step.

**Resume.** A crash between two checkpoints leaves metrics of steps the checkpoint does not hold;
those steps are played again. So on resume `metrics.jsonl` is cut (atomically: a temporary file,
then `os.replace`) to the lines with `step <` the resumed step, and TensorBoard's writer opens with
`purge_step` = the resumed step, so its readers drop the older events of the redone steps: every
step appears once in both.

**Asynchronous mode** (`async_staleness = k >= 1`; 0, the default, is the synchronous loop above).
Rollouts for the next steps are played while a step trains (`agentgym.train.async_rollouts`): a
producer thread with its own event loop plays whole rounds of groups with a *sampler copy* of the
policy into a bounded queue (`k * tasks_per_step` groups; a round starts only when it will fit, so
with k = 1 the groups of step n+1 are played while step n trains). After every update the trainer publishes
the new weights (the LoRA adapter alone under LoRA), which the sampler loads under its generation
lock before its next batch; every turn is tagged with the version that sampled it
(`TurnRecord.policy_version`; a version can change between turns of one episode, never within a
turn). A step takes groups whose oldest turn has version `>= version - k` and drops staler ones
(`groups_dropped_stale`); it logs `staleness_mean` and `staleness_max` (current version minus the
turn's, over sampled tokens), `batch_min_version` and `gen_wait_s` (time spent waiting for groups).
Stale tokens are corrected by `policy_loss`'s truncated importance weight: with
`updates_per_batch == 1`, `old_logp` is `logp.detach()` (ratio 1, no clipping) and the weight is
`min(pi_theta / mu, is_cap)`, `mu` the sampler's probability of the token *at the version that
sampled it*: the truncated-IS policy gradient. With more passes `old_logp` is the current policy
before the first pass (the proximal policy) and the weight is `min(pi_old / mu, is_cap)`: decoupled
PPO. `is_cap=None` turns the correction off, which in async mode trains on stale tokens
uncorrected (a warning says so). The producer is stopped (its round in flight cancelled, thread
joined with a time-out) when `train()` returns, raises or is interrupted, and by `close()`.
Checkpoints hold the trainer's state only: rollouts still queued are discarded, and a resumed run
starts a fresh producer from the restored weights. Task choice in async mode is seeded per
producer round (not by the trainer's RNG).

**Ray** (`ray_workers = N >= 1`, not with async): each step's episodes are played by N Ray actors
(`agentgym.train.ray_rollouts`), which load the current weights from the object store (put once per
step) before playing their share; trajectories come back to the driver with token ids and sampler
logprobs, tagged with the version, and are scored on the driver.

**Monitors** (`monitors`, on by default; `agentgym.train.monitoring`): the format reward (when the
mix has a `format_gate`) and the pass rate feed a `FormatVsSuccessMonitor` every step
(`monitor/format_vs_success` 0/1 and its slopes); a firing monitor logs one warning. A
self-critique component gets its agreement with the rubric per step (`monitor/critic_agreement`,
`<out>/critic_agreement.jsonl`).

**Generation on a server** (`generator: vllm_server`, `server_url`, `sync: vllm_lora`): rollouts
are sampled by a vLLM server (`agentgym.models.vllm_server.VLLMServerModel`: token-id prompts
assembled with the trainer's own tokenizer, sampled ids and logprobs read back), and after every
update the LoRA adapter is saved and loaded into the server through its dynamic LoRA endpoint
(`agentgym.train.sync`); `agentgym serve model` implements the same endpoints for tests and CPUs.

**Int8 sampling on the CPU** (`generator: local_int8`): rollouts are sampled by an int8 copy of
the trained model (`agentgym.models.int8`: a quarter of the weight bytes to read per decoded token,
float tensors other than the linear layers shared), requantized after every update (`sync: int8`).
Its tokens are off-policy by the quantization error; their own log-probabilities are recorded and
the loss weights them by `min(pi / mu, is_cap)` like any other sampler's.

**Precision and device.** `device` ("auto": CUDA when available) is where the trained module
lives; batches move to it in `sequences.masked_logprobs`. `dtype` is the dtype of the trained
weights; `autocast` runs the forward passes under `torch.autocast(bfloat16)` (CUDA or CPU) with
float32 master weights, the backward outside it; log-probabilities are float32 either way.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import os
import random
import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from agentgym.env import EnvConfig, ToolUseEnv
from agentgym.models.base import ChatModel, SamplingParams
from agentgym.models.transformers_model import TransformersChatModel
from agentgym.policies import ModelPolicy
from agentgym.rewards import Component, RewardMix, RubricReward
from agentgym.runner import run_episodes
from agentgym.spec.trajectory import Trajectory
from agentgym.suites import load_suite
from agentgym.train.lora import LoraSettings, with_lora
from agentgym.train.objectives import (
    ADVANTAGES,
    keep_informative,
    policy_loss,
)
from agentgym.train.optim import check_optimizer, clip_grad_norm, make_optimizer
from agentgym.train.schedules import TEMPERATURE_SCHEDULES
from agentgym.train.sequences import masked_logprobs, pad, policy_view

log = logging.getLogger(__name__)

DTYPES: dict[str, torch.dtype] = {"float32": torch.float32, "bfloat16": torch.bfloat16}


class GRPOConfig(BaseModel):
    """Everything a run needs; loadable from YAML (`agentgym train grpo --config F`)."""

    model_config = ConfigDict(extra="forbid")
    model: str = "embedded"
    """'embedded' or a local checkpoint folder (e.g. the output of `agentgym train sft`)."""
    suite: str = "agentic"
    split: str | None = "train"
    task_ids: list[str] | None = None
    out: str = "runs/grpo"
    steps: int = Field(default=20, ge=1)
    tasks_per_step: int = Field(default=2, ge=1)
    group_size: int = Field(default=4, ge=2)
    max_new_tokens: int = Field(default=64, ge=1)
    max_turns: int = Field(default=4, ge=1)
    completion_budget: int | None = Field(default=None, ge=1)
    """Tokens the policy may sample over one episode, all turns together (like TRL's multi-turn
    `max_completion_length`): each turn gets at most what is left, and the episode is truncated when
    it is spent. None: only `max_new_tokens` per turn and `max_turns` bound it."""
    temperature: float = Field(default=1.0, gt=0)
    temperature_end: float | None = None
    temperature_schedule: str = "constant"
    lr: float = Field(default=1e-6, gt=0)
    weight_decay: float = 0.0
    optimizer: str = "adamw"
    """`agentgym.train.optim.OPTIMIZERS`: adamw (fp32 moments) | adamw_bf16 (gradients and moments
    stored in bf16, stochastically rounded: 0.81 GB less for a full fine-tune of SmolLM2-135M)."""
    max_grad_norm: float = 1.0
    advantage: str = "grpo"
    aggregation: str = "token_mean"
    eps_low: float = 0.2
    eps_high: float = 0.28
    beta: float = Field(default=0.0, ge=0)
    """KL coefficient; > 0 loads a frozen reference copy."""
    is_cap: float | None = 2.0
    """Truncated importance weight cap for the sampler/trainer mismatch (None: off)."""
    updates_per_batch: int = Field(default=1, ge=1)
    micro_batch: int = Field(default=4, ge=1)
    filter_zero_advantage: bool = True
    rewards: str | dict[str, Any] | None = None
    """A reward mix (`agentgym.rewards.registry.mix_from_config`); None: the rubric score alone."""
    lora: LoraSettings | None = None
    gradient_checkpointing: bool | None = True
    """Recompute each layer's activations in the backward pass: memory O(layers) instead of
    O(layers x tokens) activations, for about a third more compute (bench/grpo.py, single turn:
    3.4 GB and 14.4 s/step on, 4.5 GB and 12.8 s/step off). None: only for micro-batches of more
    than `checkpoint_above` tokens."""
    checkpoint_above: int = 4096
    seed: int = 0
    threads: int | None = None
    save_every: int = Field(default=10, ge=1)
    async_staleness: int = Field(default=0, ge=0)
    """0: synchronous. k >= 1: rollouts overlap training, groups at most k versions old (module doc)."""
    ray_workers: int = Field(default=0, ge=0)
    """> 0: that many Ray actors play each step's episodes (module doc)."""
    ray_cpus_per_worker: float = Field(default=1.0, gt=0)
    monitors: bool = True
    """Feed the reward-hacking monitors every step (module doc)."""
    dtype: Literal["float32", "bfloat16"] = "float32"
    """Dtype of the trained weights (a `model` passed to the trainer keeps its own unless this is set)."""
    autocast: bool = False
    """Forward passes under bfloat16 autocast, float32 master weights."""
    device: str = "auto"
    """Where the trained module lives: 'auto' (CUDA when available), 'cpu', 'cuda', 'cuda:1', ..."""
    generator: Literal["local", "local_int8", "vllm_server"] = "local"
    """Who samples the rollouts: the trained module in process; an int8 copy of it in process
    (`agentgym.models.int8`: CPU, full fine-tuning, synced by requantizing after each step, the
    mismatch corrected through `is_cap`); or a vLLM server fed token ids."""
    server_url: str | None = None
    """The server's base URL (http://host:port/v1) for `generator: vllm_server`, serving the same base
    model as `model` (vLLM: --enable-lora, VLLM_ALLOW_RUNTIME_LORA_UPDATING=True,
    --logprobs-mode processed_logprobs)."""
    sync: str = "none"
    """How the generator gets each new policy (`agentgym.train.sync.SYNCS`): none | vllm_lora | int8
    (`generator: local_int8` implies int8)."""

    _optimizer = field_validator("optimizer")(check_optimizer)

    @model_validator(mode="after")
    def _generator_settings(self) -> GRPOConfig:
        if self.generator == "local_int8":
            if "sync" not in self.model_fields_set:
                self.sync = "int8"
            if self.sync != "int8":
                raise ValueError(f"generator: local_int8 is synced by sync: int8, not {self.sync!r}")
            if self.lora is not None or self.async_staleness or self.ray_workers:
                raise ValueError(
                    "generator: local_int8 quantizes the fully trained model in the synchronous loop "
                    "(no lora, async_staleness or ray_workers)"
                )
            if self.is_cap is None:
                log.warning(
                    "generator: local_int8 with is_cap=None: the int8 sampler's tokens train uncorrected"
                )
        elif self.sync == "int8":
            raise ValueError("sync: int8 needs generator: local_int8")
        if self.generator == "vllm_server":
            if self.server_url is None:
                raise ValueError("generator: vllm_server needs server_url")
            if self.async_staleness or self.ray_workers:
                raise ValueError(
                    "generator: vllm_server runs the synchronous loop (no async_staleness, ray_workers)"
                )
        if self.sync == "vllm_lora" and self.lora is None:
            raise ValueError("sync: vllm_lora needs lora settings")
        if self.sync != "none" and self.generator == "local":
            raise ValueError(
                f"sync: {self.sync} needs a generator other than 'local' (which shares the weights)"
            )
        return self


def load_config(path: str | Path | None = None, **overrides: Any) -> GRPOConfig:
    data: dict[str, Any] = {}
    if path is not None:
        from agentgym.yamlfile import load_yaml

        data = load_yaml(Path(path).read_text(encoding="utf-8")) or {}
    data.update({k: v for k, v in overrides.items() if v is not None})
    return GRPOConfig.model_validate(data)


def load_policy_model(spec: str, threads: int | None = None) -> TransformersChatModel:
    if spec == "embedded":
        from agentgym.models import embedded

        return embedded.load(threads=threads)
    return TransformersChatModel.from_pretrained(spec, threads=threads)


def enable_checkpointing(module: Any, on: bool = True) -> None:
    """Gradient checkpointing on or off (non-reentrant, so frozen inputs under LoRA still get gradients)."""
    base = module.get_base_model() if hasattr(module, "get_base_model") else module
    if on:
        base.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
    else:
        base.activation_checkpointing_disable()


def _now(fn: Any) -> Any:
    return fn()


class GRPOTrainer:
    """See module doc."""

    def __init__(
        self,
        cfg: GRPOConfig,
        model: TransformersChatModel | None = None,
        mix: RewardMix | None = None,
        suite: Any = None,
    ) -> None:
        """`model`, `mix` and `suite` (a `TaskSuite`) override what `cfg` names, for programmatic use."""
        if cfg.advantage not in ADVANTAGES:
            raise ValueError(f"unknown advantage {cfg.advantage!r}; known: {sorted(ADVANTAGES)}")
        if cfg.temperature_schedule not in TEMPERATURE_SCHEDULES:
            raise ValueError(
                f"unknown temperature schedule {cfg.temperature_schedule!r}; known: {sorted(TEMPERATURE_SCHEDULES)}"
            )
        if cfg.async_staleness and cfg.ray_workers:
            raise ValueError("async_staleness and ray_workers cannot be combined; pick one")
        if cfg.async_staleness and cfg.is_cap is None:
            log.warning(
                "async_staleness=%d with is_cap=None: stale tokens train uncorrected", cfg.async_staleness
            )
        self.cfg = cfg
        self.device = _device(cfg.device)
        self.out = Path(cfg.out)
        self.out.mkdir(parents=True, exist_ok=True)
        random.seed(cfg.seed)
        torch.manual_seed(cfg.seed)
        self.chat = model or load_policy_model(cfg.model, cfg.threads)
        # Every parallel torch op of a local run happens on the generation worker's thread (the
        # update too, `_on_generation_thread`): a single op on a second thread (a resumed
        # checkpoint's load, a reference copy) gives the process a second OpenMP team, and libgomp
        # then throttles its spinning: every later step ran 1.5-2x slower (measured).
        local = cfg.generator == "local" and not cfg.async_staleness and not cfg.ray_workers
        (self.chat.call if local else _now)(lambda: self._set_up(cfg, model, mix, suite))

    def _set_up(
        self, cfg: GRPOConfig, model: TransformersChatModel | None, mix: RewardMix | None, suite: Any
    ) -> None:
        # a model passed in keeps its own dtype unless the config names one
        cast = model is None or "dtype" in cfg.model_fields_set
        self.chat.model = self.chat.model.to(self.device, dtype=DTYPES[cfg.dtype] if cast else None)
        if cfg.lora is not None:
            self.chat.model = with_lora(self.chat.model, cfg.lora)
        self.module = self.chat.model
        self.generator: Any = self.chat
        if cfg.generator == "vllm_server":
            from agentgym.models.vllm_server import VLLMServerModel

            # the trainer's own tokenizer and template: generation and training build the same ids
            self.generator = VLLMServerModel(cfg.server_url, self.chat)
        elif cfg.generator == "local_int8":
            from agentgym.models.int8 import int8_sampler

            if self.device.type != "cpu":
                raise ValueError(f"generator: local_int8 samples on the CPU; the model is on {self.device}")
            self.generator = TransformersChatModel(
                int8_sampler(self.module),
                self.chat.tokenizer,
                name=f"{self.chat.name}-int8",
                tool_format=self.chat.tool_format,
                chat_template=self.chat.chat_template,
                max_batch=self.chat.max_batch,
                batch_wait_ms=self.chat.batch_wait_ms,
            )
        from agentgym.train.sync import make_sync

        self.sync = make_sync(cfg.sync, out=self.out, generator=self.generator)
        self.ref = None
        if cfg.beta > 0:
            import copy

            self.ref = copy.deepcopy(self.module).eval().requires_grad_(False)
        params = [p for p in self.module.parameters() if p.requires_grad]
        self.opt = make_optimizer(cfg.optimizer, params, cfg.lr, cfg.weight_decay)
        self.suite = suite if suite is not None else load_suite(cfg.suite)
        self._suite_given = suite is not None
        ids = cfg.task_ids or [
            t for t, spec in self.suite.tasks.items() if cfg.split is None or spec.split == cfg.split
        ]
        if not ids:
            raise ValueError(f"no tasks in suite {cfg.suite!r} for split {cfg.split!r}")
        self.task_ids = sorted(ids)
        self.mix = mix or self._mix(cfg.rewards)
        self.step = 0
        self.version = 0
        self._rng = random.Random(cfg.seed)
        self._tb = None
        self._purge_step: int | None = None
        self._producer: Any = None  # async_rollouts.RolloutProducer while running
        self._ray: Any = None  # ray_rollouts.RayPolicyRollouts while running
        self.last_groups: list[list[Trajectory]] = []
        """The groups the last step trained on (before the zero-advantage filter)."""
        self.monitors = None
        if cfg.monitors:
            from agentgym.train.monitoring import TrainingMonitors

            self.monitors = TrainingMonitors(self.mix, self.out)
        self._resume()
        if self.version > 0 and cfg.sync != "none":  # resumed: the generator samples the restored policy
            self.sync(self.module, self.version)

    # -- set-up ---------------------------------------------------------------------------------

    @staticmethod
    def _mix(rewards: str | dict[str, Any] | None) -> RewardMix:
        if rewards is None:
            return RewardMix([Component(RubricReward())])
        from agentgym.rewards.registry import mix_from_config

        return mix_from_config(rewards)

    def _ckpt(self) -> Path:
        return self.out / "checkpoint"

    def _resume(self) -> None:
        ck = self._ckpt()
        if (ck / "trainer.json").exists():
            state = json.loads((ck / "trainer.json").read_text())
            weights = torch.load(ck / "weights.pt", map_location="cpu", weights_only=True)
            self.module.load_state_dict(weights, strict=False)
            self.opt.load_state_dict(torch.load(ck / "optimizer.pt", map_location="cpu", weights_only=False))
            self.step, self.version = state["step"], state["version"]
            self._rng.setstate(_tuple(state["rng"]))
            torch.set_rng_state(torch.load(ck / "torch_rng.pt", weights_only=False))
        kept = truncate_metrics(self.out / "metrics.jsonl", self.step)
        if (self.out / "tb").exists():
            self._purge_step = self.step
        if self.monitors is not None:
            self.monitors.replay(kept)

    def save(self) -> Path:
        """Write the checkpoint atomically (a crash mid-save keeps the previous one)."""
        ck, tmp = self._ckpt(), self.out / "checkpoint.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        state = {k: v.cpu() for k, v in self._trainable_state().items()}
        torch.save(state, tmp / "weights.pt")
        torch.save(self.opt.state_dict(), tmp / "optimizer.pt")
        torch.save(torch.get_rng_state(), tmp / "torch_rng.pt")
        (tmp / "trainer.json").write_text(
            json.dumps({"step": self.step, "version": self.version, "rng": self._rng.getstate()})
        )
        old = self.out / "checkpoint.old"
        shutil.rmtree(old, ignore_errors=True)
        if ck.exists():
            ck.rename(old)
        tmp.rename(ck)
        shutil.rmtree(old, ignore_errors=True)
        return ck

    def _trainable_state(self) -> dict[str, torch.Tensor]:
        """The whole state dict, or under LoRA the adapter's tensors alone."""
        trainable = {n for n, p in self.module.named_parameters() if p.requires_grad}
        return {k: v for k, v in self.module.state_dict().items() if self.cfg.lora is None or k in trainable}

    def export(self, path: str | Path) -> Path:
        """The trained policy as a plain transformers checkpoint (LoRA merged)."""
        p = Path(path)
        module = self.module
        if self.cfg.lora is not None:
            module = module.merge_and_unload()
        module.save_pretrained(p)
        self.chat.tokenizer.save_pretrained(p)
        return p

    # -- rollouts -------------------------------------------------------------------------------

    def temperature(self) -> float:
        c = self.cfg
        end = c.temperature if c.temperature_end is None else c.temperature_end
        return float(
            TEMPERATURE_SCHEDULES[c.temperature_schedule](
                self.step, start=c.temperature, end=end, steps=c.steps
            )
        )

    def _jobs(self, task_ids: Sequence[str], seed_base: int) -> list[tuple[str, int]]:
        return [(t, seed_base + g) for t in task_ids for g in range(self.cfg.group_size)]

    async def _score(
        self, task_ids: Sequence[str], trajs: Sequence[Trajectory]
    ) -> dict[str, list[Trajectory]]:
        """Trajectories grouped by task (in `task_ids` order) and scored by the mix; empty groups dropped."""
        by_task: dict[str, list[Trajectory]] = {t: [] for t in task_ids}
        for tr in trajs:
            by_task[tr.task_id].append(tr)
        return {t: await self.mix.apply(self.suite.tasks[t], g) for t, g in by_task.items() if g}

    async def _play(
        self, chat: ChatModel, task_ids: Sequence[str], temperature: float, seed_base: int
    ) -> list[Trajectory]:
        c = self.cfg
        sampling = SamplingParams(temperature=temperature, max_new_tokens=c.max_new_tokens)
        jobs = self._jobs(task_ids, seed_base)
        return await run_episodes(
            lambda: ToolUseEnv(
                self.suite,
                task_ids=list(task_ids),
                config=EnvConfig(max_turns=c.max_turns, token_budget=c.completion_budget),
            ),
            lambda: ModelPolicy(
                chat, sampling, name=f"policy@{self.version}", token_budget=c.completion_budget
            ),
            jobs,
            concurrency=len(jobs),
        )

    async def rollouts(self, task_ids: Sequence[str], temperature: float) -> list[list[Trajectory]]:
        """`group_size` episodes of each task with the trained policy, scored by the reward mix; one
        list per task, every turn tagged with the current version."""
        trajs = await self._play(self.generator, task_ids, temperature, self.step * 10_000)
        store = getattr(self.generator, "prefix_store", None)
        if store is not None:  # the update needs the memory, and changes the weights the keys came from
            store.clear()
        tagged = [_tag(tr, self.version) for tr in trajs]
        return list((await self._score(task_ids, tagged)).values())

    def _ray_rollouts(self, task_ids: Sequence[str], temperature: float) -> list[list[Trajectory]]:
        c = self.cfg
        if self._ray is None:
            from agentgym.train.ray_rollouts import RayPolicyRollouts

            self._ray = RayPolicyRollouts(
                c.ray_workers,
                model=c.model,
                lora=c.lora.model_dump() if c.lora is not None else None,
                suite=self.suite if self._suite_given else c.suite,
                threads=c.threads,
                cpus_per_worker=c.ray_cpus_per_worker,
            )
        sampling = SamplingParams(temperature=temperature, max_new_tokens=c.max_new_tokens)
        trajs = self._ray.play(
            self.module,
            self.version,
            self._jobs(task_ids, self.step * 10_000),
            sampling,
            c.max_turns,
            c.completion_budget,
        )
        return list(asyncio.run(self._score(task_ids, trajs)).values())

    def _start_producer(self) -> Any:
        from agentgym.train.async_rollouts import RolloutGroup, RolloutProducer, SamplerModel

        c = self.cfg
        sampler = SamplerModel(self.chat, self.version)
        per_round = min(c.tasks_per_step, len(self.task_ids))

        async def play_round(r: int) -> list[RolloutGroup]:
            rng = random.Random(c.seed * 1_000_003 + r)
            tasks = rng.sample(self.task_ids, per_round)
            temperature = self.temperature()
            scored = await self._score(tasks, await self._play(sampler, tasks, temperature, r * 10_000))
            return [RolloutGroup(t, g, temperature, r) for t, g in scored.items()]

        self._producer = RolloutProducer(
            play_round,
            sampler,
            maxsize=c.async_staleness * per_round,
            round_size=per_round,
            first_round=self.step,
        ).start()
        return self._producer

    def _take_groups(self) -> tuple[list[Any], int]:
        """`tasks_per_step` groups within the staleness bound, and how many staler ones were dropped."""
        producer = self._producer or self._start_producer()
        kept, dropped = [], 0
        while len(kept) < self.cfg.tasks_per_step:
            g = producer.take()
            if g.min_version < self.version - self.cfg.async_staleness:
                dropped += 1
                continue
            kept.append(g)
        return kept, dropped

    def close(self) -> None:
        """Stop the rollout producer or the Ray actors, if running (idempotent)."""
        producer, self._producer = self._producer, None
        if producer is not None and not producer.stop():
            log.warning("the rollout producer did not stop within %.0fs", producer.join_timeout_s)
        ray_workers, self._ray = self._ray, None
        if ray_workers is not None:
            ray_workers.close()

    # -- one step -------------------------------------------------------------------------------

    def train_step(self) -> dict[str, float]:
        c = self.cfg
        t0 = time.perf_counter()
        async_stats: dict[str, float] = {}
        if c.async_staleness:
            taken, dropped = self._take_groups()
            groups = [g.trajectories for g in taken]
            temperatures = [g.temperature for g in taken]
            temperature = _mean(temperatures)
            async_stats = self._staleness(groups) | {
                "groups_dropped_stale": float(dropped),
                "gen_wait_s": time.perf_counter() - t0,
            }
        else:
            temperature = self.temperature()
            tasks = self._rng.sample(self.task_ids, min(c.tasks_per_step, len(self.task_ids)))
            if c.ray_workers:
                groups = self._ray_rollouts(tasks, temperature)
            else:
                groups = asyncio.run(self.rollouts(tasks, temperature))
            temperatures = [temperature] * len(groups)
        self.last_groups = groups
        t_gen = time.perf_counter() - t0
        flat = [t for g in groups for t in g]
        rewards = [torch.tensor([t.reward for t in g], dtype=torch.float32) for g in groups]
        keep = keep_informative(rewards) if c.filter_zero_advantage else list(range(len(groups)))
        metrics: dict[str, float] = {
            "step": float(self.step),
            "policy_version": float(self.version),
            "temperature": temperature,
            "reward": _mean([t.reward for t in flat]),
            "pass_rate": _mean([float(bool(t.rubric and t.rubric.passed)) for t in flat]),
            "completion_tokens": _mean([float(sum(len(x.token_ids or ()) for x in t.turns)) for t in flat]),
            "turns": _mean([float(len(t.turns)) for t in flat]),
            "tool_calls": _mean([t.metrics.get("tool_calls", 0.0) for t in flat]),
            "groups_informative": float(len(keep)),
            "groups": float(len(groups)),
            **async_stats,
        }
        for name in sorted({k for t in flat for k in t.reward_components}):
            metrics[f"reward/{name}"] = _mean([t.reward_components.get(name, 0.0) for t in flat])
        if self.monitors is not None:
            metrics.update(self.monitors.observe(self.step, metrics, groups))
        t1 = time.perf_counter()
        if keep:
            args = ([groups[i] for i in keep], [rewards[i] for i in keep], [temperatures[i] for i in keep])
            metrics.update(self._on_generation_thread(lambda: self._update(*args)))
        t_train = time.perf_counter() - t1
        self.step += 1
        metrics.update(
            gen_s=t_gen,
            train_s=t_train,
            step_s=time.perf_counter() - t0,
            gen_tokens_per_s=sum(len(x.token_ids or ()) for t in flat for x in t.turns) / max(t_gen, 1e-9),
        )
        return metrics

    def _on_generation_thread(self, fn: Any) -> Any:
        """Run the update on the thread a local generator decodes on (`TransformersChatModel.call`:
        one OpenMP team on the CPU); elsewhere (a server, async mode's own sampler, Ray) in place."""
        gen = self.generator
        if self.cfg.async_staleness or self.cfg.ray_workers or not isinstance(gen, TransformersChatModel):
            return fn()
        return gen.call(fn)

    def _staleness(self, groups: Sequence[Sequence[Trajectory]]) -> dict[str, float]:
        """Current version minus each sampled token's version, over the step's tokens."""
        lags = [
            (self.version - t.policy_version, len(t.token_ids or ()))
            for g in groups
            for tr in g
            for t in tr.turns
            if t.policy_version is not None
        ]
        n = sum(w for _, w in lags)
        return {
            "staleness_mean": sum(lag * w for lag, w in lags) / n if n else 0.0,
            "staleness_max": float(max((lag for lag, _ in lags), default=0)),
            "batch_min_version": float(min((self.version - lag for lag, _ in lags), default=self.version)),
        }

    def _autocast(self) -> Any:
        if not self.cfg.autocast:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16)

    def _update(
        self, groups: list[list[Trajectory]], rewards: list[torch.Tensor], temperatures: list[float] | float
    ) -> dict[str, float]:
        c = self.cfg
        if not isinstance(temperatures, list):
            temperatures = [float(temperatures)] * len(groups)
        adv_fn = ADVANTAGES[c.advantage]
        by_temp: dict[float, list[tuple[Any, float]]] = {}
        exact = 0
        for g, r, temp in zip(groups, rewards, temperatures, strict=True):
            adv = adv_fn(r)
            for traj, a in zip(g, adv.tolist(), strict=True):
                view = policy_view(traj, self.chat.decode, self.chat._eos)
                seq = self.chat.sequence(view, list(traj.tools) or None)
                exact += int(seq.exact)
                if sum(seq.mask):
                    by_temp.setdefault(temp, []).append((seq, a))
        items = [it for its in by_temp.values() for it in its]
        if not items:
            return {"sequences": 0.0}
        total_tokens = sum(sum(s.mask) for s, _ in items)
        stats_acc: dict[str, list[float]] = {}
        self.module.train()
        # micro-batches never mix sampling temperatures (async rounds may differ under a schedule)
        micro = [
            (temp, its[i : i + c.micro_batch])
            for temp, its in by_temp.items()
            for i in range(0, len(its), c.micro_batch)
        ]
        old: list[torch.Tensor] = []
        if c.updates_per_batch > 1:
            with torch.no_grad(), self._autocast():
                old = [
                    self._logp(pad([s for s, _ in mb], self.chat._pad).to(self.device), temp)[0]
                    for temp, mb in micro
                ]
        grad_norm = 0.0
        for _ in range(c.updates_per_batch):
            self.opt.zero_grad(set_to_none=True)
            for k, (temp, mb) in enumerate(micro):
                batch = pad([s for s, _ in mb], self.chat._pad).to(self.device)
                big = batch.ids.numel() > c.checkpoint_above
                enable_checkpointing(
                    self.module, big if c.gradient_checkpointing is None else c.gradient_checkpointing
                )
                with self._autocast():
                    logp, entropy = self._logp(batch, temp)
                mask = batch.mask[:, 1:]
                adv = torch.tensor([a for _, a in mb], dtype=torch.float32, device=self.device)
                ref = None
                if self.ref is not None:
                    with torch.no_grad(), self._autocast():
                        ref = masked_logprobs(self.ref, batch, temp)[0]
                old_logp = old[k] if old else logp.detach()
                loss, stats = policy_loss(
                    logp,
                    old_logp,
                    adv,
                    mask,
                    eps_low=c.eps_low,
                    eps_high=c.eps_high,
                    aggregation=c.aggregation,
                    ref_logp=ref,
                    beta=c.beta,
                    sampler_logp=batch.sampler_logp[:, 1:] if c.is_cap is not None else None,
                    is_cap=c.is_cap,
                    norm_len=c.max_new_tokens * c.max_turns,
                )
                share = (
                    float(mask.sum()) / total_tokens
                    if c.aggregation == "token_mean"
                    else len(mb) / len(items)
                )
                (loss * share).backward()
                stats["entropy"] = float((entropy * mask).sum() / mask.sum().clamp(min=1))
                for key, v in stats.items():
                    stats_acc.setdefault(key, []).append(float(v))
            grad_norm = clip_grad_norm(self.opt, c.max_grad_norm)
            self.opt.step()
            self.opt.zero_grad(set_to_none=True)  # not held through the next step's rollouts
        self.module.eval()
        self.version += 1
        self.sync(self.module, self.version)
        if self._producer is not None:
            self._producer.publish(self._trainable_state(), self.version)
        out = {k: _mean(v) for k, v in stats_acc.items()}
        out.update(
            grad_norm=grad_norm,
            sequences=float(len(items)),
            exact_sequences=float(exact),
            train_tokens=float(total_tokens),
        )
        return out

    def _logp(self, batch: Any, temperature: float) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-token log-probabilities (under the sampling temperature) and entropies, shifted,
        at the loss positions only (`sequences.masked_logprobs`)."""
        logp, ent = masked_logprobs(self.module, batch, temperature, with_entropy=True)
        return logp, ent  # type: ignore[return-value]

    # -- the loop -------------------------------------------------------------------------------

    def log(self, metrics: dict[str, float]) -> None:
        with open(self.out / "metrics.jsonl", "a", encoding="utf-8") as f:
            f.write(json.dumps(metrics) + "\n")
        try:
            if self._tb is None:
                from torch.utils.tensorboard import SummaryWriter

                # purge_step: a resumed run's readers drop the older events of the steps it redoes
                self._tb = SummaryWriter(str(self.out / "tb"), purge_step=self._purge_step)
            for k, v in metrics.items():
                if k != "step" and isinstance(v, int | float) and math.isfinite(v):
                    self._tb.add_scalar(k, v, int(metrics["step"]))
            self._tb.flush()
        except ImportError:  # TensorBoard is optional: the JSONL has everything
            pass

    def train(self, on_step: Any = None) -> list[dict[str, float]]:
        history = []
        try:
            while self.step < self.cfg.steps:
                m = self.train_step()
                self.log(m)
                history.append(m)
                if on_step is not None:
                    on_step(m)
                if self.step % self.cfg.save_every == 0 or self.step == self.cfg.steps:
                    self.save()
                    plot_curve(self.out / "metrics.jsonl", self.out / "curve.png")
        finally:  # also on an exception or Ctrl-C: no producer thread or actor outlives the loop
            self.close()
        return history


def truncate_metrics(path: Path, step: int) -> list[dict[str, Any]]:
    """Keep the metrics lines with `step <` the given step (atomically); returns the kept rows."""
    if not path.exists():
        return []
    lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    rows = [json.loads(line) for line in lines]
    keep = [(line, r) for line, r in zip(lines, rows, strict=True) if r.get("step", 0) < step]
    if len(keep) != len(lines):
        tmp = path.with_suffix(".jsonl.tmp")
        tmp.write_text("".join(line + "\n" for line, _ in keep), encoding="utf-8")
        os.replace(tmp, path)
    return [r for _, r in keep]


def plot_curve(metrics_path: Path, png: Path) -> Path:
    """Reward and pass rate per step (a rolling mean over 5 steps drawn over the raw points)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [json.loads(line) for line in metrics_path.read_text().splitlines() if line.strip()]
    steps = [r["step"] for r in rows]
    fig, ax = plt.subplots(figsize=(7, 3.6), dpi=110)
    for key, colour in (("reward", "tab:blue"), ("pass_rate", "tab:green")):
        ys = [r.get(key, float("nan")) for r in rows]
        ax.plot(steps, ys, "o", color=colour, alpha=0.35, markersize=3)
        roll = [_mean(ys[max(0, i - 4) : i + 1]) for i in range(len(ys))]
        ax.plot(steps, roll, "-", color=colour, label=f"{key} (rolling mean of 5)")
    ax.set_xlabel("optimizer step")
    ax.set_ylim(-0.05, 1.05)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", fontsize=8)
    ax.set_title("GRPO training curve")
    fig.tight_layout()
    fig.savefig(png)
    plt.close(fig)
    return png


def _mean(xs: Sequence[float]) -> float:
    xs = [x for x in xs if not (isinstance(x, float) and math.isnan(x))]
    return sum(xs) / len(xs) if xs else 0.0


def _device(spec: str) -> torch.device:
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(spec)


def _tag(tr: Trajectory, version: int) -> Trajectory:
    """`tr` with every turn tagged as sampled by `version`."""
    return tr.model_copy(
        update={"turns": tuple(t.model_copy(update={"policy_version": version}) for t in tr.turns)}
    )


def _tuple(x: Any) -> Any:
    return tuple(_tuple(v) for v in x) if isinstance(x, list) else x
