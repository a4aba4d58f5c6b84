"""agentgym tasks for TRL's `GRPOTrainer` (TRL 1.16, `environment_factory`; extra `peers`).

`grpo_inputs(suite, task_ids)` returns `TRLTasks`: what `GRPOTrainer(train_dataset=...,
environment_factory=..., reward_funcs=...)` takes.

- `dataset`: a `datasets.Dataset`, one row per task: `prompt` (the agent's system prompt and the
  user's request as chat messages), `task_id`, and `environment` (the agent id, which routes the
  row to its agent's environment class: TRL's multi-environment mode, so each prompt shows only
  its agent's tools).
- `environment_factory`: `{agent_id: class}`. Each class is generated from the agent's tool
  schemas (`pyfunc.tool_function`): one public method per tool, so TRL renders the tools into the
  prompt and calls them from the model's `<tool_call>` blocks. `reset(task_id=..., **row)` starts
  an agentgym episode (`EpisodeDriver`) on that task; each call is routed into the `ToolUseEnv`
  (simulated tools, world state, injected faults, typed errors).
- `reward_funcs`: `[agentgym_rubric]`, which ends each rollout's episode with its last assistant
  message as the final answer and returns the rubric score. TRL's `get_reward()` takes no
  arguments and so cannot see that answer; the reward function receives the completions and the
  `environments` and can.
- `priming`: optional example messages between the system prompt and the request.

Limits: TRL executes only calls to the listed tools (others it answers itself, and they never
reach the environment); each call is one env turn (see `episode`); calls the model wrote in its
last message but TRL did not run (iteration or length cap) are not run at grading either; tasks
with scripted user follow-ups are refused. `on_episode(trajectory)` sees every finished episode.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from agentgym.adapters.episode import EpisodeDriver, resolve_suite, select_tasks
from agentgym.adapters.pyfunc import UnsupportedSchema, tool_function
from agentgym.spec.trajectory import RubricResult, Trajectory
from agentgym.suites.suite import TaskSuite

RESERVED = frozenset({"reset", "get_reward"})
"""Method names TRL treats specially; a tool may not take them."""


class TRLEpisode:
    """Base of the generated per-agent classes: one rollout's agentgym episode."""

    suite: ClassVar[TaskSuite]
    agent_id: ClassVar[str]
    seeds: ClassVar[Iterable[int]]
    _on_episode: ClassVar[Callable[[Trajectory], None] | None] = None

    def __init__(self) -> None:
        self._driver = EpisodeDriver(self.suite)
        self._graded = True

    def reset(self, task_id: str, **row: Any) -> None:
        task = self.suite.tasks[task_id]
        if task.agent_id != self.agent_id:
            raise ValueError(f"task {task_id} belongs to agent {task.agent_id}, not {self.agent_id}")
        self._driver.start(task_id, next(self.seeds))  # type: ignore[call-overload]
        self._graded = False
        return None  # the dataset row already holds the prompt

    def _call(self, name: str, arguments: dict[str, Any]) -> str:
        return self._driver.call(name, arguments)

    def _finish(self, answer: str) -> RubricResult:
        if self._graded:
            raise RuntimeError("this rollout was already graded; reset() starts the next one")
        result = self._driver.finish(answer)
        self._graded = True
        hook = type(self)._on_episode
        if hook is not None:
            hook(self._driver.trajectory(policy="trl"))
        return result


def environment_class(
    suite: TaskSuite, agent_id: str, *, seed: int = 0, on_episode: Callable[[Trajectory], None] | None = None
) -> type[TRLEpisode]:
    """A TRL environment class for one agent: its tools as methods (see module doc)."""
    methods: dict[str, Any] = {}
    for spec in suite.tools_for(agent_id):
        if spec.name in RESERVED:
            raise UnsupportedSchema(f"tool {spec.name!r} of agent {agent_id}: TRL reserves that method name")
        methods[spec.name] = tool_function(spec, TRLEpisode._call, method=True)
    attrs = {
        "__doc__": f"agentgym agent {agent_id} of suite {suite.name}: {len(methods)} tools.",
        "suite": suite,
        "agent_id": agent_id,
        "seeds": itertools.count(seed),
        "_on_episode": staticmethod(on_episode) if on_episode else None,
        **methods,
    }
    return type(f"AgentgymEnv[{agent_id}]", (TRLEpisode,), attrs)


def final_answer(completion: Sequence[dict[str, Any]] | str) -> str:
    """The text of a rollout's last assistant message (TRL completions are message lists)."""
    if isinstance(completion, str):
        return completion
    for m in reversed(completion):
        if m.get("role") == "assistant":
            content = m.get("content") or ""
            return content if isinstance(content, str) else " ".join(p.get("text", "") for p in content)
    return ""


def agentgym_rubric(completions: Sequence[Any], environments: Sequence[TRLEpisode], **_: Any) -> list[float]:
    """TRL reward function: each rollout's agentgym rubric score (ends its episode)."""
    if len(completions) != len(environments):
        raise ValueError(f"{len(completions)} completions for {len(environments)} environments")
    return [env._finish(final_answer(c)).score for c, env in zip(completions, environments, strict=True)]


@dataclass(frozen=True)
class TRLTasks:
    """The three things GRPOTrainer needs (see module doc)."""

    dataset: Any
    """`datasets.Dataset` with `prompt`, `task_id`, `environment`."""
    environment_factory: dict[str, type[TRLEpisode]]
    """Agent id -> generated environment class."""
    reward_funcs: list[Callable[..., list[float]]]
    """`[agentgym_rubric]`."""


def grpo_inputs(
    suite: str | TaskSuite,
    task_ids: Iterable[str] | None = None,
    *,
    seed: int = 0,
    on_episode: Callable[[Trajectory], None] | None = None,
    priming: Sequence[dict[str, Any]] = (),
) -> TRLTasks:
    """Dataset, environment classes and reward for `task_ids` of `suite` (all tasks when None).

    `priming`: messages put between the system prompt and the request (e.g. a one-shot example
    of a `<tool_call>`; without one a 135M model rarely calls tools at all).
    """
    from datasets import Dataset

    s = resolve_suite(suite)
    ids = select_tasks(s, task_ids)
    rows = []
    for tid in ids:
        task = s.tasks[tid]
        *head, user = s.agents[task.agent_id].opening(task.instruction)
        prompt = [*head, *priming, user]
        rows.append({"prompt": prompt, "task_id": tid, "environment": task.agent_id})
    agents = dict.fromkeys(r["environment"] for r in rows)
    factory = {a: environment_class(s, a, seed=seed, on_episode=on_episode) for a in agents}
    return TRLTasks(Dataset.from_list(rows), factory, [agentgym_rubric])


def chat_template(name: str = "qwen2_5") -> str:
    """One of TRL's bundled chat templates that can render tool calls (SmolLM2's own cannot)."""
    import trl

    path = Path(trl.__file__).parent / "chat_templates" / f"{name}.jinja"
    if not path.exists():
        known = sorted(p.stem for p in path.parent.glob("*.jinja"))
        raise ValueError(f"TRL has no chat template {name!r}; bundled: {known}")
    return path.read_text(encoding="utf-8")
