"""ToolUseEnv: a multi-turn tool-use episode as a Gymnasium environment.

`reset(*, seed=None, options=None) -> (obs, info)` starts a task (`options={"task_id": ...}` or
`{"task_index": i}`; otherwise one drawn with the env's RNG). `step(action) -> (obs, reward,
terminated, truncated, info)` takes one assistant turn: raw text, parsed by the tool-call format
registry (`agentgym.parsing`), or an OpenAI-style message dict (`tool_calls`, optionally
`token_ids`, `logprobs`, `finish_reason`, `policy_version`, `gen_ms`).

Observations are the *new* messages since the last step, OpenAI chat format, as a JSON string
(ASCII-escaped, so every observation lies in `observation_space`; `decode_observation` turns it
back into dicts). At reset: the system prompt and the user's request; `info["tools"]` lists the
agent's tools as OpenAI `tools` entries. After a turn with calls: one `tool` message per call, in
call order. After a turn without calls: the user's reply, or nothing when the user is done.

Every call is answered — a malformed, unknown or schema-invalid call gets a typed error message and
is counted in `info["errors"]`; nothing is dropped. `terminated` means the task ended (the user is
satisfied): a value-bootstrapping learner must not bootstrap past it. `truncated` means a budget
(turns, tokens) cut the episode short: the task did not end, so bootstrapping is still right.
The reward is 0 until the episode ends, then the rubric score; `info["rubric"]` has the breakdown.
`env.trajectory()` returns the whole episode as a `Trajectory`.

The core is async (`areset`/`astep`); `reset`/`step` drive it without an event loop when every
backend is synchronous (the simulator), else on a background loop.
"""

from __future__ import annotations

import difflib
import json
import math
import string
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

import gymnasium as gym
import orjson
from gymnasium import spaces
from pydantic import Field, field_validator

import agentgym
from agentgym.asyncio_bridge import run_blocking, run_now
from agentgym.backends.base import Episode, ToolBackend, ToolResult
from agentgym.backends.defaults import default_backends
from agentgym.env.user import ScriptedUser, UserSimulator
from agentgym.grading.rubric import CallRecord, Evidence, grade
from agentgym.jsonutil import dumps, dumps_str
from agentgym.parsing import parse_turn
from agentgym.parsing.base import check_format, coerce_arguments
from agentgym.schema import validator
from agentgym.spec.base import Record
from agentgym.spec.task import TaskSpec
from agentgym.spec.tool import ToolSpec
from agentgym.spec.trajectory import RubricResult, Trajectory
from agentgym.suites.suite import TaskSuite, load_suite
from agentgym.world.cache import ReplayCache
from agentgym.world.faults import FaultConfig
from agentgym.world.state import WorldState, diff


class EnvConfig(Record):
    """How episodes run."""

    tool_call_format: str = "auto"
    """Tool-call format of the actions ('auto' detects hermes, glm_xml, pythonic, json)."""

    @field_validator("tool_call_format")
    @classmethod
    def _known_format(cls, v: str) -> str:
        return check_format(v)

    max_turns: int | None = Field(default=None, ge=1)
    """Assistant turns before truncation (default: the task's own limit)."""
    token_budget: int | None = Field(default=None, ge=1)
    """Total assistant tokens before truncation (None: no budget)."""
    max_calls_per_turn: int = Field(default=16, ge=1)
    """Calls beyond this in one turn are answered with a call_limit error."""
    max_result_chars: int = Field(default=8000, ge=64)
    """Longer tool results are cut (and say so)."""
    max_observation_chars: int = Field(default=262_144, ge=4096)
    """Bound of the observation space; observations are shrunk to fit."""
    max_action_chars: int = Field(default=16_384, ge=16)
    """Bound of the action space (used for sampling; longer actions are still accepted)."""
    faults: FaultConfig = Field(default_factory=FaultConfig)
    """Controlled stochasticity of simulated tools."""
    replay_cache: bool = True
    """Serve repeated deterministic reads from the replay cache."""


def decode_observation(obs: str) -> list[dict[str, Any]]:
    """The messages an observation carries."""
    return json.loads(obs)


def _approx_tokens(text: str) -> int:
    return math.ceil(len(text) / 4)


class ResetNeeded(RuntimeError):
    """`step` was called before `reset` or after the episode ended."""


class ToolUseEnv(gym.Env[str, Any]):
    """See module doc."""

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["ansi", "human"]}

    def __init__(
        self,
        suite: str | TaskSuite = "starter",
        *,
        task_ids: Sequence[str] | None = None,
        tags: Sequence[str] | None = None,
        split: str | None = None,
        config: EnvConfig | Mapping[str, Any] | None = None,
        backends: Sequence[ToolBackend] | None = None,
        user: UserSimulator | None = None,
        token_counter: Callable[[str], int] | None = None,
        render_mode: str | None = None,
    ) -> None:
        self.suite = load_suite(suite) if isinstance(suite, str) else suite
        self.config = config if isinstance(config, EnvConfig) else EnvConfig.model_validate(config or {})
        ids = list(task_ids) if task_ids is not None else list(self.suite.tasks)
        if tags:
            ids = [i for i in ids if set(tags) & set(self.suite.tasks[i].tags)]
        if split is not None:
            ids = [i for i in ids if self.suite.tasks[i].split == split]
        unknown = [i for i in ids if i not in self.suite.tasks]
        if unknown or not ids:
            raise ValueError(
                f"no such tasks in suite {self.suite.name!r}: {unknown}"
                if unknown
                else f"no tasks selected from suite {self.suite.name!r} (tags={tags}, split={split})"
            )
        self.task_ids = ids
        self.backends: list[ToolBackend] = list(backends) if backends else default_backends(self.suite.world)
        self.user: UserSimulator = user or ScriptedUser()
        self.token_counter = token_counter or _approx_tokens
        self.render_mode = render_mode
        charset = string.printable
        self.observation_space = spaces.Text(self.config.max_observation_chars, min_length=0, charset=charset)
        self.action_space = spaces.Text(self.config.max_action_chars, min_length=0, charset=charset)
        self._cache = ReplayCache() if self.config.replay_cache else None
        self._sync = all(b.is_sync for b in self.backends) and self.user.is_sync
        self._routes: dict[str, ToolBackend] = {}
        self._initial_cache: dict[str, WorldState] = {}
        self._initial_src: dict[str, TaskSpec] = {}
        self._schemas: dict[str, bytes] = {}
        self._agents: dict[str, tuple[dict[str, ToolSpec], dict[str, ToolBackend]]] = {}
        self._first_obs: dict[str, tuple[TaskSpec, str]] = {}
        self.task: TaskSpec | None = None
        self._done = True
        self._episode: Episode | None = None

    # ---- Gymnasium API ---------------------------------------------------------------------

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[str, dict[str, Any]]:
        super().reset(seed=seed)
        return self._drive(self._areset(options))

    def step(self, action: Any) -> tuple[str, float, bool, bool, dict[str, Any]]:
        return self._drive(self.astep(action))

    async def areset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[str, dict[str, Any]]:
        super().reset(seed=seed)
        return await self._areset(options)

    def close(self) -> None:
        if self._episode is not None and not self._done:
            self._drive(self._end_backends())
        self._done = True
        super().close()

    def _drive(self, coro: Any) -> Any:
        return run_now(coro) if self._sync else run_blocking(coro)

    # ---- episode setup ---------------------------------------------------------------------

    def _pick_task(self, options: Mapping[str, Any] | None) -> TaskSpec:
        options = options or {}
        if "task" in options:
            task = options["task"]
            return task if isinstance(task, TaskSpec) else TaskSpec.model_validate(task)
        if "task_id" in options:
            tid = options["task_id"]
            if tid not in self.suite.tasks:
                raise KeyError(f"no task {tid!r} in suite {self.suite.name!r}")
            return self.suite.tasks[tid]
        if "task_index" in options:
            return self.suite.tasks[self.task_ids[int(options["task_index"]) % len(self.task_ids)]]
        return self.suite.tasks[self.task_ids[int(self.np_random.integers(len(self.task_ids)))]]

    async def _areset(self, options: Mapping[str, Any] | None) -> tuple[str, dict[str, Any]]:
        if self._episode is not None and not self._done:
            await self._end_backends()
        task = self._pick_task(options)
        agent = self.suite.agents[task.agent_id]
        self.task = task
        self.seed = int(self.np_random.integers(2**31 - 1))
        self.tools, self._routes = self._agent_tools(agent.id)
        self.initial = self._initial_state(task)
        self.state = self.initial.fork()
        faults = (options or {}).get("faults", self.config.faults)
        self._episode = Episode.new(
            self.state,
            self.seed,
            faults if isinstance(faults, FaultConfig) else FaultConfig.model_validate(faults),
            self._cache,
        )
        self._episode.task = task
        for b in self.backends:
            await b.start_episode(self._episode)
        self.user.reset(task)
        self.max_turns = self.config.max_turns or task.max_turns
        self._messages: list[dict[str, Any]] = agent.opening(task.instruction)
        self._head = len(self._messages) - 1
        """System prompt and examples: the prompt, not part of the dialogue graded or answered."""
        self._turns: list[dict[str, Any]] = []
        self._calls: list[CallRecord] = []
        self._errors: Counter[str] = Counter()
        self._tokens = 0
        self._answer = ""
        self._done = False
        self._terminated = self._truncated = False
        self._end_reason = ""
        self.result: RubricResult | None = None
        self._t0 = time.perf_counter()
        self._gen_s = 0.0
        self._env_s = 0.0
        info = {
            "task_id": task.id,
            "agent_id": agent.id,
            "seed": self.seed,
            "difficulty": task.difficulty,
            "max_turns": self.max_turns,
            "tools": self._tool_schemas(agent.id),
        }
        hit = self._first_obs.get(task.id)
        if hit is None or hit[0] is not task:
            hit = self._first_obs[task.id] = (task, self._encode(self._messages))
        return hit[1], info

    def _tool_schemas(self, agent_id: str) -> list[dict[str, Any]]:
        """The agent's tools as OpenAI entries: a fresh copy each time (callers may mutate it)."""
        raw = self._schemas.get(agent_id)
        if raw is None:
            raw = self._schemas[agent_id] = dumps([t.openai_schema() for t in self.tools.values()])
        return orjson.loads(raw)

    def _initial_state(self, task: TaskSpec) -> WorldState:
        """The task's initial state, built once per task and forked per episode (records are never
        mutated in place, so forks share them safely)."""
        st = self._initial_cache.get(task.id)
        if st is None or self._initial_src.get(task.id) is not task:
            if len(self._initial_cache) >= 4096:
                self._initial_cache.clear()
                self._initial_src.clear()
            st = self._initial_cache[task.id] = WorldState.from_snapshot(task.initial_state)
            self._initial_src[task.id] = task
        return st

    def _agent_tools(self, agent_id: str) -> tuple[dict[str, ToolSpec], dict[str, ToolBackend]]:
        """The agent's tools and the backend of each (resolved once per agent)."""
        hit = self._agents.get(agent_id)
        if hit is None:
            tools = {name: self.suite.world.tools[name] for name in self.suite.agents[agent_id].tools}
            hit = self._agents[agent_id] = (tools, {name: self._route(t) for name, t in tools.items()})
        return hit

    def _route(self, tool: ToolSpec) -> ToolBackend:
        for b in self.backends:
            if b.handles(tool):
                return b
        raise ValueError(
            f"no backend can execute tool {tool.name!r} (backends: {[b.name for b in self.backends]})"
        )

    async def _end_backends(self) -> None:
        for b in self.backends:
            await b.end_episode(self._episode)  # type: ignore[arg-type]

    # ---- one turn --------------------------------------------------------------------------

    async def astep(self, action: Any) -> tuple[str, float, bool, bool, dict[str, Any]]:
        if self._done:
            raise ResetNeeded("call reset() before step(): the episode has not started or has ended")
        t0 = time.perf_counter()
        turn = len(self._turns)
        meta = action if isinstance(action, Mapping) else {}
        parsed = parse_turn(
            action if isinstance(action, (str, Mapping)) else str(action), self.config.tool_call_format
        )
        token_ids = meta.get("token_ids")
        text_for_count = action if isinstance(action, str) else (meta.get("content") or "")
        ntok = len(token_ids) if token_ids is not None else self.token_counter(str(text_for_count))
        self._tokens += ntok

        assistant: dict[str, Any] = {"role": "assistant", "content": parsed.content or None}
        if parsed.reasoning:
            assistant["reasoning_content"] = parsed.reasoning
        self._messages.append(assistant)
        new: list[dict[str, Any]] = []
        outcomes: list[dict[str, Any]] = []
        turn_errors: dict[str, int] = {}
        mark = len(self.state.log)
        if parsed.calls:
            tool_calls = []
            used_ids: set[str] = set()
            for i, call in enumerate(parsed.calls):
                cid = call.id if call.id and call.id not in used_ids else f"call_{turn}_{i}"
                used_ids.add(cid)
                tool_calls.append(
                    {"id": cid, "type": "function", "function": {"name": call.name, "arguments": call.raw}}
                )
                if call.raw_values and call.name in self.tools:
                    call.arguments = coerce_arguments(call, self.tools[call.name].input_schema)
                    call.raw = dumps_str(call.arguments)
                result = await self._execute(call.name, call.arguments, call.error, i)
                if result.error is not None:
                    turn_errors[result.error] = turn_errors.get(result.error, 0) + 1
                new.append(
                    {
                        "role": "tool",
                        "tool_call_id": cid,
                        "name": call.name,
                        "content": self._clip(result.content),
                    }
                )
                outcomes.append(
                    {
                        "call_id": cid,
                        "tool": call.name,
                        "ok": result.ok,
                        "error": result.error,
                        "injected": result.injected,
                        "cached": result.cached,
                    }
                )
                self._calls.append(
                    CallRecord(turn, call.name, call.arguments if call.error is None else None, result.ok)
                )
            assistant["tool_calls"] = tool_calls
        else:
            self._answer = parsed.content
            reply = await self.user.reply(self.task, self._dialogue())  # type: ignore[arg-type]
            if reply is None:
                self._terminated, self._end_reason = True, "answered"
            else:
                new.append({"role": "user", "content": reply})
        self._messages.extend(new)
        self._errors.update(turn_errors)

        if not self._terminated:
            if turn + 1 >= self.max_turns:
                self._truncated, self._end_reason = True, "max_turns"
            elif self.config.token_budget is not None and self._tokens >= self.config.token_budget:
                self._truncated, self._end_reason = True, "token_budget"
        reward = 0.0
        info: dict[str, Any] = {
            "turn": turn,
            "calls": len(parsed.calls),
            "format": parsed.format,
            "errors": turn_errors,
            "error_total": sum(self._errors.values()),
        }
        if self._terminated or self._truncated:
            self._done = True
            for b in self.backends:
                finalize = getattr(b, "finalize", None)
                if finalize is not None:
                    await finalize(self._episode, self.task)
            self.result = grade(
                self.task.rubric,
                Evidence(
                    self._calls,
                    self._answer,
                    self.initial,
                    self.state,  # type: ignore[union-attr]
                    self.suite.world.trace_fields,
                    self.state.touched(),
                    [m["content"] for m in self._dialogue() if m["role"] == "assistant" and m.get("content")],
                    self._episode.results,  # type: ignore[union-attr]
                ),
            )
            reward = self.result.score
            await self._end_backends()
            info.update(
                end_reason=self._end_reason,
                score=reward,
                passed=self.result.passed,
                rubric=self.result.model_dump(mode="json"),
                metrics=self.metrics(),
            )
        env_s = time.perf_counter() - t0
        self._env_s += env_s
        gen_ms = meta.get("gen_ms")
        if isinstance(gen_ms, (int, float)):
            self._gen_s += gen_ms / 1000
        self._turns.append(
            {
                "index": turn,
                "message_index": len(self._messages) - len(new) - 1,
                "token_ids": token_ids,
                "logprobs": meta.get("logprobs"),
                "policy_version": meta.get("policy_version"),
                "finish_reason": meta.get("finish_reason"),
                "num_tokens": ntok,
                "calls": outcomes,
                "changes": self.state.log[mark:],
                "env_ms": env_s * 1000,
                "gen_ms": gen_ms,
            }
        )
        return self._encode(new), reward, self._terminated, self._truncated, info

    async def _execute(
        self, name: str, args: dict[str, Any] | None, parse_error: str | None, index: int
    ) -> ToolResult:
        if parse_error is not None:
            return ToolResult.failure("parse_error", f"could not read the tool call: {parse_error}")
        if index >= self.config.max_calls_per_turn:
            return ToolResult.failure(
                "call_limit",
                f"at most {self.config.max_calls_per_turn} calls per turn; this call was not run",
            )
        tool = self.tools.get(name)
        if tool is None:
            near = difflib.get_close_matches(name, list(self.tools), n=3, cutoff=0.5)
            hint = (
                f"; did you mean {', '.join(near)}?"
                if near
                else f"; available: {', '.join(list(self.tools)[:20])}"
            )
            return ToolResult.failure("unknown_tool", f"no tool named {name!r}{hint}")
        reason = validator(tool.input_schema).check(args)
        if reason is not None:
            return ToolResult.failure(
                "invalid_arguments", f"arguments for {name} do not match its schema: {reason}"
            )
        return await self._routes[name].call(tool, args, self._episode)  # type: ignore[arg-type]

    def _clip(self, content: str) -> str:
        n = self.config.max_result_chars
        if len(content) <= n:
            return content
        return content[:n] + f"... [truncated: {len(content) - n} more characters]"

    def _encode(self, messages: list[dict[str, Any]]) -> str:
        raw = dumps(messages)
        # orjson is ~5x faster; it writes UTF-8, so fall back to json's \u-escapes for non-ASCII text.
        out = (
            raw.decode() if raw.isascii() else json.dumps(messages, ensure_ascii=True, separators=(",", ":"))
        )
        limit = self.config.max_observation_chars
        if len(out) <= limit:
            return out
        msgs = [dict(m) for m in messages]
        while len(out) > limit:  # shrink the longest content until the observation fits
            longest = max(msgs, key=lambda m: len(m.get("content") or ""))
            text = longest.get("content") or ""
            if len(text) < 64:
                msgs = [{"role": "tool", "content": "[observation too large to show]"}]
                return json.dumps(msgs, ensure_ascii=True)
            cut = len(text) // 2
            longest["content"] = text[:cut] + f"... [truncated: {len(text) - cut} more characters]"
            out = json.dumps(msgs, ensure_ascii=True)
        return out

    # ---- results ----------------------------------------------------------------------------

    @property
    def done(self) -> bool:
        return self._done

    @property
    def messages(self) -> list[dict[str, Any]]:
        """The conversation so far (a copy), OpenAI format."""
        return json.loads(dumps(self._messages))

    def metrics(self) -> dict[str, float]:
        m: dict[str, float] = {
            "turns": float(len(self._turns)),
            "tool_calls": float(len(self._calls)),
            "tokens": float(self._tokens),
            "errors": float(sum(self._errors.values())),
        }
        for kind, n in self._errors.items():
            m[f"errors.{kind}"] = float(n)
        return m

    def trajectory(self, policy: str = "unknown", episode_id: str | None = None) -> Trajectory:
        """The episode so far as a Trajectory (complete once the episode is done)."""
        if self.task is None:
            raise ResetNeeded("no episode yet: call reset()")
        turns = []
        for t in self._turns:
            t = dict(t)
            t["changes"] = [
                {"collection": c, "id": i, "before": b, "after": a} for c, i, b, a in t["changes"]
            ]
            turns.append(t)
        return Trajectory.model_validate(
            {
                "id": episode_id or f"{self.task.id}/{self.seed}/{policy}",
                "task_id": self.task.id,
                "agent_id": self.task.agent_id,
                "seed": self.seed,
                "policy": policy,
                "tools": [t.openai_schema() for t in self.tools.values()],
                "messages": self._messages,
                "examples": self._head - 1,
                "turns": turns,
                "state_diff": [
                    c.model_dump()
                    for c in diff(
                        self.initial, self.state, self.suite.world.trace_fields, self.state.touched()
                    )
                ],
                "rubric": self.result.model_dump() if self.result else None,
                "reward": self.result.score if self.result else 0.0,
                "reward_components": {"rubric": self.result.score} if self.result else {},
                "terminated": self._terminated,
                "truncated": self._truncated,
                "end_reason": self._end_reason,
                "metrics": self.metrics(),
                "timings": {
                    "total_s": time.perf_counter() - self._t0,
                    "env_s": self._env_s,
                    "gen_s": self._gen_s,
                },
                "versions": {"agentgym": agentgym.__version__, "suite": self.suite.name},
            }
        )

    def _dialogue(self) -> list[dict[str, Any]]:
        """The episode's messages from the task's instruction on (the examples left out)."""
        return [self._messages[0], *self._messages[self._head :]]

    def render(self) -> str | None:
        if self.task is None:
            return None
        lines = []
        for m in self._messages:
            body = m.get("content") or ""
            if m.get("tool_calls"):
                body += " " + " ".join(
                    f"{c['function']['name']}({c['function']['arguments']})" for c in m["tool_calls"]
                )
            lines.append(f"[{m['role']}] {body}".rstrip())
        text = "\n".join(lines)
        if self.render_mode == "human":
            print(text)
            return None
        return text
