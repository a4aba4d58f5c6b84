"""SFT priming: supervised fine-tuning on tool-use conversations, before GRPO.

A cold small model rarely earns a non-zero reward, so it first imitates good trajectories: the
oracle's (`source: oracle` — the gold path of every task of a split, played through the
environment and kept only when it passes its rubric) or an exported file (`source: <path>` —
OpenAI chat JSONL with `tools`, as `agentgym sft export` writes). Each conversation becomes one
sequence (`train.sequences.sft_sequence`): the loss covers the assistant turns' rendered text
(calls in the model's tool format, end token included) and nothing else. Adam, token-mean
cross-entropy, a few epochs; the result is a plain transformers checkpoint that
`agentgym train grpo --model <dir>` starts from. `sft_metrics.jsonl` gets a line per step.

With `lora` set only a LoRA adapter (peft) is trained and it is merged into the saved checkpoint.
On a CPU that halves the work of a step: no weight gradients for the frozen base, and no
activation checkpointing needed for the memory, so a forward and one input-gradient pass.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from pathlib import Path
from typing import Any

import orjson
import torch
from pydantic import BaseModel, ConfigDict, Field, field_validator

from agentgym.env import EnvConfig, ToolUseEnv
from agentgym.policies.oracle import OraclePolicy
from agentgym.runner import run_episodes
from agentgym.suites import load_suite
from agentgym.train.grpo import enable_checkpointing, load_policy_model
from agentgym.train.lora import LoraSettings, with_lora
from agentgym.train.optim import check_optimizer, clip_grad_norm, make_optimizer
from agentgym.train.sequences import masked_logprobs, pad, sft_sequence


class SFTConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    model: str = "embedded"
    source: str = "oracle"
    """'oracle' (gold paths of `suite`/`split`) or a chat JSONL file."""
    suite: str = "agentic"
    split: str | None = "train"
    max_examples: int | None = None
    out: str = "runs/sft"
    epochs: int = Field(default=2, ge=1)
    lr: float = Field(default=5e-5, gt=0)
    optimizer: str = "adamw"
    """`agentgym.train.optim.OPTIMIZERS` (as `GRPOConfig.optimizer`)."""
    batch_size: int = Field(default=8, ge=1)
    max_len: int = Field(default=4096, ge=16)
    """Longer conversations are skipped (counted)."""
    gradient_checkpointing: bool = True
    lora: LoraSettings | None = None
    """Train a LoRA adapter instead of every weight; merged into the saved model."""
    seed: int = 0
    threads: int | None = None

    _optimizer = field_validator("optimizer")(check_optimizer)


def oracle_conversations(
    suite_name: str, split: str | None, limit: int | None, seed: int = 0
) -> list[dict[str, Any]]:
    """Passing gold-path conversations of a split, as {"messages", "tools"} rows."""
    suite = load_suite(suite_name)
    ids = sorted(t for t, s in suite.tasks.items() if split is None or s.split == split)
    random.Random(seed).shuffle(ids)
    if limit is not None:
        ids = ids[:limit]
    trajs = asyncio.run(
        run_episodes(
            lambda: ToolUseEnv(suite, task_ids=ids, config=EnvConfig(max_turns=12)),
            lambda: OraclePolicy(),
            [(t, 0) for t in ids],
            concurrency=8,
        )
    )
    return [
        {"messages": [m.openai() for m in t.messages], "tools": list(t.tools)}
        for t in trajs
        if t.rubric is not None and t.rubric.passed
    ]


def file_conversations(path: str | Path, limit: int | None) -> list[dict[str, Any]]:
    rows = []
    with open(path, "rb") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = orjson.loads(line)
                rows.append({"messages": row["messages"], "tools": row.get("tools") or []})
            except (orjson.JSONDecodeError, KeyError, TypeError) as e:
                raise ValueError(f"{path}:{n}: not a chat row with 'messages': {e}") from None
            if limit is not None and len(rows) >= limit:
                break
    return rows


def train_sft(cfg: SFTConfig, on_step: Any = None) -> dict[str, Any]:
    """Fine-tune and save `<out>/model`; returns a summary."""
    random.seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    chat = load_policy_model(cfg.model, cfg.threads)
    rows = (
        oracle_conversations(cfg.suite, cfg.split, cfg.max_examples, cfg.seed)
        if cfg.source == "oracle"
        else file_conversations(cfg.source, cfg.max_examples)
    )
    seqs, skipped = [], 0
    for r in rows:
        s = sft_sequence(chat, r["messages"], r["tools"] or None)
        if len(s.ids) > cfg.max_len or not sum(s.mask):
            skipped += 1
            continue
        seqs.append(s)
    if not seqs:
        raise ValueError(f"no usable SFT examples ({len(rows)} rows, {skipped} too long or without targets)")
    if cfg.lora is not None:
        chat.model = with_lora(chat.model, cfg.lora)
    model = chat.model
    if cfg.gradient_checkpointing:
        enable_checkpointing(model)
    model.train()
    opt = make_optimizer(cfg.optimizer, model.parameters(), cfg.lr)
    rng = random.Random(cfg.seed)
    step, t0 = 0, time.perf_counter()
    log = open(out / "sft_metrics.jsonl", "a", encoding="utf-8")  # noqa: SIM115
    try:
        for epoch in range(cfg.epochs):
            order = list(range(len(seqs)))
            rng.shuffle(order)
            # similar lengths together: less padding
            batches = [order[i : i + cfg.batch_size] for i in range(0, len(order), cfg.batch_size)]
            for b in batches:
                batch = pad([seqs[i] for i in b], chat._pad)
                logp, _ = masked_logprobs(model, batch)
                mask = batch.mask[:, 1:]
                loss = -(logp * mask).sum() / mask.sum().clamp(min=1)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                gn = clip_grad_norm(opt, 1.0)
                opt.step()
                opt.zero_grad(set_to_none=True)
                step += 1
                m = {
                    "step": step,
                    "epoch": epoch,
                    "loss": float(loss.detach()),
                    "grad_norm": gn,
                    "elapsed_s": time.perf_counter() - t0,
                }
                log.write(json.dumps(m) + "\n")
                log.flush()
                if on_step is not None:
                    on_step(m)
    finally:
        log.close()
    model.eval()
    if cfg.lora is not None:
        model = model.merge_and_unload()
        chat.model = model
    dest = out / "model"
    tmp = out / "model.tmp"
    model.save_pretrained(tmp)
    chat.tokenizer.save_pretrained(tmp)
    if dest.exists():
        import shutil

        shutil.rmtree(dest)
    tmp.rename(dest)
    return {
        "examples": len(seqs),
        "skipped": skipped,
        "steps": step,
        "seconds": time.perf_counter() - t0,
        "model": str(dest),
    }
