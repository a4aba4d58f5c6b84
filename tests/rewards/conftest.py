"""Fixtures for reward tests: hand-built trajectories and tasks, the agentic suite, scripted episodes.

`tb` (a `TrajectoryBuilder`) makes valid `Trajectory` / `TaskSpec` objects without a world, for
formula tests with hand-computed values:

    t = tb.traj(tb.calls(("notes__get", {"id": "n1"}), tokens=30), tb.answer("Done.", tokens=10))
    t = tb.traj(tb.calls(("", "{bad", "parse_error")), tb.answer("x"), rubric=0.5, passed=False)
    task = tb.task(difficulty="complex", tags=("billing",))

`agentic` is the real `tasks/agentic` suite (session-scoped; loading takes a few seconds) and
`play(suite, task_id, actions)` runs scripted assistant turns (raw text or message dicts) through a
real `ToolUseEnv` (simulated tools, scripted user) and returns the finished `Trajectory`.
This file is shared with the judge / self-critique tests: keep its names stable.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest

from agentgym.spec.rubric import AnswerCriterion, Rubric
from agentgym.spec.task import GoldTurn, TaskSpec
from agentgym.spec.trajectory import CriterionResult, RubricResult, Trajectory
from agentgym.spec.world import WorldSnapshot


@dataclass(frozen=True)
class TurnSpec:
    """One assistant turn to build: calls (name, arguments, error kind or None) or an answer."""

    calls: tuple[tuple[str, Any, str | None], ...] = ()
    text: str | None = None
    tokens: int = 10
    finish: str | None = "stop"
    reasoning: str | None = None


@dataclass
class TrajectoryBuilder:
    """Builds valid trajectories and tasks; see module doc."""

    counter: list[int] = field(default_factory=lambda: [0])

    def calls(
        self,
        *calls: tuple[str, Any] | tuple[str, Any, str | None],
        text: str | None = None,
        tokens: int = 10,
        finish: str | None = "stop",
        reasoning: str | None = None,
    ) -> TurnSpec:
        """A turn with tool calls: (name, args dict or raw JSON string[, error kind])."""
        norm = tuple((c[0], c[1], c[2] if len(c) > 2 else None) for c in calls)
        return TurnSpec(norm, text, tokens, finish, reasoning)

    def answer(
        self, text: str, *, tokens: int = 10, finish: str | None = "stop", reasoning: str | None = None
    ) -> TurnSpec:
        """A turn without calls: the (final) reply."""
        return TurnSpec((), text, tokens, finish, reasoning)

    def traj(
        self,
        *turns: TurnSpec,
        user: str = "Please look up note n1.",
        task_id: str = "task",
        rubric: float | None = 1.0,
        passed: bool | None = None,
        truncated: bool = False,
        end_reason: str | None = None,
        components: dict[str, float] | None = None,
        traj_id: str | None = None,
    ) -> Trajectory:
        """A finished trajectory of the given turns (rubric=None: ungraded)."""
        self.counter[0] += 1
        messages: list[dict[str, Any]] = [
            {"role": "system", "content": "You are a helpful agent."},
            {"role": "user", "content": user},
        ]
        records = []
        for i, t in enumerate(turns):
            msg: dict[str, Any] = {"role": "assistant", "content": t.text}
            if t.reasoning:
                msg["reasoning_content"] = t.reasoning
            outcomes, tool_msgs = [], []
            if t.calls:
                tcs = []
                for k, (name, args, error) in enumerate(t.calls):
                    cid = f"call_{i}_{k}"
                    raw = args if isinstance(args, str) else json.dumps(args)
                    tcs.append({"id": cid, "type": "function", "function": {"name": name, "arguments": raw}})
                    outcomes.append({"call_id": cid, "tool": name, "ok": error is None, "error": error})
                    body = {"ok": True} if error is None else {"error": error}
                    tool_msgs.append(
                        {"role": "tool", "tool_call_id": cid, "name": name, "content": json.dumps(body)}
                    )
                msg["tool_calls"] = tcs
            messages.append(msg)
            records.append(
                {
                    "index": i,
                    "message_index": len(messages) - 1,
                    "finish_reason": t.finish,
                    "num_tokens": t.tokens,
                    "calls": outcomes,
                }
            )
            messages.extend(tool_msgs)
        answered = bool(turns) and not turns[-1].calls
        graded = None
        if rubric is not None:
            ok = rubric >= 1.0 if passed is None else passed
            graded = RubricResult(
                score=rubric,
                passed=ok,
                gated=False,
                criteria=(CriterionResult(id="answer", kind="answer", weight=1.0, score=rubric),),
            )
        return Trajectory.model_validate(
            {
                "id": traj_id or f"{task_id}/{self.counter[0]}/built",
                "task_id": task_id,
                "agent_id": "agent",
                "seed": 0,
                "policy": "built",
                "tools": [],
                "messages": messages,
                "turns": records,
                "rubric": graded,
                "reward": rubric or 0.0,
                "reward_components": components if components is not None else {"rubric": rubric or 0.0},
                "terminated": answered and not truncated,
                "truncated": truncated,
                "end_reason": end_reason or ("answered" if answered and not truncated else "max_turns"),
            }
        )

    def task(
        self,
        *,
        task_id: str = "task",
        instruction: str = "Please look up note n1.",
        difficulty: str = "simple",
        tags: Sequence[str] = (),
    ) -> TaskSpec:
        """A minimal valid task (one answer fact, empty world)."""
        return TaskSpec(
            id=task_id,
            agent_id="agent",
            instruction=instruction,
            initial_state=WorldSnapshot(),
            rubric=Rubric(criteria=(AnswerCriterion(id="answer", facts=("n1",)),)),
            gold=(GoldTurn(answer="n1"),),
            difficulty=difficulty,  # type: ignore[arg-type]
            tags=tuple(tags),
        )


@pytest.fixture
def tb() -> TrajectoryBuilder:
    return TrajectoryBuilder()


@pytest.fixture(scope="session")
def agentic():
    from agentgym.suites import load_suite

    return load_suite("agentic")


def _play(suite, task_id: str, actions: Sequence[str | dict[str, Any]], **env_kwargs: Any) -> Trajectory:
    from agentgym.env.tool_env import ToolUseEnv

    env = ToolUseEnv(suite, task_ids=[task_id], **env_kwargs)
    try:
        env.reset(seed=0, options={"task_id": task_id})
        for a in actions:
            _, _, terminated, truncated, _ = env.step(a)
            if terminated or truncated:
                break
        else:
            raise AssertionError(f"the scripted actions did not end the episode of {task_id}")
        return env.trajectory(policy="scripted")
    finally:
        env.close()


@pytest.fixture(scope="session")
def play():
    """`play(suite, task_id, actions, **env_kwargs) -> Trajectory` through a real ToolUseEnv."""
    return _play
