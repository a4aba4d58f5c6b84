"""Benchmark the Docker sandboxes (issue 5).

    python bench/sandbox.py                    # about 3 minutes on 2 cores
    python bench/sandbox.py --concurrent 150

- cold start: create + start a sandbox and run its first command (`true`), p50 over 15 starts;
- warm exec: `true` and `echo` in a started sandbox, p50 / p95 over 300 runs (the whole round trip
  through the Docker attach stream and the in-container runner);
- the same command through the Docker CLI (`docker exec`), for reference;
- max concurrent: start N sandboxes at once (through a pool: host cap, creation-rate limit), run a
  command in every one while all are up, count failures, note the memory the host has left;
- coding-task episodes per minute: oracle episodes of the `coding` suite (write the solution,
  run the hidden tests in the sandbox, grade), one at a time and four at a time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import time
from pathlib import Path

from agentgym.sandbox.docker_sandbox import DockerSandbox
from agentgym.sandbox.image import build_image
from agentgym.sandbox.pool import PoolConfig, SandboxPool


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


async def cold(n: int) -> dict:
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        async with DockerSandbox() as sb:
            await sb.exec(["true"])
            times.append(time.perf_counter() - t0)
    return {"n": n, "p50_s": round(statistics.median(times), 3), "p95_s": round(pct(times, 0.95), 3)}


async def warm(n: int) -> dict:
    async with DockerSandbox() as sb:
        out = {}
        for name, argv in (("true", ["true"]), ("echo", ["echo", "hello"])):
            await sb.exec(argv)
            ts = []
            for _ in range(n):
                t0 = time.perf_counter()
                await sb.exec(argv)
                ts.append(time.perf_counter() - t0)
            out[name] = {
                "p50_ms": round(1000 * statistics.median(ts), 2),
                "p95_ms": round(1000 * pct(ts, 0.95), 2),
            }
        cli = []
        for _ in range(30):
            t0 = time.perf_counter()
            subprocess.run(["docker", "exec", sb.id, "true"], check=True)
            cli.append(time.perf_counter() - t0)
        out["docker_exec_cli"] = {"p50_ms": round(1000 * statistics.median(cli), 1), "n": 30}
        return out


def mem_available_mb() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable"):
            return int(line.split()[1]) // 1024
    return -1


async def concurrent(n: int) -> dict:
    before = mem_available_mb()
    t0 = time.perf_counter()
    async with SandboxPool(config=PoolConfig(warm=0, max_live=n + 8, create_per_s=20)) as pool:
        got = await asyncio.gather(*(pool.acquire() for _ in range(n)), return_exceptions=True)
        boxes = [b for b in got if isinstance(b, DockerSandbox)]
        started_s = time.perf_counter() - t0
        during = mem_available_mb()
        results = await asyncio.gather(
            *(b.exec(["python3", "-c", "print(6*7)"]) for b in boxes), return_exceptions=True
        )
        ok = sum(1 for r in results if not isinstance(r, BaseException) and r.ok and r.stdout == "42\n")
        await asyncio.gather(*(pool.release(b) for b in boxes))
    return {
        "requested": n,
        "started": len(boxes),
        "commands_ok": ok,
        "failures": n - ok,
        "all_started_in_s": round(started_s, 1),
        "mem_available_mb_before": before,
        "mem_available_mb_with_all_up": during,
        "mb_per_sandbox": round((before - during) / max(1, len(boxes)), 1),
    }


def coding(concurrency: int, n: int) -> dict:
    from agentgym.env.tool_env import ToolUseEnv
    from agentgym.policies.oracle import OraclePolicy
    from agentgym.runner import run_episodes
    from agentgym.suites import load_suite

    suite = load_suite("coding")
    ids = sorted(suite.tasks)[:n]
    t0 = time.perf_counter()
    trajs = asyncio.run(
        run_episodes(lambda: ToolUseEnv(suite), OraclePolicy, [(i, 0) for i in ids], concurrency=concurrency)
    )
    took = time.perf_counter() - t0
    return {
        "episodes": len(trajs),
        "concurrency": concurrency,
        "seconds": round(took, 1),
        "episodes_per_min": round(60 * len(trajs) / took, 1),
        "mean_reward": round(statistics.mean(t.reward for t in trajs), 3),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--concurrent", type=int, default=120)
    args = ap.parse_args()
    tag, _, _ = build_image()
    out = {"image": tag}
    out["cold_start"] = asyncio.run(cold(15))
    out["warm_exec"] = asyncio.run(warm(300))
    out["max_concurrent"] = asyncio.run(concurrent(args.concurrent))
    out["coding_episodes"] = [coding(1, 16), coding(4, 32)]
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
