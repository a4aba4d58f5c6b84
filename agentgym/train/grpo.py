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
"""

from __future__ import annotations

import asyncio
import json
import math
import random
import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from pydantic import BaseModel, ConfigDict, Field

from agentgym.env import EnvConfig, ToolUseEnv
from agentgym.models.base import SamplingParams
from agentgym.models.transformers_model import TransformersChatModel
from agentgym.policies import ModelPolicy
from agentgym.rewards import Component, RewardMix, RubricReward
from agentgym.runner import run_episodes
from agentgym.spec.trajectory import Trajectory
from agentgym.suites import load_suite
from agentgym.train.objectives import (
    ADVANTAGES,
    keep_informative,
    policy_loss,
)
from agentgym.train.schedules import TEMPERATURE_SCHEDULES
from agentgym.train.sequences import masked_logprobs, pad, policy_view


class LoraSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    r: int = 16
    alpha: int = 32
    dropout: float = 0.0
    target_modules: list[str] = Field(default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj"])


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
    temperature: float = Field(default=1.0, gt=0)
    temperature_end: float | None = None
    temperature_schedule: str = "constant"
    lr: float = Field(default=1e-6, gt=0)
    weight_decay: float = 0.0
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
        self.cfg = cfg
        self.out = Path(cfg.out)
        self.out.mkdir(parents=True, exist_ok=True)
        random.seed(cfg.seed)
        torch.manual_seed(cfg.seed)
        self.chat = model or load_policy_model(cfg.model, cfg.threads)
        if cfg.lora is not None:
            from peft import LoraConfig, get_peft_model

            self.chat.model = get_peft_model(
                self.chat.model,
                LoraConfig(
                    r=cfg.lora.r,
                    lora_alpha=cfg.lora.alpha,
                    lora_dropout=cfg.lora.dropout,
                    target_modules=cfg.lora.target_modules,
                    task_type="CAUSAL_LM",
                ),
            )
        self.module = self.chat.model
        self.ref = None
        if cfg.beta > 0:
            import copy

            self.ref = copy.deepcopy(self.module).eval().requires_grad_(False)
        params = [p for p in self.module.parameters() if p.requires_grad]
        self.opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay, foreach=False)
        self.suite = suite if suite is not None else load_suite(cfg.suite)
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
        self._resume()

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
        if not (ck / "trainer.json").exists():
            return
        state = json.loads((ck / "trainer.json").read_text())
        weights = torch.load(ck / "weights.pt", map_location="cpu", weights_only=True)
        self.module.load_state_dict(weights, strict=False)
        self.opt.load_state_dict(torch.load(ck / "optimizer.pt", map_location="cpu", weights_only=False))
        self.step, self.version = state["step"], state["version"]
        self._rng.setstate(_tuple(state["rng"]))
        torch.set_rng_state(torch.load(ck / "torch_rng.pt", weights_only=False))

    def save(self) -> Path:
        """Write the checkpoint atomically (a crash mid-save keeps the previous one)."""
        ck, tmp = self._ckpt(), self.out / "checkpoint.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        trainable = {n for n, p in self.module.named_parameters() if p.requires_grad}
        state = {k: v for k, v in self.module.state_dict().items() if self.cfg.lora is None or k in trainable}
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

    def export(self, path: str | Path) -> Path:
        """The trained policy as a plain transformers checkpoint (LoRA merged)."""
        p = Path(path)
        module = self.module
        if self.cfg.lora is not None:
            module = module.merge_and_unload()
        module.save_pretrained(p)
        self.chat.tokenizer.save_pretrained(p)
        return p

    # -- one step -------------------------------------------------------------------------------

    def temperature(self) -> float:
        c = self.cfg
        end = c.temperature if c.temperature_end is None else c.temperature_end
        return float(
            TEMPERATURE_SCHEDULES[c.temperature_schedule](
                self.step, start=c.temperature, end=end, steps=c.steps
            )
        )

    async def rollouts(self, task_ids: Sequence[str], temperature: float) -> list[list[Trajectory]]:
        """`group_size` episodes of each task, scored by the reward mix; one list per task."""
        c = self.cfg
        sampling = SamplingParams(temperature=temperature, max_new_tokens=c.max_new_tokens)
        jobs = [(t, self.step * 10_000 + g) for t in task_ids for g in range(c.group_size)]
        trajs = await run_episodes(
            lambda: ToolUseEnv(self.suite, task_ids=list(task_ids), config=EnvConfig(max_turns=c.max_turns)),
            lambda: ModelPolicy(self.chat, sampling, name=f"policy@{self.version}"),
            jobs,
            concurrency=len(jobs),
        )
        by_task: dict[str, list[Trajectory]] = {t: [] for t in task_ids}
        for tr in trajs:
            by_task[tr.task_id].append(
                tr.model_copy(
                    update={
                        "turns": tuple(
                            t.model_copy(update={"policy_version": self.version}) for t in tr.turns
                        )
                    }
                )
            )
        return [await self.mix.apply(self.suite.tasks[t], g) for t, g in by_task.items() if g]

    def train_step(self) -> dict[str, float]:
        c = self.cfg
        t0 = time.perf_counter()
        temperature = self.temperature()
        tasks = self._rng.sample(self.task_ids, min(c.tasks_per_step, len(self.task_ids)))
        groups = asyncio.run(self.rollouts(tasks, temperature))
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
        }
        for name in sorted({k for t in flat for k in t.reward_components}):
            metrics[f"reward/{name}"] = _mean([t.reward_components.get(name, 0.0) for t in flat])
        t1 = time.perf_counter()
        if keep:
            metrics.update(self._update([groups[i] for i in keep], [rewards[i] for i in keep], temperature))
        t_train = time.perf_counter() - t1
        self.step += 1
        metrics.update(
            gen_s=t_gen,
            train_s=t_train,
            step_s=time.perf_counter() - t0,
            gen_tokens_per_s=sum(len(x.token_ids or ()) for t in flat for x in t.turns) / max(t_gen, 1e-9),
        )
        return metrics

    def _update(
        self, groups: list[list[Trajectory]], rewards: list[torch.Tensor], temperature: float
    ) -> dict[str, float]:
        c = self.cfg
        adv_fn = ADVANTAGES[c.advantage]
        items: list[tuple[Any, float]] = []
        exact = 0
        for g, r in zip(groups, rewards, strict=True):
            adv = adv_fn(r)
            for traj, a in zip(g, adv.tolist(), strict=True):
                view = policy_view(traj, self.chat.decode, self.chat._eos)
                seq = self.chat.sequence(view, list(traj.tools) or None)
                exact += int(seq.exact)
                if sum(seq.mask):
                    items.append((seq, a))
        if not items:
            return {"sequences": 0.0}
        total_tokens = sum(sum(s.mask) for s, _ in items)
        stats_acc: dict[str, list[float]] = {}
        self.module.train()
        micro = [items[i : i + c.micro_batch] for i in range(0, len(items), c.micro_batch)]
        old: list[torch.Tensor] = []
        if c.updates_per_batch > 1:
            with torch.no_grad():
                old = [self._logp(pad([s for s, _ in mb], self.chat._pad), temperature)[0] for mb in micro]
        grad_norm = 0.0
        for _ in range(c.updates_per_batch):
            self.opt.zero_grad(set_to_none=True)
            for k, mb in enumerate(micro):
                batch = pad([s for s, _ in mb], self.chat._pad)
                big = batch.ids.numel() > c.checkpoint_above
                enable_checkpointing(
                    self.module, big if c.gradient_checkpointing is None else c.gradient_checkpointing
                )
                logp, entropy = self._logp(batch, temperature)
                mask = batch.mask[:, 1:]
                adv = torch.tensor([a for _, a in mb], dtype=torch.float32)
                ref = None
                if self.ref is not None:
                    with torch.no_grad():
                        ref = masked_logprobs(self.ref, batch, temperature)[0]
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
            grad_norm = float(
                torch.nn.utils.clip_grad_norm_(
                    [p for p in self.module.parameters() if p.requires_grad], c.max_grad_norm
                )
            )
            self.opt.step()
        self.module.eval()
        self.version += 1
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

                self._tb = SummaryWriter(str(self.out / "tb"))
            for k, v in metrics.items():
                if k != "step" and isinstance(v, int | float) and math.isfinite(v):
                    self._tb.add_scalar(k, v, int(metrics["step"]))
            self._tb.flush()
        except ImportError:  # TensorBoard is optional: the JSONL has everything
            pass

    def train(self, on_step: Any = None) -> list[dict[str, float]]:
        history = []
        while self.step < self.cfg.steps:
            m = self.train_step()
            self.log(m)
            history.append(m)
            if on_step is not None:
                on_step(m)
            if self.step % self.cfg.save_every == 0 or self.step == self.cfg.steps:
                self.save()
                plot_curve(self.out / "metrics.jsonl", self.out / "curve.png")
        return history


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


def _tuple(x: Any) -> Any:
    return tuple(_tuple(v) for v in x) if isinstance(x, list) else x
