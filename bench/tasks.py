"""Benchmark agent making and task generation + validation (issue 4).

    python bench/tasks.py                  # 5,000 agents x3, then >= 10,000 tasks x3 (about 5 min on 2 cores)
    python bench/tasks.py --repeats 1

Agents: `make_agents(catalog, 5000)` (catalog load timed separately). Tasks: `build_suite` with
1,350 agents x 8 tasks per agent — agent making, gold-blueprint generation with template
verbalisation, splits, decontamination, and validation of every task through the environment
(oracle replay must score 1.0, do-nothing < 0.5) — the whole `agentgym tasks generate` job except
writing files. Each repeat runs in a fresh interpreter (no warm caches); medians reported.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys

_AGENTS = """
import json, time
t0 = time.perf_counter()
from agentgym.agents import Catalog, make_agents
from agentgym.repository.store import ToolRepository
cat = Catalog(ToolRepository.load())
t1 = time.perf_counter()
b = make_agents(cat, 5000, seed=0)
t2 = time.perf_counter()
print(json.dumps({"catalog_s": t1 - t0, "make_s": t2 - t1, "agents": len(b.agents),
                  "distinct": len({frozenset(a.tools) for a in b.agents}),
                  "held": sum(r["tools_held"] for r in b.coverage.values()), "tools": len(cat.repo)}))
"""

_TASKS = """
import json, resource, time
from agentgym.taskgen.suitegen import SuiteConfig, build_suite
r = build_suite(SuiteConfig(name="bench", agents=1350, per_agent=8))
oracle_ok = r.counts["shipped"]
print(json.dumps({**r.timings, **{k: v for k, v in r.counts.items() if k != "blueprint_errors"},
                  "blueprint_errors": sum(r.counts["blueprint_errors"].values()),
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def _runs(code: str, repeats: int) -> list[dict]:
    return [
        json.loads(subprocess.check_output([sys.executable, "-c", code]).decode().strip().splitlines()[-1])
        for _ in range(repeats)
    ]


def _median(runs: list[dict], key: str) -> float:
    return round(statistics.median(r[key] for r in runs), 2)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    agents = _runs(_AGENTS, args.repeats)
    tasks = _runs(_TASKS, args.repeats)
    out = {
        "agents": {
            "n": agents[0]["agents"],
            "distinct_tool_sets": agents[0]["distinct"],
            "catalog_s_median": _median(agents, "catalog_s"),
            "make_s_median": _median(agents, "make_s"),
            "tools_held": agents[0]["held"],
            "repository_tools": agents[0]["tools"],
        },
        "tasks": {
            "generated": tasks[0]["generated"],
            "invalid": tasks[0]["invalid"],
            "shipped": tasks[0]["shipped"],
            "near_duplicates_dropped": tasks[0]["near_duplicates_dropped"],
            "blueprint_errors": tasks[0]["blueprint_errors"],
            **{
                f"{k}_median": _median(tasks, k)
                for k in ("agents_s", "generate_s", "split_s", "validate_s", "total_s")
            },
            "tasks_per_s": round(tasks[0]["generated"] / _median(tasks, "total_s"), 1),
            "peak_rss_mb_median": _median(tasks, "peak_rss_mb"),
            "runs_total_s": [round(r["total_s"], 1) for r in tasks],
        },
    }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
