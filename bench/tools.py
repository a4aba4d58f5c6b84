"""Benchmark the tool repository: crawl import throughput, synthetic generation throughput, load time.

    python bench/tools.py                      # all three (about 5 minutes on 2 cores)
    python bench/tools.py --skip-import        # generation and load only

Generation builds every taxonomy domain, meta-validates both schemas of every tool and runs every
tool's worked example (as `agentgym tools generate` does) with 1 and 2 worker processes, each run
in a fresh interpreter. Load time is `ToolRepository.load()` (all sources,
lazy) and then validating every domain (`repo.domain(name)` for all) — per 10,000 tools.
Medians of repeated runs.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

from agentgym.repository.store import SOURCES, ToolRepository

CRAWL = Path(__file__).resolve().parents[2] / "shared" / "data" / "mcp-crawl" / "smithery-toucan"


def bench_import(repeats: int) -> dict:
    from agentgym.repository.crawl import import_crawl

    times, result = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = import_crawl(CRAWL)
        times.append(time.perf_counter() - t0)
    read = result.report.totals["read"]
    med = statistics.median(times)
    return {
        "files": len(list(CRAWL.glob("*.json"))),
        "tool_entries_read": read,
        "seconds_median": round(med, 2),
        "entries_per_s": round(read / med) if read else None,
    }


_GENERATE = """
import sys, time
from agentgym.repository.synth.generate import CompositionalSource, generate
t0 = time.perf_counter()
domains, rep = generate(CompositionalSource(), seed=0, workers=int(sys.argv[1]))
print(time.perf_counter() - t0, rep.domains, rep.tools, len(rep.rejected))
"""


def bench_generate(repeats: int) -> dict:
    """Each run in a fresh interpreter, as `agentgym tools generate` runs: no validator or schema
    cache left warm by an earlier repeat (imports not timed)."""
    out = {}
    for workers in (1, 2):
        times, tools, domains = [], 0, 0
        for _ in range(repeats):
            line = subprocess.run([sys.executable, "-c", _GENERATE, str(workers)], check=True,
                                  capture_output=True, text=True).stdout.split()  # fmt: skip
            times.append(float(line[0]))
            domains, tools, rejected = int(line[1]), int(line[2]), int(line[3])
            assert rejected == 0
        med = statistics.median(times)
        out[f"workers_{workers}"] = {
            "domains": domains,
            "tools": tools,
            "seconds_median": round(med, 2),
            "tools_per_s": round(tools / med),
        }
    return out


def bench_load(repeats: int) -> dict:
    lazy, full, n = [], [], 0
    for _ in range(repeats):
        t0 = time.perf_counter()
        repo = ToolRepository.load()
        lazy.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        for d in repo.domain_names():
            repo.domain(d)
        full.append(time.perf_counter() - t0 + lazy[-1])
        n = len(repo)
    per = 10_000 / max(n, 1)
    return {
        "tools": n,
        "by_source": {
            s: sum(len(repo.raw_domain(d).get("tools", [])) for d in repo.domain_names(s)) for s in SOURCES
        },
        "lazy_load_s_median": round(statistics.median(lazy), 3),
        "lazy_load_s_per_10k": round(statistics.median(lazy) * per, 3),
        "validated_load_s_median": round(statistics.median(full), 3),
        "validated_load_s_per_10k": round(statistics.median(full) * per, 3),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--skip-import", action="store_true")
    args = ap.parse_args()
    res = {}
    if not args.skip_import:
        res["crawl_import"] = bench_import(args.repeats)
    res["generate"] = bench_generate(args.repeats)
    res["load"] = bench_load(args.repeats)
    print(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
