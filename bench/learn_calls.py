"""What a `bench/learn.py` run's model does on the test split: each episode's calls, greedy.

    python bench/learn_calls.py runs/learn_seed1 --stage grpo --difficulty complex

Loads `<run>/<stage>/model` and plays each test task of the suite once, the way `learn.py`
evaluates (greedy, its --max-new-tokens and --max-turns). Prints one line per episode: pass, rubric
score, the calls in order, and the start of the final reply. Last come the call patterns and how
often each occurred. This is how a run whose GRPO stage did not move the test rate is diagnosed
(bench/RESULTS.md, seed 1).
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

from learn import play

from agentgym.suites import load_suite
from agentgym.train.grpo import load_policy_model


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run", type=Path, help="a bench/learn.py --out folder")
    ap.add_argument("--stage", choices=("sft", "grpo"), default="grpo")
    ap.add_argument("--difficulty", default=None, help="only tasks of this difficulty")
    args = ap.parse_args()
    learned = json.loads((args.run / "learn.json").read_text())["args"]
    chat = load_policy_model(str(args.run / args.stage / "model"))
    suite = load_suite(learned["suite"])
    ids = sorted(
        t for t, s in suite.tasks.items() if s.split == "test" and args.difficulty in (None, s.difficulty)
    )
    trajs = play(chat, suite, ids, learned["max_new_tokens"], learned["max_turns"])
    patterns: Counter[str] = Counter()
    for tr in trajs:
        said = [m for m in tr.messages if m.role == "assistant"]
        calls = [c.function for m in said for c in (m.tool_calls or ())]
        patterns[" > ".join(c.name for c in calls) or "(no call)"] += 1
        shown = ", ".join(f"{c.name}({c.arguments})" for c in calls)
        last = (said[-1].content or "")[:80] if said else ""
        ok, score = (tr.rubric.passed, tr.rubric.score) if tr.rubric else (False, 0.0)
        print(f"{tr.task_id}  pass={ok}  score={score:.2f}  {shown}  {last!r}")
    for pattern, n in patterns.most_common():
        print(f"{n:4d}  {pattern}")


if __name__ == "__main__":
    main()
