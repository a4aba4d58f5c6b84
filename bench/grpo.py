"""Seconds per GRPO optimizer step and peak memory: agentgym's trainer versus TRL's GRPOTrainer (issue 8).

    python bench/grpo.py                 # both settings, 8 steps each, both trainers, in one run
    python bench/grpo.py --steps 4 --only single

Same model (SmolLM2-135M-Instruct, fp32: the embedded checkpoint, which is what the peer's
converter produces), same 16 get_weather prompts, G=4, one prompt per step (batch 4), lr 1e-6,
temperature 1, beta 0, 2 threads, CPU. TRL runs the peer scripts from ../shared/peers/
(`trl_grpo_tool.py`: single turn, 48 new tokens; `trl_grpo_env.py`: multi-turn
environment_factory, 96 new tokens, 2 tool rounds). agentgym runs `GRPOTrainer` on the same
weather task (the simulated get_weather tool of bench/rollouts.py): single turn = one model turn,
48 new tokens; multi-turn = up to 3 model turns (2 tool rounds + the answer), 96 new tokens each.
Every run is its own process under `/usr/bin/time -v` (peak RSS); s/step excludes the first step.
Differences that remain: TRL primes with a one-shot example in the prompt, agentgym with the
tool-call example its ChatML template carries; TRL's reward is a JSON-shape check, agentgym's the
task rubric.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
PEERS = HERE.parent.parent / "shared" / "peers"

OURS = r"""
import json, sys, time, torch
sys.path.insert(0, {bench!r})
from rollouts import weather_suite
from agentgym.train.grpo import GRPOConfig, GRPOTrainer
torch.set_num_threads(2)
cfg = GRPOConfig(out={out!r}, steps={steps}, tasks_per_step=1, group_size=4, max_new_tokens={tokens},
                 max_turns={turns}, lr=1e-6, temperature=1.0, beta=0.0, suite="weather", split=None,
                 save_every=10_000, filter_zero_advantage=False, seed=0, micro_batch=4)
t = time.perf_counter(); tr = GRPOTrainer(cfg, suite=weather_suite()); init = time.perf_counter() - t
hist = tr.train()
print("RESULT " + json.dumps({{"init_s": init, "step_s": [m["step_s"] for m in hist],
    "gen_s": [m["gen_s"] for m in hist], "gen_tokens_per_s": [m["gen_tokens_per_s"] for m in hist],
    "reward": [m["reward"] for m in hist]}}))
"""


def timed(cmd: list[str], env: dict[str, str] | None = None) -> tuple[str, float]:
    """Run under /usr/bin/time -v; returns stdout+stderr and peak RSS in GB."""
    p = subprocess.run(["/usr/bin/time", "-v", *cmd], capture_output=True, text=True, env=env)
    out = p.stdout + p.stderr
    if p.returncode != 0:
        raise RuntimeError(f"{cmd[:3]} failed ({p.returncode}):\n{out[-3000:]}")
    rss_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", out).group(1))
    return out, rss_kb / 1024 / 1024


def ours(setting: str, steps: int) -> dict:
    tokens, turns = (48, 1) if setting == "single" else (96, 3)
    with tempfile.TemporaryDirectory() as tmp:
        code = OURS.format(
            bench=str(HERE), out=str(Path(tmp) / "run"), steps=steps, tokens=tokens, turns=turns
        )
        out, rss = timed([sys.executable, "-c", code], env={**os.environ, "OMP_NUM_THREADS": "2"})
    r = json.loads(next(line[7:] for line in out.splitlines() if line.startswith("RESULT ")))
    steps_s = r["step_s"][1:] or r["step_s"]
    return {
        "s_per_step": round(statistics.mean(steps_s), 2),
        "s_per_step_median": round(statistics.median(steps_s), 2),
        "peak_rss_gb": round(rss, 2),
        "gen_tokens_per_s": round(statistics.median(r["gen_tokens_per_s"]), 1),
        "mean_reward": round(statistics.mean(r["reward"]), 3),
        "init_s": round(r["init_s"], 1),
    }


def trl(setting: str, steps: int, model: Path) -> dict:
    script = PEERS / ("trl_grpo_tool.py" if setting == "single" else "trl_grpo_env.py")
    with tempfile.TemporaryDirectory() as tmp:
        out, rss = timed(
            [sys.executable, str(script), "--model", str(model), "--steps", str(steps), "--out", tmp],
            env={**os.environ, "OMP_NUM_THREADS": "2", "TRL_EXPERIMENTAL_SILENCE": "1"},
        )
    r = json.loads(next(line[7:] for line in out.splitlines() if line.startswith("RESULT ")))
    return {
        "s_per_step": r.get("mean_step_s_excl_first"),
        "peak_rss_gb": round(rss, 2),
        "gen_tokens_per_s": r.get("gen_tokens_per_s"),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--only", choices=["single", "multi"], default=None)
    ap.add_argument("--skip-trl", action="store_true")
    args = ap.parse_args()
    from agentgym.models import embedded

    model = embedded.prepare(log=lambda *_: None)
    results = {}
    for setting in [args.only] if args.only else ["single", "multi"]:
        row = {"agentgym": ours(setting, args.steps)}
        if not args.skip_trl:
            row["trl_1.16.0"] = trl(setting, args.steps, model)
            a, t = row["agentgym"], row["trl_1.16.0"]
            if t["s_per_step"]:
                row["speedup"] = round(t["s_per_step"] / a["s_per_step"], 2)
            row["memory_ratio"] = round(a["peak_rss_gb"] / t["peak_rss_gb"], 2)
        results[setting] = row
        print(json.dumps({setting: row}), flush=True)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
