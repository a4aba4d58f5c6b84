"""Benchmark: simulated tool calls per second through the full `env.step` path, and the embedded
model's generation speed.

Env throughput replays every starter task's gold path (the oracle) as hermes text actions, so each
step parses, validates, executes on the simulator, builds the observation and — at the end of the
episode — grades the rubric. Two figures:

- env-only: tool calls / seconds spent inside `reset` + `step` (the oracle's actions are rendered
  once up front, faults off, so nothing but the environment is timed);
- with-policy: the same loop with `OraclePolicy` choosing each action from the decoded observation
  (what an RL loop with a cheap policy sees).

Pinned to one core (`os.sched_setaffinity`) and repeated; medians reported.

    python bench/env_step.py                   # env throughput (about 30 s)
    python bench/env_step.py --model           # also the embedded model's tokens/s
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import time

from agentgym.asyncio_bridge import run_now
from agentgym.env import ToolUseEnv, decode_observation
from agentgym.parsing import render_calls
from agentgym.policies.oracle import OraclePolicy


def gold_actions(env: ToolUseEnv) -> dict[str, list[str]]:
    out = {}
    for tid in env.task_ids:
        task = env.suite.tasks[tid]
        out[tid] = [
            t.answer
            if t.answer is not None
            else render_calls("hermes", [(c.tool, c.arguments) for c in t.calls])
            for t in task.gold
        ]
    return out


def env_only(env: ToolUseEnv, actions: dict[str, list[str]], episodes: int) -> tuple[int, float, int]:
    ids = list(actions)
    calls = steps = 0
    spent = 0.0
    for k in range(episodes):
        tid = ids[k % len(ids)]
        t0 = time.perf_counter()
        env.reset(seed=k, options={"task_id": tid})
        for a in actions[tid]:
            _, _, term, trunc, info = env.step(a)
            steps += 1
            calls += info["calls"]
            if term or trunc:
                break
        spent += time.perf_counter() - t0
        assert info["score"] == 1.0, (tid, info)
    return calls, spent, steps


def with_policy(env: ToolUseEnv, episodes: int) -> tuple[int, float]:
    ids = env.task_ids
    calls = 0
    t0 = time.perf_counter()
    for k in range(episodes):
        policy = OraclePolicy()
        obs, info = env.reset(seed=k, options={"task_id": ids[k % len(ids)]})
        policy.start(env.task, decode_observation(obs), info["tools"])
        o = decode_observation(obs)
        while True:
            obs, _, term, trunc, info = env.step(run_now(policy.act(o)))
            calls += info["calls"]
            o = decode_observation(obs)
            if term or trunc:
                break
    return calls, time.perf_counter() - t0


def model_speed(n: int) -> dict[str, float]:
    """Embedded model on every core: decode speed on a short prompt, and a whole agent turn on a
    real starter prompt (system prompt + 10 tool schemas, ~1,350 tokens of prefill)."""
    import torch

    from agentgym.models import SamplingParams, load_model
    from agentgym.suites import load_suite

    os.sched_setaffinity(0, set(range(os.cpu_count() or 1)))
    torch.set_num_threads(os.cpu_count() or 1)
    t0 = time.perf_counter()
    model = load_model("embedded")
    load_s = time.perf_counter() - t0
    short = [{"role": "user", "content": "Write a short paragraph about the sea."}]
    rates = []
    for i in range(n):
        c = asyncio.run(
            model.generate(short, None, SamplingParams(max_new_tokens=96, temperature=0.7, seed=i))
        )
        rates.append(len(c.token_ids) / (c.gen_ms / 1000))
    suite = load_suite("starter")
    task = suite.tasks["calendar-dentist-time"]
    tools = [t.openai_schema() for t in suite.tools_for(task.agent_id)]
    msgs = [
        {"role": "system", "content": suite.agents[task.agent_id].system_prompt},
        {"role": "user", "content": task.instruction},
    ]
    turns = []
    for i in range(n):
        c = asyncio.run(
            model.generate(msgs, tools, SamplingParams(max_new_tokens=64, temperature=0.7, seed=i))
        )
        turns.append((c.gen_ms / 1000, len(c.token_ids), c.prompt_tokens))
    return {
        "load_s": round(load_s, 2),
        "threads": torch.get_num_threads(),
        "decode_tokens_per_s_median": round(statistics.median(rates), 1),
        "agent_turn_prompt_tokens": turns[0][2],
        "agent_turn_s_median": round(statistics.median(t[0] for t in turns), 2),
        "agent_turn_tokens_per_s_median": round(statistics.median(t[1] / t[0] for t in turns), 1),
        "runs": n,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--episodes", type=int, default=3000)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--model", action="store_true", help="also measure the embedded model")
    ap.add_argument("--cores", type=int, default=1)
    args = ap.parse_args()
    os.sched_setaffinity(0, set(range(args.cores)))
    env = ToolUseEnv("starter")
    actions = gold_actions(env)
    env_only(env, actions, 200)  # warm caches
    runs = []
    for _ in range(args.repeats):
        calls, spent, steps = env_only(env, actions, args.episodes)
        runs.append((calls / spent, steps / spent, args.episodes / spent))
    pol = []
    for _ in range(args.repeats):
        calls, spent = with_policy(env, args.episodes)
        pol.append(calls / spent)
    result = {
        "tasks": len(actions),
        "episodes_per_run": args.episodes,
        "repeats": args.repeats,
        "cores": args.cores,
        "env_only_calls_per_s_median": round(statistics.median(r[0] for r in runs)),
        "env_only_steps_per_s_median": round(statistics.median(r[1] for r in runs)),
        "env_only_episodes_per_s_median": round(statistics.median(r[2] for r in runs)),
        "with_oracle_policy_calls_per_s_median": round(statistics.median(pol)),
        "python": platform.python_version(),
    }
    if args.model:
        result["embedded_model"] = model_speed(5)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
