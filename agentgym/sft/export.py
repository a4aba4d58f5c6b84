"""SFT export: keep the trajectories that meet their rubric, de-duplicate, write training formats.

`select(trajs, config)` is rejection sampling: a trajectory is kept when it passed its rubric (or
its score reaches `min_score`), it ended because the task ended (not truncated, unless allowed),
it has no malformed call (unless allowed), and every judge criterion that was graded reaches
`min_judge`. Duplicates — the same task and the same assistant turns (tool calls compared as
canonical JSON) — are kept once. `pairs(trajs, config)` makes preference pairs for DPO: for each
task, a passing and a failing rollout (the best and the worst by score), sharing the prompt.

Writers (`FORMATS`): `openai` — chat JSONL, one `{"messages", "tools"}` object a line, the shape
OpenAI fine-tuning and most trainers read; `parquet` — the same rows through Hugging Face
`datasets` (messages and tools as JSON strings, so every row has one schema); `sharegpt` —
`{"conversations": [{"from", "value"}], "tools", "system"}`; `dpo` — `{"prompt", "chosen",
"rejected", "tools"}` JSONL. Reasoning (`reasoning_content`) is kept; metadata (task id, score,
policy) rides along in each row.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from pydantic import Field

from agentgym.spec.base import Record
from agentgym.spec.trajectory import Trajectory


class ExportConfig(Record):
    """Which trajectories are good enough to learn from."""

    min_score: float = Field(default=1.0, ge=0, le=1)
    """Keep a trajectory scoring at least this (1.0: passed every criterion)."""
    min_judge: float = Field(default=0.5, ge=0, le=1)
    """Every graded judge criterion must score at least this."""
    allow_truncated: bool = False
    """Keep episodes cut by a budget."""
    allow_malformed: bool = False
    """Keep episodes with a call that could not be parsed or validated."""
    dedup: bool = True
    """Keep one copy of identical trajectories of a task."""


def _messages(t: Trajectory) -> list[dict[str, Any]]:
    """The conversation in chat form, few-shot examples left out (SFT teaches without them)."""
    out = []
    for m in t.dialogue():
        d = m.model_dump(mode="json", exclude_none=True)
        out.append(
            {
                k: v
                for k, v in d.items()
                if k in ("role", "content", "tool_calls", "tool_call_id", "name", "reasoning_content")
            }
        )
    return out


def _key(t: Trajectory) -> str:
    turns = [
        (m.get("content") or "", json.dumps(m.get("tool_calls") or [], sort_keys=True))
        for m in _messages(t)
        if m["role"] == "assistant"
    ]
    return hashlib.sha256(json.dumps([t.task_id, turns]).encode()).hexdigest()


def _why_not(t: Trajectory, c: ExportConfig) -> str | None:
    if t.rubric is None:
        return "not graded"
    if t.reward < c.min_score and not (c.min_score >= 1.0 and t.rubric.passed):
        return "below min_score"
    if t.truncated and not c.allow_truncated:
        return "truncated"
    if not c.allow_malformed and any(
        t.metrics.get(f"errors.{k}", 0) for k in ("parse_error", "unknown_tool", "invalid_arguments")
    ):
        return "malformed call"
    for crit in t.rubric.criteria:
        if crit.kind == "judge" and crit.score is not None and crit.score < c.min_judge:
            return "judge below min_judge"
    return None


def select(
    trajs: Iterable[Trajectory], config: ExportConfig | None = None
) -> tuple[list[Trajectory], dict[str, int]]:
    """(kept trajectories, count of each reason for dropping one)."""
    c = config or ExportConfig()
    kept, seen = [], set()
    dropped: dict[str, int] = defaultdict(int)
    for t in trajs:
        why = _why_not(t, c)
        if why is None and c.dedup:
            key = _key(t)
            why = "duplicate" if key in seen else None
            seen.add(key)
        if why:
            dropped[why] += 1
        else:
            kept.append(t)
    return kept, dict(dropped)


def pairs(trajs: Iterable[Trajectory]) -> list[tuple[Trajectory, Trajectory]]:
    """(chosen, rejected) per task: its best passing and its worst failing rollout."""
    by_task: dict[str, list[Trajectory]] = defaultdict(list)
    for t in trajs:
        if t.rubric is not None:
            by_task[t.task_id].append(t)
    out = []
    for task in sorted(by_task):
        good = [t for t in by_task[task] if t.rubric.passed]  # type: ignore[union-attr]
        bad = [t for t in by_task[task] if not t.rubric.passed]  # type: ignore[union-attr]
        if good and bad:
            out.append((max(good, key=lambda t: t.reward), min(bad, key=lambda t: t.reward)))
    return out


def _meta(t: Trajectory) -> dict[str, Any]:
    return {"task_id": t.task_id, "agent_id": t.agent_id, "policy": t.policy, "score": t.reward, "id": t.id}


def _openai_row(t: Trajectory) -> dict[str, Any]:
    return {"messages": _messages(t), "tools": list(t.tools), "metadata": _meta(t)}


def _sharegpt_row(t: Trajectory) -> dict[str, Any]:
    roles = {"user": "human", "assistant": "gpt", "tool": "observation"}
    msgs = _messages(t)
    system = next((m["content"] for m in msgs if m["role"] == "system"), "")
    conv = []
    for m in msgs:
        if m["role"] == "system":
            continue
        if m["role"] == "assistant" and m.get("tool_calls"):
            calls = [
                {"name": c["function"]["name"], "arguments": json.loads(c["function"]["arguments"] or "{}")}
                for c in m["tool_calls"]
            ]
            if m.get("content"):
                conv.append({"from": "gpt", "value": m["content"]})
            conv.append(
                {"from": "function_call", "value": json.dumps(calls[0] if len(calls) == 1 else calls)}
            )
        else:
            conv.append({"from": roles[m["role"]], "value": m.get("content") or ""})
    return {"conversations": conv, "system": system, "tools": json.dumps(list(t.tools)), "metadata": _meta(t)}


def _write_jsonl(path: Path, rows: Iterable[dict[str, Any]]) -> int:
    n = 0
    with open(path, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
            n += 1
    return n


def write_openai(trajs: Sequence[Trajectory], out: Path) -> Path:
    path = out / "sft.openai.jsonl"
    _write_jsonl(path, (_openai_row(t) for t in trajs))
    return path


def write_sharegpt(trajs: Sequence[Trajectory], out: Path) -> Path:
    path = out / "sft.sharegpt.jsonl"
    _write_jsonl(path, (_sharegpt_row(t) for t in trajs))
    return path


def write_parquet(trajs: Sequence[Trajectory], out: Path) -> Path:
    from datasets import Dataset

    rows = [
        {"messages": json.dumps(r["messages"]), "tools": json.dumps(r["tools"]), **r["metadata"]}
        for r in (_openai_row(t) for t in trajs)
    ]
    path = out / "sft.parquet"
    Dataset.from_list(rows).to_parquet(str(path))
    return path


def write_dpo(all_trajs: Sequence[Trajectory], out: Path) -> Path:
    path = out / "dpo.jsonl"
    rows = []
    for good, bad in pairs(all_trajs):
        g, b = _messages(good), _messages(bad)
        cut = next(i for i, m in enumerate(g) if m["role"] == "assistant")
        rows.append(
            {
                "prompt": g[:cut],
                "chosen": g[cut:],
                "rejected": b[cut:],
                "tools": list(good.tools),
                "metadata": {
                    "task_id": good.task_id,
                    "chosen_score": good.reward,
                    "rejected_score": bad.reward,
                },
            }
        )
    _write_jsonl(path, rows)
    return path


FORMATS: dict[str, Callable[[Sequence[Trajectory], Path], Path]] = {
    "openai": write_openai,
    "parquet": write_parquet,
    "sharegpt": write_sharegpt,
}
