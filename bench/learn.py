"""It learns: the embedded model, SFT priming on oracle trajectories of the train split, then GRPO,
measured on the held-out test split before, between and after — in one time budget on the CPU.

    python bench/learn.py --minutes 30 --out runs/learn

The defaults prime lightly (48 oracle conversations, one epoch): the SFT model then passes some
tasks and fails others, so GRPO's groups disagree and it has something to learn. Priming to
saturation (`--sft-examples 0 --sft-epochs 2 --grpo-lr 3e-6`, every train conversation) leaves the
SFT model passing its train tasks in nearly every rollout, and GRPO with nothing to move.

Stages, all inside `--minutes` (wall clock, counted from the start, evaluations included):

1. base: the embedded model, greedy, on every test task of the suite (default `compact`, whose
   test tasks name cities and people no train task names);
2. SFT (`agentgym.train.sft`) on the oracle's passing conversations of the train split;
3. the SFT model on the test split;
4. GRPO (`agentgym.train.grpo`) from the SFT model on the train split, step after step until the
   time left is what the last evaluation needs (measured on stage 3, plus a margin);
5. the GRPO model on the test split.

Writes `<out>/learn.json` (pass rate and mean score per stage, per difficulty, times) after every
stage, so an interrupted run keeps what it measured, and `<out>/learn.png`: test pass rate per stage
and the GRPO train pass rate per step. The SFT and GRPO models are kept in `<out>/sft/model` and
`<out>/grpo/model`. The evaluation is greedy (temperature 0) and one episode per
task, so it is deterministic for a given model.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from agentgym.env import EnvConfig, ToolUseEnv
from agentgym.models.base import SamplingParams
from agentgym.policies import ModelPolicy
from agentgym.runner import run_episodes
from agentgym.suites import load_suite
from agentgym.train.grpo import GRPOConfig, GRPOTrainer, load_policy_model
from agentgym.train.sft import SFTConfig, train_sft


def play(chat: Any, suite: Any, ids: list[str], max_new_tokens: int, max_turns: int) -> list[Any]:
    """One greedy episode of each task in `ids`, the way every stage is evaluated."""
    return asyncio.run(
        run_episodes(
            lambda: ToolUseEnv(suite, task_ids=ids, config=EnvConfig(max_turns=max_turns)),
            lambda: ModelPolicy(chat, SamplingParams(temperature=0.0, max_new_tokens=max_new_tokens)),
            [(t, 0) for t in ids],
            concurrency=16,
        )
    )


def evaluate(
    chat: Any, suite: Any, split: str, max_new_tokens: int, max_turns: int, limit: int | None = None
) -> dict[str, Any]:
    """Greedy, one episode per task of `split`: pass rate and mean score, overall and per difficulty."""
    ids = sorted(t for t, s in suite.tasks.items() if s.split == split)[:limit]
    t0 = time.perf_counter()
    trajs = play(chat, suite, ids, max_new_tokens, max_turns)
    by: dict[str, list[Any]] = defaultdict(list)
    for tr in trajs:
        by[suite.tasks[tr.task_id].difficulty].append(tr)
        by["all"].append(tr)

    def summary(ts: list[Any]) -> dict[str, float]:
        return {
            "tasks": len(ts),
            "pass_rate": sum(bool(t.rubric and t.rubric.passed) for t in ts) / len(ts),
            "score": sum(t.rubric.score if t.rubric else 0.0 for t in ts) / len(ts),
        }

    out = {k: summary(v) for k, v in sorted(by.items())}
    out["seconds"] = time.perf_counter() - t0
    out["passed"] = sorted(t.task_id for t in trajs if t.rubric and t.rubric.passed)
    return out


def plot(result: dict[str, Any], metrics: list[dict[str, float]], png: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4))
    stages = [s for s in ("base", "sft", "grpo") if s in result["eval"]]
    rates = [100 * result["eval"][s]["all"]["pass_rate"] for s in stages]
    bars = a.bar(stages, rates, color=["#999999", "#4c72b0", "#55a868"][: len(stages)])
    for bar, r in zip(bars, rates, strict=True):
        a.annotate(f"{r:.0f}%", (bar.get_x() + bar.get_width() / 2, r), ha="center", va="bottom")
    a.set_ylim(0, 105)
    a.set_ylabel("held-out test pass rate (%)")
    a.set_title(f"{result['suite']} test split ({result['eval']['base']['all']['tasks']} tasks, greedy)")
    if metrics:
        steps = [m["step"] + 1 for m in metrics]
        rate = [m["pass_rate"] for m in metrics]
        b.plot(steps, rate, color="#dd8452", alpha=0.35, label="train pass rate, per step")
        w = min(8, len(rate))
        smooth = [sum(rate[max(0, i + 1 - w) : i + 1]) / min(w, i + 1) for i in range(len(rate))]
        b.plot(steps, smooth, color="#dd8452", lw=2, label=f"mean of the last {w} steps")
        n, g = result["args"]["tasks_per_step"], result["args"]["group_size"]
        b.set_xlabel(f"GRPO step ({n} task{'s' if n != 1 else ''} x G={g})")
        b.set_ylim(-0.05, 1.05)
        b.legend(loc="upper left")
    b.set_title("GRPO on the train split (sampled, T=1)")
    fig.tight_layout()
    fig.savefig(png, dpi=110)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--suite", default="compact")
    ap.add_argument("--minutes", type=float, default=30.0)
    ap.add_argument("--out", default="runs/learn")
    ap.add_argument("--sft-epochs", type=int, default=1)
    ap.add_argument("--sft-lr", type=float, default=5e-5)
    ap.add_argument(
        "--sft-examples", type=int, default=48, help="at most this many oracle conversations (0: all)"
    )
    ap.add_argument("--test-limit", type=int, default=None, help="only the first N test tasks (smoke runs)")
    ap.add_argument("--grpo-lr", type=float, default=1e-5)
    ap.add_argument("--group-size", type=int, default=4)
    ap.add_argument("--tasks-per-step", type=int, default=2)
    ap.add_argument("--max-new-tokens", type=int, default=64)
    ap.add_argument("--max-turns", type=int, default=4)
    ap.add_argument("--margin-s", type=float, default=30.0, help="kept free for the last evaluation")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--seed", type=int, default=0, help="which oracle conversations, and GRPO's draws")
    args = ap.parse_args()
    start = time.perf_counter()
    deadline = start + 60 * args.minutes
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    suite = load_suite(args.suite)
    result: dict[str, Any] = {"suite": args.suite, "args": vars(args), "eval": {}, "times_s": {}}

    def save() -> None:
        result["elapsed_s"] = time.perf_counter() - start
        (out / "learn.json").write_text(json.dumps(result, indent=2))

    def stage(name: str, t0: float) -> None:
        result["times_s"][name] = time.perf_counter() - t0
        save()
        print(f"[{time.perf_counter() - start:7.1f}s] {name}: {result['times_s'][name]:.1f}s", flush=True)

    t0 = time.perf_counter()
    base = load_policy_model("embedded", args.threads)
    result["eval"]["base"] = evaluate(
        base, suite, "test", args.max_new_tokens, args.max_turns, args.test_limit
    )
    del base
    stage("eval_base", t0)
    print(" base:", result["eval"]["base"]["all"], flush=True)

    t0 = time.perf_counter()
    sft = SFTConfig(
        suite=args.suite,
        split="train",
        epochs=args.sft_epochs,
        lr=args.sft_lr,
        max_examples=args.sft_examples or None,
        seed=args.seed,
        gradient_checkpointing=False,  # short sequences: the shared-prefix forward, un-checkpointed
        out=str(out / "sft"),
        threads=args.threads,
    )
    result["sft"] = train_sft(sft)
    stage("sft", t0)

    t0 = time.perf_counter()
    chat = load_policy_model(result["sft"]["model"], args.threads)
    result["eval"]["sft"] = evaluate(
        chat, suite, "test", args.max_new_tokens, args.max_turns, args.test_limit
    )
    eval_s = time.perf_counter() - t0
    stage("eval_sft", t0)
    print(" sft:", result["eval"]["sft"]["all"], flush=True)

    t0 = time.perf_counter()
    cfg = GRPOConfig(
        model=result["sft"]["model"],
        suite=args.suite,
        split="train",
        out=str(out / "grpo"),
        steps=10_000,
        tasks_per_step=args.tasks_per_step,
        group_size=args.group_size,
        max_new_tokens=args.max_new_tokens,
        max_turns=args.max_turns,
        lr=args.grpo_lr,
        gradient_checkpointing=False,
        threads=args.threads,
        seed=args.seed,
    )
    trainer = GRPOTrainer(cfg, model=chat, suite=suite)
    metrics: list[dict[str, float]] = []
    step_s = 0.0
    while time.perf_counter() + step_s + eval_s * 1.2 + args.margin_s < deadline:
        m = trainer.train_step()
        trainer.log(m)
        metrics.append(m)
        step_s = max(step_s, m["step_s"])
        print(
            f"  grpo step {int(m['step'])}: reward {m['reward']:.2f} pass {m['pass_rate']:.2f} "
            f"{m['step_s']:.1f}s",
            flush=True,
        )
    trainer.export(out / "grpo" / "model")  # beside sft/model: what bench/learn_calls.py loads
    result["grpo"] = {"steps": len(metrics), "seconds": time.perf_counter() - t0}
    stage("grpo", t0)

    t0 = time.perf_counter()
    result["eval"]["grpo"] = evaluate(
        trainer.chat, suite, "test", args.max_new_tokens, args.max_turns, args.test_limit
    )
    stage("eval_grpo", t0)
    print(" grpo:", result["eval"]["grpo"]["all"], flush=True)
    base_rate = result["eval"]["base"]["all"]["pass_rate"]
    result["rise_points"] = {
        s: 100 * (result["eval"][s]["all"]["pass_rate"] - base_rate) for s in ("sft", "grpo")
    }
    save()
    plot(result, metrics, out / "learn.png")
    print(
        f"test pass rate: base {100 * base_rate:.1f}% -> sft "
        f"{100 * result['eval']['sft']['all']['pass_rate']:.1f}% -> grpo "
        f"{100 * result['eval']['grpo']['all']['pass_rate']:.1f}% in {result['elapsed_s'] / 60:.1f} min",
        flush=True,
    )


if __name__ == "__main__":
    main()
