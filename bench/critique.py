"""The self-critique reward for real (issue 7): embedded model as policy AND critic, real rollouts.

    python bench/critique.py                                   # starter suite, 3 tasks, G=4
    python bench/critique.py --suite agentic --tasks 4 --group 4 --out runs/bench-critique

1. Policy rollouts: `--group` episodes per task by the embedded model (SmolLM2-135M-Instruct) at
   `--temperature` (default 1.0), `--max-new-tokens` per turn, at most `--max-turns` turns, on real
   simulated tools through `run_episodes`; each graded by its rubric (the verifiable reward).
2. Self-critique: the same model, greedy, is the critic (`SelfCritiqueReward`, core + prescriptive
   + task rubrics, both orders of every pair, Bradley–Terry and win-rate scores from the same
   comparisons). Agreement with the verifiable ordering is measured on those groups
   (`calibration.calibrate`: distinct-score pairs only; ties excluded and counted).
3. A small model's rollouts often all score the same, which leaves nothing to agree on. So every
   task also gets a *contrast group*: the first two policy rollouts, the oracle (the task's gold
   path, score 1.0) and the do-nothing policy ("I'm sorry, I can't help with that."). Its labels
   are in the results; the agreement of the two kinds of group is reported separately.

Writes `<out>/results.json` (per task: labels, verifiable scores, critic scores, counts; overall:
agreement, unparseable share, position consistency, tokens, wall time), the critic training
examples `<out>/critic_sft.jsonl` and one agreement-history row `<out>/agreement.jsonl`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path

from agentgym.env.tool_env import EnvConfig, ToolUseEnv
from agentgym.models import SamplingParams, load_model
from agentgym.policies import ModelPolicy, NoopPolicy, OraclePolicy
from agentgym.rewards.calibration import (
    Agreement,
    AgreementHistory,
    agreement,
    training_example,
    write_examples,
)
from agentgym.rewards.critique import AGGREGATORS, SelfCritiqueReward
from agentgym.rewards.judge import MemoryCache, Usage
from agentgym.runner import run_episodes
from agentgym.suites import load_suite


def pick_tasks(suite, n: int) -> list[str]:
    """n single-turn tasks with an answer criterion (partial credit: scores can differ), spread over
    agents, simple ones first (a 135M model has a chance at them)."""
    seen, out = set(), []
    for t in sorted(suite, key=lambda t: (t.difficulty != "simple", t.id)):
        kinds = {c.kind for c in t.rubric.criteria}
        if "answer" in kinds and not t.user.follow_ups and t.agent_id not in seen:
            seen.add(t.agent_id)
            out.append(t.id)
        if len(out) == n:
            break
    return out


async def main(args: argparse.Namespace) -> dict:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    suite = load_suite(args.suite)
    task_ids = pick_tasks(suite, args.tasks)
    t0 = time.perf_counter()
    model = load_model("embedded")
    config = EnvConfig(max_turns=args.max_turns)
    policy_sampling = SamplingParams(temperature=args.temperature, max_new_tokens=args.max_new_tokens)

    def env():
        return ToolUseEnv(suite, config=config)

    async def play(make_policy, seeds):
        jobs = [(t, s) for t in task_ids for s in seeds]
        return await run_episodes(
            env,
            make_policy,
            jobs,
            concurrency=1,
            on_done=lambda t: print(
                f"episode {t.id}: score {t.rubric.score if t.rubric else None}", flush=True
            ),
        )

    t_roll = time.perf_counter()
    rollouts = await play(lambda: ModelPolicy(model, policy_sampling), range(args.group))
    oracle = {t.task_id: t for t in await play(lambda: OraclePolicy("hermes"), [0])}
    noop = {t.task_id: t for t in await play(NoopPolicy, [0])}
    rollout_s = time.perf_counter() - t_roll

    critic = SelfCritiqueReward(
        model,
        sampling=SamplingParams(temperature=0.0, max_new_tokens=args.critic_tokens),
        cache=MemoryCache(),
    )
    totals = {"policy": Agreement(), "contrast": Agreement()}
    usage, examples, per_task, samples = Usage(), [], [], []
    n_comp = n_unparse = 0
    consistency: list[float] = []
    t_crit = time.perf_counter()
    for tid in task_ids:
        task = suite.tasks[tid]
        group = sorted((t for t in rollouts if t.task_id == tid), key=lambda t: t.seed or 0)
        row = {"task": tid, "instruction": task.instruction}
        kinds = {
            "policy": (group, [f"policy#{t.seed}" for t in group]),
            "contrast": (
                [*group[:2], oracle[tid], noop[tid]],
                [f"policy#{t.seed}" for t in group[:2]] + ["oracle", "noop"],
            ),
        }
        for kind, (trajs, labels) in kinds.items():
            values = [t.rubric.score if t.rubric else 0.0 for t in trajs]
            r = await critic.compare_group(task, trajs)
            outcomes = [o for c in r.comparisons if (o := c.outcome()) is not None]
            a = agreement(r.comparisons, values)
            totals[kind].add(a)
            usage.add(r.usage)
            n_comp += len(r.comparisons)
            n_unparse += r.unparseable
            if r.position_consistency is not None:
                consistency.append(r.position_consistency)
            examples.extend(e for c in r.comparisons if (e := training_example(c, values, tid)))
            samples.extend({"task": tid, "kind": kind, "reply": c.text} for c in r.comparisons[:1])
            row[kind] = {
                "labels": labels,
                "verifiable": values,
                "final_answers": [(t.messages[-1].content or "")[:160] for t in trajs],
                "tool_calls": [t.metrics.get("tool_calls", 0) for t in trajs],
                "bradley_terry": r.scores,
                "win_rate": AGGREGATORS["win_rate"](len(trajs), outcomes),
                "verdicts": {v: sum(c.verdict == v for c in r.comparisons) for v in ("A", "B", "tie", None)},
                "agreement": a.as_dict(),
                "position_consistency": r.position_consistency,
            }
        per_task.append(row)
        print(json.dumps({"task": tid} | {k: row[k]["agreement"] for k in kinds}), flush=True)
    critic_s = time.perf_counter() - t_crit
    both = Agreement()
    for a in totals.values():
        both.add(a)
    write_examples(out / "critic_sft.jsonl", examples)
    AgreementHistory(out / "agreement.jsonl").record(0, both, suite=args.suite, examples=len(examples))
    policy_values = [t.rubric.score if t.rubric else 0.0 for t in rollouts]
    result = {
        "command": "python bench/critique.py "
        + " ".join(f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items()),
        "model": model.name,
        "suite": args.suite,
        "tasks": task_ids,
        "group": args.group,
        "policy_verifiable_mean": sum(policy_values) / max(1, len(policy_values)),
        "policy_groups_all_equal": sum(
            len({r["policy"]["verifiable"][i] for i in range(args.group)}) == 1 for r in per_task
        ),
        "agreement": {k: a.as_dict() for k, a in totals.items()} | {"all": both.as_dict()},
        "comparisons": n_comp,
        "unparseable": n_unparse,
        "unparseable_share": n_unparse / max(1, n_comp),
        "position_consistency_mean": sum(consistency) / len(consistency) if consistency else None,
        "critic_usage": {
            "calls": usage.calls,
            "cached": usage.cached,
            "prompt_tokens": usage.prompt_tokens,
            "completion_tokens": usage.completion_tokens,
        },
        "training_examples": len(examples),
        "seconds": {"rollouts": rollout_s, "critic": critic_s, "total": time.perf_counter() - t0},
        "per_task": per_task,
        "sample_critic_replies": samples[:4],
    }
    (out / "results.json").write_text(json.dumps(result, indent=2, default=str) + "\n")
    return result


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--suite", default="starter")
    p.add_argument("--tasks", type=int, default=3)
    p.add_argument("--group", type=int, default=4)
    p.add_argument("--temperature", type=float, default=1.0)
    p.add_argument("--max-new-tokens", type=int, default=96)
    p.add_argument("--max-turns", type=int, default=3)
    p.add_argument("--critic-tokens", type=int, default=80)
    p.add_argument("--out", default="runs/bench-critique")
    r = asyncio.run(main(p.parse_args()))
    print(
        json.dumps({k: v for k, v in r.items() if k not in ("per_task", "sample_critic_replies")}, indent=2)
    )
