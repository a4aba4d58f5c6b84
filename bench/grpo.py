"""Seconds per GRPO optimizer step and peak memory: agentgym's trainer versus TRL's GRPOTrainer (issue 8).

    python bench/grpo.py                 # both settings, 6 steps each, every trainer, in one run
    python bench/grpo.py --steps 4 --only single --no-int8

Same model (SmolLM2-135M-Instruct, fp32: the embedded checkpoint, which is what the peer's
converter produces), same 16 get_weather requests, G=4, one prompt per step (batch 4), lr 1e-6,
temperature 1, beta 0, 2 threads, CPU. TRL runs the peer scripts from ../shared/peers/
(`trl_grpo_tool.py`: single turn, 48 new tokens; `trl_grpo_env.py`: multi-turn
environment_factory, 96 new tokens, 2 tool rounds). agentgym runs `GRPOTrainer` on `peer_suite`:
the peer's system prompts and one-shot examples as an agent with `examples`. Single turn: one
model turn of 48 new tokens, SmolLM2's own template, so the prompt is the peer's token for token
(113), reward = the reply names get_weather and the city. Multi-turn: up to 3 model turns (2 tool
rounds + the answer) against a simulated get_weather tool, 96 sampled tokens per episode in all
(`completion_budget`, as the peer's `max_completion_length`, which also counts the tool results),
agentgym's ChatML tool template (262 prompt tokens; the peer's Qwen2.5 template: 284).
Rows: `agentgym` (the default sampler: the trained fp32 module itself, fp32 AdamW),
`agentgym_adamw_bf16` (the same with `optimizer: adamw_bf16`, AdamW's moments stored in bf16),
`agentgym_int8`
(`generator: local_int8`, an int8 copy requantized after each step, mismatch corrected through
`is_cap`; `is_clip_frac` is the share of tokens whose weight hit the cap), `trl_1.16.0`.
Every run is its own process under `/usr/bin/time -v` (peak RSS); s/step excludes the first step.
With `--rounds N` every row runs N times, the order reversed every other round; a row's figures are
the medians over its rounds (peak RSS: the largest), and the ratios to TRL are taken within each
round (`speedup_vs_trl_rounds`), their median reported (memory: the largest).
"""

from __future__ import annotations

import argparse
import functools
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
from grpo import peer_suite
from agentgym.models import embedded
from agentgym.models.transformers_model import TransformersChatModel
from agentgym.train.grpo import GRPOConfig, GRPOTrainer
torch.set_num_threads(2)
cfg = GRPOConfig(out={out!r}, steps={steps}, tasks_per_step=1, group_size=4, max_new_tokens={tokens},
                 max_turns={turns}, lr=1e-6, temperature=1.0, beta=0.0, suite="weather", split=None,
                 save_every=10_000, filter_zero_advantage=False, seed=0, micro_batch=4,
                 generator={generator!r}, completion_budget={budget}, optimizer={optimizer!r})
t = time.perf_counter()
path = embedded.prepare(log=lambda *_: None)
chat = TransformersChatModel.from_pretrained(path, name="smollm2", tool_format="hermes")
if {turns} == 1:  # the peer's prompt: SmolLM2's own template, which renders no tool list
    chat.chat_template = chat.tokenizer.chat_template
tr = GRPOTrainer(cfg, model=chat, suite=peer_suite({setting!r}))
init = time.perf_counter() - t
first = tr.task_ids[0]
prompt = chat.sequence(tr.suite.agents["wx"].opening(tr.suite.tasks[first].instruction),
                       [t.openai_schema() for t in tr.suite.tools_for("wx")], add_generation_prompt=True)
hist = tr.train()
print("RESULT " + json.dumps({{"init_s": init, "step_s": [m["step_s"] for m in hist],
    "gen_s": [m["gen_s"] for m in hist], "gen_tokens_per_s": [m["gen_tokens_per_s"] for m in hist],
    "train_s": [m["train_s"] for m in hist], "completion_tokens": [m["completion_tokens"] for m in hist],
    "reward": [m["reward"] for m in hist], "prompt_tokens": len(prompt.ids),
    "is_clip_frac": [m.get("is_clip_frac", 0.0) for m in hist]}}))
"""


CITIES = [
    "Paris",
    "Tokyo",
    "Berlin",
    "Lima",
    "Cairo",
    "Oslo",
    "Delhi",
    "Quito",
    "Rome",
    "Seoul",
    "Dakar",
    "Hanoi",
    "Madrid",
    "Austin",
    "Perth",
    "Nairobi",
]
"""The peer scripts' 16 cities, in their order."""
SINGLE_SYSTEM = (
    "You can call one tool: get_weather(city: str). To call it, reply with ONLY a JSON object "
    'like {"name": "get_weather", "arguments": {"city": "<city>"}}.'
)
MULTI_SYSTEM = (
    "You are a weather assistant. Always call the get_weather tool first, then answer with the result."
)


def peer_suite(setting: str):
    """The peer scripts' prompts as an agentgym suite: their system prompt, their one-shot example
    (`AgentSpec.examples`) and their 16 requests. Single turn: the reward is the peer's check (the
    reply names get_weather and the city; SmolLM2's own template, no tool list, so the prompt is the
    peer's token for token). Multi-turn: a real get_weather tool, rendered by agentgym's ChatML tool
    template (the peer renders TRL's Qwen2.5 one), reward = called with the city + answered."""
    import json as _json

    from rollouts import weather_world

    from agentgym.spec.agent import AgentSpec
    from agentgym.spec.task import TaskSpec
    from agentgym.suites.suite import TaskSuite

    temps = {c: 10 + 3 * i for i, c in enumerate(CITIES)}
    world = weather_world(temps, city_doc="The city name.")
    tool = "weather__get_weather"
    if setting == "single":
        system, ask = SINGLE_SYSTEM, "What is the weather in {} right now? Use the tool."
        shot = _json.dumps({"name": "get_weather", "arguments": {"city": "Boston"}})
    else:
        system, ask = MULTI_SYSTEM, "What is the weather in {}?"
        call = _json.dumps({"name": tool, "arguments": {"city": "Boston"}})
        shot = f"<tool_call>\n{call}\n</tool_call>"
    agent = AgentSpec(
        id="wx",
        name="Weather",
        system_prompt=system,
        tools=(tool,),
        examples=[{"role": "user", "content": ask.format("Boston")}, {"role": "assistant", "content": shot}],
    )
    tasks = {}
    for city, temp in temps.items():
        if setting == "single":
            criteria = [{"id": "call", "kind": "answer", "facts": ["get_weather", city]}]
        else:
            criteria = [
                {"id": "called", "kind": "call", "tool": tool, "args": {"city": city}, "succeeded": None},
                {"id": "temp", "kind": "answer", "facts": [f"{temp} C"]},
            ]
        tid = f"weather-{city.lower()}"
        tasks[tid] = TaskSpec.model_validate(
            {
                "id": tid,
                "agent_id": "wx",
                "instruction": ask.format(city),
                "initial_state": world.seed.model_dump(),
                "gold": [
                    {"calls": [{"tool": tool, "arguments": {"city": city}}]},
                    {"answer": f"{city}: {temp} C, clear"},
                ],
                "rubric": {"criteria": criteria},
            }
        )
    return TaskSuite("weather", world, {"wx": agent}, tasks)


def timed(cmd: list[str], env: dict[str, str] | None = None) -> tuple[str, float]:
    """Run under /usr/bin/time -v; returns stdout+stderr and peak RSS in GB."""
    p = subprocess.run(["/usr/bin/time", "-v", *cmd], capture_output=True, text=True, env=env)
    out = p.stdout + p.stderr
    if p.returncode != 0:
        raise RuntimeError(f"{cmd[:3]} failed ({p.returncode}):\n{out[-3000:]}")
    rss_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", out).group(1))
    return out, rss_kb / 1024 / 1024


def ours(setting: str, steps: int, generator: str = "local", optimizer: str = "adamw") -> dict:
    tokens, turns = (48, 1) if setting == "single" else (96, 3)
    with tempfile.TemporaryDirectory() as tmp:
        code = OURS.format(
            bench=str(HERE),
            out=str(Path(tmp) / "run"),
            steps=steps,
            tokens=tokens,
            turns=turns,
            setting=setting,
            generator=generator,
            optimizer=optimizer,
            budget=None if setting == "single" else tokens,
        )
        out, rss = timed([sys.executable, "-c", code], env={**os.environ, "OMP_NUM_THREADS": "2"})
    r = json.loads(next(line[7:] for line in out.splitlines() if line.startswith("RESULT ")))
    steps_s = r["step_s"][1:] or r["step_s"]
    return {
        "s_per_step": round(statistics.mean(steps_s), 2),
        "s_per_step_median": round(statistics.median(steps_s), 2),
        "peak_rss_gb": round(rss, 2),
        "gen_tokens_per_s": round(statistics.median(r["gen_tokens_per_s"]), 1),
        "gen_s_median": round(statistics.median(r["gen_s"][1:] or r["gen_s"]), 2),
        "train_s_median": round(statistics.median(r["train_s"][1:] or r["train_s"]), 2),
        "completion_tokens_mean": round(statistics.mean(r["completion_tokens"]), 1),
        "prompt_tokens": r["prompt_tokens"],
        "mean_reward": round(statistics.mean(r["reward"]), 3),
        "is_clip_frac": round(statistics.mean(r["is_clip_frac"]), 4),
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
    steps_s = r["step_s"][1:] or r["step_s"]
    return {
        "s_per_step": r.get("mean_step_s_excl_first"),
        "s_per_step_median": round(statistics.median(steps_s), 2),
        "peak_rss_gb": round(rss, 2),
        "gen_tokens_per_s": r.get("gen_tokens_per_s"),
    }


ROWS = {
    "agentgym": ("local", "adamw"),
    "agentgym_adamw_bf16": ("local", "adamw_bf16"),
    "agentgym_int8": ("local_int8", "adamw"),
}
"""agentgym's rows: name -> (generator, optimizer)."""


def combine(runs: list[dict]) -> dict:
    """One row's rounds as one row: the median of each figure over the rounds, the largest peak
    RSS, and every round's step time."""
    out = {
        k: round(statistics.median(r[k] for r in runs), 3)
        for k in runs[0]
        if isinstance(runs[0][k], (int, float))
    }
    out["peak_rss_gb"] = max(r["peak_rss_gb"] for r in runs)
    out["s_per_step_rounds"] = [r["s_per_step"] for r in runs]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="run every row this many times, alternating the order (agentgym rows then TRL, then the "
        "reverse); ratios are taken within a round, and their median is reported",
    )
    ap.add_argument("--only", choices=["single", "multi"], default=None)
    ap.add_argument("--skip-trl", action="store_true")
    ap.add_argument("--only-rows", default=None, help="comma-separated agentgym rows to run (default: all)")
    ap.add_argument(
        "--no-int8",
        action="store_true",
        help="skip the row with agentgym's int8 sampler (generator: local_int8)",
    )
    args = ap.parse_args()
    from agentgym.models import embedded

    model = embedded.prepare(log=lambda *_: None)
    results = {}
    for setting in [args.only] if args.only else ["single", "multi"]:
        wanted = ROWS if args.only_rows is None else {k: ROWS[k] for k in args.only_rows.split(",")}
        if args.no_int8:
            wanted.pop("agentgym_int8", None)
        jobs = {name: functools.partial(ours, setting, args.steps, *how) for name, how in wanted.items()}
        if not args.skip_trl:
            jobs["trl_1.16.0"] = functools.partial(trl, setting, args.steps, model)
        runs: dict[str, list[dict]] = {name: [] for name in jobs}
        for r in range(args.rounds):
            for name in list(jobs) if r % 2 == 0 else list(jobs)[::-1]:
                runs[name].append(jobs[name]())
                print(json.dumps({setting: {name: runs[name][-1], "round": r}}), flush=True)
        row = {name: combine(rs) for name, rs in runs.items()}
        if not args.skip_trl:
            t = runs["trl_1.16.0"]
            for name in [k for k in row if k.startswith("agentgym")]:
                a = row[name]
                speed = [tr["s_per_step"] / o["s_per_step"] for tr, o in zip(t, runs[name], strict=True)]
                median_speed = [
                    tr["s_per_step_median"] / o["s_per_step_median"]
                    for tr, o in zip(t, runs[name], strict=True)
                ]
                memory = [o["peak_rss_gb"] / tr["peak_rss_gb"] for tr, o in zip(t, runs[name], strict=True)]
                a["speedup_vs_trl"] = round(statistics.median(speed), 2)
                a["median_speedup_vs_trl"] = round(statistics.median(median_speed), 2)
                a["memory_ratio_vs_trl"] = round(max(memory), 2)
                a["speedup_vs_trl_rounds"] = [round(x, 2) for x in speed]
                a["memory_ratio_vs_trl_rounds"] = [round(x, 2) for x in memory]
        results[setting] = row
        print(json.dumps({setting: row}), flush=True)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
