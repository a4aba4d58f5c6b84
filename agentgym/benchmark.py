"""Benchmark metrics and the report: pass@1, pass@k, pass^k, by difficulty and category, side by side.

`pass_at_k(n, c, k)` is the unbiased estimator of "at least one of k samples passes"
(1 − C(n−c, k) / C(n, k)); `pass_hat_k(n, c, k)` is τ-bench's pass^k, "all k pass"
(C(c, k) / C(n, k)); both average over tasks. `summarize(trajs, suite, k)` gives, for one model:
those numbers overall, per difficulty and per category (of the agent's first domain), plus mean
tokens, turns, tool calls, errors, latency and cost per episode. `write_report(summaries, out)`
writes `summary.json` and a self-contained `report.html` (plots as inline PNG: pass@1 by
difficulty, and pass^k against k) with the models side by side.
"""

from __future__ import annotations

import base64
import html
import io
import json
import statistics
from collections import defaultdict
from collections.abc import Sequence
from math import comb
from pathlib import Path
from typing import Any

from agentgym.spec.trajectory import Trajectory
from agentgym.suites.suite import TaskSuite


def pass_at_k(n: int, c: int, k: int) -> float:
    """P(at least one of k draws without replacement from n samples, c of them passing, passes)."""
    if k > n:
        raise ValueError(f"k={k} exceeds the n={n} samples")
    if n - c < k:
        return 1.0
    return 1.0 - comb(n - c, k) / comb(n, k)


def pass_hat_k(n: int, c: int, k: int) -> float:
    """τ-bench pass^k: P(all of k draws pass)."""
    if k > n:
        raise ValueError(f"k={k} exceeds the n={n} samples")
    return comb(c, k) / comb(n, k)


def _category(suite: TaskSuite, agent_id: str) -> str:
    agent = suite.agents.get(agent_id)
    if agent and agent.domains and agent.domains[0] in suite.world.domains:
        return suite.world.domains[agent.domains[0]].category
    return "other"


def _rates(groups: dict[str, list[bool]], k: int) -> dict[str, float]:
    ns = {t: len(v) for t, v in groups.items()}
    kk = min([k, *ns.values()]) if ns else k
    out = {"tasks": float(len(groups)), "episodes": float(sum(ns.values()))}
    if not groups:
        return out
    out["pass@1"] = statistics.mean(sum(v) / len(v) for v in groups.values())
    for j in sorted({1, kk}):
        out[f"pass@{j}"] = statistics.mean(pass_at_k(len(v), sum(v), j) for v in groups.values())
        out[f"pass^{j}"] = statistics.mean(pass_hat_k(len(v), sum(v), j) for v in groups.values())
    return out


def summarize(
    trajs: Sequence[Trajectory], suite: TaskSuite, k: int, model: str, price_per_mtok: float = 0.0
) -> dict[str, Any]:
    by_task: dict[str, list[bool]] = defaultdict(list)
    for t in trajs:
        by_task[t.task_id].append(bool(t.rubric and t.rubric.passed))
    by_diff: dict[str, dict[str, list[bool]]] = defaultdict(dict)
    by_cat: dict[str, dict[str, list[bool]]] = defaultdict(dict)
    for tid, v in by_task.items():
        task = suite.tasks[tid]
        by_diff[task.difficulty][tid] = v
        by_cat[_category(suite, task.agent_id)][tid] = v
    tokens = [t.metrics.get("tokens", 0.0) for t in trajs]
    n = max(1, len(trajs))
    curve = {}
    kmax = min((len(v) for v in by_task.values()), default=0)
    for j in range(1, kmax + 1):
        curve[j] = statistics.mean(pass_hat_k(len(v), sum(v), j) for v in by_task.values())
    return {
        "model": model,
        "k": k,
        "overall": _rates(by_task, k),
        "by_difficulty": {d: _rates(g, k) for d, g in sorted(by_diff.items())},
        "by_category": {c: _rates(g, k) for c, g in sorted(by_cat.items())},
        "pass_hat_curve": curve,
        "mean_score": sum(t.reward for t in trajs) / n,
        "tokens_per_episode": sum(tokens) / n,
        "turns_per_episode": sum(t.metrics.get("turns", 0.0) for t in trajs) / n,
        "tool_calls_per_episode": sum(t.metrics.get("tool_calls", 0.0) for t in trajs) / n,
        "errors_per_episode": sum(t.metrics.get("errors", 0.0) for t in trajs) / n,
        "latency_s_per_episode": sum(t.timings.get("total_s", 0.0) for t in trajs) / n,
        "cost_usd": sum(tokens) / 1e6 * price_per_mtok,
    }


def _png(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    return base64.b64encode(buf.getvalue()).decode()


def _plots(summaries: Sequence[dict[str, Any]]) -> list[tuple[str, str]]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = []
    levels = sorted({d for s in summaries for d in s["by_difficulty"]})
    fig, ax = plt.subplots(figsize=(6, 3.2))
    width = 0.8 / max(1, len(summaries))
    for i, s in enumerate(summaries):
        vals = [s["by_difficulty"].get(d, {}).get("pass@1", 0.0) for d in levels]
        bars = ax.bar([x + i * width for x in range(len(levels))], vals, width, label=s["model"])
        ax.bar_label(bars, fmt="%.2f", fontsize=7)  # a 0.00 bar is otherwise invisible
    ax.set_xticks([x + width * (len(summaries) - 1) / 2 for x in range(len(levels))], levels)
    ax.set_ylim(0, 1.12)  # room for the 1.00 labels
    ax.set_ylabel("pass@1")
    ax.legend(fontsize=8)
    ax.set_title("pass@1 by difficulty")
    out.append(("pass@1 by difficulty", _png(fig)))
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(6, 3.2))
    for i, s in enumerate(summaries):
        curve = {int(k): v for k, v in s["pass_hat_curve"].items()}
        # earlier models drawn wider, so equal curves show as nested stripes instead of hiding each other
        wide = len(summaries) - 1 - i
        if curve:
            ax.plot(list(curve), list(curve.values()), marker="o", label=s["model"],
                    linewidth=1.2 + 1.2 * wide, markersize=4 + 3 * wide)  # fmt: skip
    ks = sorted({int(k) for s in summaries for k in s["pass_hat_curve"]})
    ax.set_xticks(ks or [1])
    ax.set_xlabel("k")
    ax.set_ylabel("pass^k")
    ax.set_ylim(-0.03, 1.03)
    ax.legend(fontsize=8)
    ax.set_title("pass^k: every one of k tries passes")
    out.append(("pass^k against k", _png(fig)))
    plt.close(fig)
    return out


def _table(summaries: Sequence[dict[str, Any]], key: str) -> str:
    groups = sorted({g for s in summaries for g in s[key]})
    head = "<tr><th></th>" + "".join(f"<th>{html.escape(s['model'])}</th>" for s in summaries) + "</tr>"
    rows = []
    for g in groups:
        cells = []
        for s in summaries:
            r = s[key].get(g)
            cells.append(
                f"<td>{r['pass@1']:.3f} ({int(r['tasks'])} tasks)</td>"
                if r and "pass@1" in r
                else "<td>–</td>"
            )
        rows.append(f"<tr><th>{html.escape(g)}</th>{''.join(cells)}</tr>")
    return f"<table>{head}{''.join(rows)}</table>"


def write_report(summaries: Sequence[dict[str, Any]], out: Path, title: str) -> tuple[Path, Path]:
    out.mkdir(parents=True, exist_ok=True)
    summary = out / "summary.json"
    summary.write_text(
        json.dumps({"title": title, "models": list(summaries)}, indent=2, default=float) + "\n"
    )
    metrics = [
        "pass@1",
        *sorted({m for s in summaries for m in s["overall"] if m.startswith("pass") and m != "pass@1"}),
    ]
    head = (
        "<tr><th>model</th>"
        + "".join(f"<th>{m}</th>" for m in metrics)
        + (
            "<th>mean score</th><th>tokens/ep</th><th>calls/ep</th><th>errors/ep</th><th>latency s/ep</th><th>cost $</th></tr>"
        )
    )
    rows = []
    for s in summaries:
        o = s["overall"]
        cells = "".join(f"<td>{o.get(m, float('nan')):.3f}</td>" for m in metrics)
        rows.append(
            f"<tr><th>{html.escape(s['model'])}</th>{cells}<td>{s['mean_score']:.3f}</td><td>{s['tokens_per_episode']:.0f}</td>"
            f"<td>{s['tool_calls_per_episode']:.2f}</td><td>{s['errors_per_episode']:.2f}</td>"
            f"<td>{s['latency_s_per_episode']:.2f}</td><td>{s['cost_usd']:.4f}</td></tr>"
        )
    plots = "".join(
        f'<figure><img alt="{html.escape(t)}" src="data:image/png;base64,{b}"><figcaption>{html.escape(t)}</figcaption></figure>'
        for t, b in _plots(summaries)
    )
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:system-ui,sans-serif;margin:2em;max-width:72em}}table{{border-collapse:collapse;margin:1em 0}}
td,th{{border:1px solid #ccc;padding:.3em .6em;text-align:right}}th{{background:#f4f4f4}}figure{{display:inline-block;margin:1em}}</style>
</head><body><h1>{html.escape(title)}</h1>
<h2>Overall</h2><table>{head}{"".join(rows)}</table>
{plots}
<h2>pass@1 by difficulty</h2>{_table(summaries, "by_difficulty")}
<h2>pass@1 by category</h2>{_table(summaries, "by_category")}
<p>pass@k: at least one of k tries passes (unbiased estimator); pass^k: all k pass (τ-bench).</p>
</body></html>"""
    report = out / "report.html"
    report.write_text(page, encoding="utf-8")
    return summary, report
