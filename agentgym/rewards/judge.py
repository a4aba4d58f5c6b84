"""Judge reward: an LLM grades a task's `judge` criteria, one judgement per criterion and sample.

In: a task whose rubric holds `JudgeCriterion`s (criterion text, `choices` ordered worst → best,
weight) and finished trajectories. Out: one `Score` per trajectory. Its value is the weighted mean
of the judged criteria (0.0 when the task has none), or, with `fill_rubric=True`, the trajectory's
rubric score recomputed with those criteria graded in (`rescore` gives the whole `RubricResult`).

One judgement: the prompt file `prompts/judge.txt` shows the criterion, the compact conversation
(`render_trajectory`) and the choices as numbered options; the judge writes its reason first and
its verdict last (`<verdict>N</verdict>`, or a last line `Verdict: N`, or the choice's words).
`parse_verdict` reads it; a reply it cannot read is counted (`unparseable` in the detail) and, by
`on_unparseable`, scored as the lowest choice ("lowest", the default: a judge that fails never
rewards) or left out ("skip": a criterion whose samples are all unreadable stays ungraded, None).
Choice index i of n maps to i / (n - 1). With `samples=k` the judge is asked k times, each time
with the options in a different (seeded) order; the shown position is mapped back to the choice
before the k scores are averaged.

Every model call goes through `CachedCaller`: the cache key is the sha256 of the judge's id, the
sampling parameters, a salt (the sample index) and the exact rendered prompt — which is the prompt
file filled with the criterion and the canonical rendering of the trajectory, so a changed
template, criterion or trajectory is a new key. Caches: `MemoryCache`, or `JsonlCache` on disk
(reloaded on open, appended to on every new reply). Token and cost accounting (`Usage`): prompt
tokens from `Completion.prompt_tokens`, completion tokens as the number of sampled token ids
(a backend that reports none counts 0 and is flagged by `untokenized`), cost by `Pricing` per
1k tokens; cached replies cost nothing and are counted as `cached`. The judge never mutates a
trajectory; the self-critique reward (`critique.py`) reuses the caller, the parser and the renderer.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from string import Template
from typing import Any, Literal, Protocol

import orjson

from agentgym.grading.rubric import combine
from agentgym.jsonutil import dumps
from agentgym.models.base import ChatModel, SamplingParams
from agentgym.rewards.base import Score
from agentgym.rewards.registry import register_reward
from agentgym.spec.rubric import JudgeCriterion
from agentgym.spec.task import TaskSpec
from agentgym.spec.trajectory import CriterionResult, RubricResult, Trajectory

PROMPTS = Path(__file__).parent / "prompts"


def bundled_file(name_or_path: str | Path, folder: Path, suffix: str, what: str) -> str:
    """The text of a bundled file by stem (`folder/<stem><suffix>`) or of any path."""
    p = Path(name_or_path)
    if not p.suffix:
        p = folder / f"{p}{suffix}"
    if not p.is_file():
        raise FileNotFoundError(f"no {what} file at {p}")
    return p.read_text(encoding="utf-8")


def load_prompt(name_or_path: str | Path) -> Template:
    """A prompt template: a file of `prompts/` by stem (`judge`), or any path. `$name` placeholders."""
    return Template(bundled_file(name_or_path, PROMPTS, ".txt", "prompt"))


# ---- rendering ------------------------------------------------------------------------------------


def _cut(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def render_trajectory(
    traj: Trajectory, *, request: bool = True, max_text: int = 600, max_result: int = 300
) -> str:
    """The conversation, compactly: user turns, assistant turns with their calls, tool results
    (truncated, failures marked with their error kind) and the final answer. No system prompt;
    `request=False` also drops the opening user message (when the prompt states it elsewhere)."""
    msgs = traj.dialogue()
    errors = {o.call_id: o.error for t in traj.turns for o in t.calls if not o.ok}
    lines: list[str] = []
    last_answer = max(
        (i for i, m in enumerate(msgs) if m.role == "assistant" and not m.tool_calls), default=-1
    )
    first_user = next((i for i, m in enumerate(msgs) if m.role == "user"), -1)
    for i, m in enumerate(msgs):
        if m.role == "user":
            if i == first_user and not request:
                continue
            lines.append(f"USER: {_cut(m.content or '', max_text)}")
        elif m.role == "assistant":
            tag = "FINAL ANSWER" if i == last_answer else "ASSISTANT"
            if m.content and m.content.strip():
                lines.append(f"{tag}: {_cut(m.content, max_text)}")
            for tc in m.tool_calls or ():
                lines.append(f"  CALL {tc.function.name}({_cut(tc.function.arguments, max_result)})")
        elif m.role == "tool":
            err = errors.get(m.tool_call_id or "")
            mark = f" [failed: {err}]" if err else ""
            lines.append(f"  RESULT {m.name or ''}{mark}: {_cut(m.content or '', max_result)}")
    if last_answer < 0:
        lines.append("FINAL ANSWER: (none)")
    return "\n".join(lines)


# ---- verdict parsing ------------------------------------------------------------------------------

_TAG = re.compile(r"<verdict>(.*?)</verdict>", re.IGNORECASE | re.DOTALL)
_LINE = re.compile(r"verdict\s*[:=]\s*(.+)", re.IGNORECASE)
_STRIP = " \t*_`'\"()[]{}.:!"


def _norm(s: str) -> str:
    s = s.strip().strip(_STRIP).lower()
    s = re.sub(r"^(option|choice|response|answer)\s+", "", s)
    return s.strip(_STRIP)


def verdict_span(text: str) -> str | None:
    """Where the verdict is: the last `<verdict>` tag, else the last `Verdict:` line, else the last
    non-empty line (None for an empty reply)."""
    tags = _TAG.findall(text)
    if tags:
        return tags[-1]
    hits = _LINE.findall(text)
    if hits:
        return hits[-1]
    lines = [ln for ln in text.splitlines() if ln.strip()]
    return lines[-1] if lines else None


def parse_verdict(text: str, options: Sequence[Sequence[str]]) -> int | None:
    """Which option the reply chose: `options[i]` lists option i's aliases. An exact (normalised)
    alias match wins; otherwise the one option with an alias of 2+ characters occurring as a whole
    word in the verdict span (single letters like 'a' are only matched exactly, never as the
    article); ambiguous or absent -> None."""
    span = verdict_span(text)
    if span is None:
        return None
    cand = _norm(span)
    for i, aliases in enumerate(options):
        if cand in {_norm(a) for a in aliases}:
            return i
    found = {
        i
        for i, aliases in enumerate(options)
        for a in aliases
        if len(_norm(a)) >= 2 and re.search(rf"(?<!\w){re.escape(_norm(a))}(?!\w)", cand)
    }
    return found.pop() if len(found) == 1 else None


def reason_of(text: str) -> str:
    """The judge's reason: its text before the verdict, without a leading 'Reason:'."""
    m = list(_TAG.finditer(text)) or list(_LINE.finditer(text))
    head = text[: m[-1].start()] if m else text
    return re.sub(r"^\s*reason(ing)?\s*:\s*", "", head.strip(), flags=re.IGNORECASE).strip()


# ---- model calls: cache and accounting --------------------------------------------------------------


@dataclass(slots=True, frozen=True)
class Pricing:
    """Cost of a judge's tokens, in dollars per 1,000."""

    per_1k_prompt: float = 0.0
    per_1k_completion: float = 0.0

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        return (prompt_tokens * self.per_1k_prompt + completion_tokens * self.per_1k_completion) / 1000


@dataclass(slots=True)
class Usage:
    """What judging cost: live calls, cache hits, tokens and dollars (cached replies cost nothing)."""

    calls: int = 0
    cached: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    untokenized: int = 0
    """Live replies whose backend reported no sampled token ids (their completion tokens count 0)."""
    cost_usd: float = 0.0

    def add(self, other: Usage) -> None:
        for k in ("calls", "cached", "prompt_tokens", "completion_tokens", "untokenized", "cost_usd"):
            setattr(self, k, getattr(self, k) + getattr(other, k))

    def detail(self, prefix: str) -> dict[str, float]:
        return {
            f"{prefix}_calls": self.calls,
            f"{prefix}_cached": self.cached,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "untokenized": self.untokenized,
            "cost_usd": self.cost_usd,
        }


class ReplyCache(Protocol):
    def get(self, key: str) -> dict[str, Any] | None: ...
    def put(self, key: str, value: dict[str, Any]) -> None: ...


class MemoryCache:
    """Replies by key, in memory."""

    def __init__(self) -> None:
        self.data: dict[str, dict[str, Any]] = {}

    def get(self, key: str) -> dict[str, Any] | None:
        return self.data.get(key)

    def put(self, key: str, value: dict[str, Any]) -> None:
        self.data[key] = value


class JsonlCache(MemoryCache):
    """Replies by key, one `{"key", ...}` line each in a JSONL file: loaded on open (a torn last
    line is ignored), appended to and flushed on every new reply."""

    def __init__(self, path: str | Path) -> None:
        super().__init__()
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.exists():
            for line in self.path.read_bytes().splitlines():
                try:
                    row = orjson.loads(line)
                except orjson.JSONDecodeError:
                    continue
                self.data[row.pop("key")] = row
        self._f = open(self.path, "ab")  # noqa: SIM115  (held open across appends; closed by close())

    def put(self, key: str, value: dict[str, Any]) -> None:
        super().put(key, value)
        self._f.write(dumps({"key": key, **value}) + b"\n")
        self._f.flush()

    def close(self) -> None:
        self._f.close()


@dataclass(slots=True)
class Reply:
    text: str
    usage: Usage


class CachedCaller:
    """One model, its sampling, an optional cache and pricing: `await ask(messages, salt)`."""

    def __init__(
        self,
        model: ChatModel,
        *,
        sampling: SamplingParams | None = None,
        cache: ReplyCache | None = None,
        pricing: Pricing | None = None,
        concurrency: int = 8,
    ) -> None:
        self.model = model
        self.sampling = sampling or SamplingParams(temperature=0.0, max_new_tokens=256)
        self.cache = cache
        self.pricing = pricing or Pricing()
        self._sem = asyncio.Semaphore(concurrency)

    def key(self, messages: list[dict[str, Any]], salt: str = "") -> str:
        body = {
            "model": self.model.name,
            "sampling": self.sampling.model_dump(),
            "salt": salt,
            "messages": messages,
        }
        return hashlib.sha256(dumps(body, sort_keys=True)).hexdigest()

    async def ask(self, messages: list[dict[str, Any]], salt: str = "", seed: int | None = None) -> Reply:
        key = self.key(messages, salt)
        hit = self.cache.get(key) if self.cache is not None else None
        if hit is not None:
            return Reply(hit["text"], Usage(cached=1))
        sampling = self.sampling if seed is None else self.sampling.model_copy(update={"seed": seed})
        async with self._sem:
            c = await self.model.generate(messages, None, sampling)
        n_out = len(c.token_ids) if c.token_ids is not None else 0
        usage = Usage(
            calls=1,
            prompt_tokens=c.prompt_tokens,
            completion_tokens=n_out,
            untokenized=int(c.token_ids is None),
            cost_usd=self.pricing.cost(c.prompt_tokens, n_out),
        )
        if self.cache is not None:
            self.cache.put(
                key, {"text": c.text, "prompt_tokens": c.prompt_tokens, "completion_tokens": n_out}
            )
        return Reply(c.text, usage)


def model_of(spec: ChatModel | str) -> ChatModel:
    """A ChatModel, or the model a spec names (`embedded`, `hf:...`, `openai:...`) loaded now."""
    if isinstance(spec, str):
        from agentgym.models.registry import load_model

        return load_model(spec)
    return spec


def cache_of(spec: ReplyCache | str | Path | None) -> ReplyCache | None:
    """A cache from a config value: None (no cache), 'memory', or a JSONL file path."""
    if spec is None or not isinstance(spec, str | Path):
        return spec
    return MemoryCache() if spec == "memory" else JsonlCache(spec)


def seed_of(*parts: object) -> int:
    """A stable 32-bit seed from any parts (sample permutations, pair subsets)."""
    return int.from_bytes(hashlib.sha256(repr(parts).encode()).digest()[:4], "big")


# ---- the judge --------------------------------------------------------------------------------------


@dataclass(slots=True)
class Judgement:
    """One criterion judged on one trajectory."""

    criterion: str
    score: float | None
    """Mean over the readable samples, in [0, 1]; None when no sample counts (see on_unparseable)."""
    choices: list[int | None] = field(default_factory=list)
    """Per sample, the choice index the judge picked (original order), None when unreadable."""
    reasons: list[str] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)

    @property
    def unparseable(self) -> int:
        return sum(c is None for c in self.choices)


UNPARSEABLE: dict[str, Callable[[int], float | None]] = {
    "lowest": lambda n: 0.0,
    "skip": lambda n: None,
}
"""What an unreadable verdict scores (n: the number of choices)."""


class JudgeReward:
    """See module doc."""

    def __init__(
        self,
        judge: ChatModel,
        *,
        name: str = "judge",
        samples: int = 1,
        shuffle: bool | None = None,
        on_unparseable: Literal["lowest", "skip"] = "lowest",
        fill_rubric: bool = False,
        prompt: str | Path = "judge",
        sampling: SamplingParams | None = None,
        cache: ReplyCache | None = None,
        pricing: Pricing | None = None,
        seed: int = 0,
    ) -> None:
        if samples < 1:
            raise ValueError(f"samples must be >= 1, got {samples}")
        if on_unparseable not in UNPARSEABLE:
            raise ValueError(f"on_unparseable must be one of {sorted(UNPARSEABLE)}, got {on_unparseable!r}")
        self.name = name
        self.samples = samples
        self.shuffle = samples > 1 if shuffle is None else shuffle
        self.on_unparseable = on_unparseable
        self.fill_rubric = fill_rubric
        self.template = load_prompt(prompt)
        self.caller = CachedCaller(judge, sampling=sampling, cache=cache, pricing=pricing)
        self.seed = seed

    def order(self, criterion: JudgeCriterion, traj: Trajectory, sample: int) -> list[int]:
        """The choice indices in the order sample `sample` shows them."""
        idx = list(range(len(criterion.choices)))
        if self.shuffle:
            random.Random(seed_of(self.seed, criterion.id, traj.id, sample)).shuffle(idx)
        return idx

    def messages(self, criterion: JudgeCriterion, conversation: str, order: Sequence[int]) -> list[dict]:
        options = "\n".join(f"{p + 1}. {criterion.choices[i]}" for p, i in enumerate(order))
        text = self.template.substitute(
            criterion=criterion.criterion, conversation=conversation, options=options
        )
        return [{"role": "user", "content": text}]

    async def judge(self, criterion: JudgeCriterion, traj: Trajectory) -> Judgement:
        n = len(criterion.choices)
        if n < 2:
            raise ValueError(f"judge criterion {criterion.id!r} needs at least 2 choices, got {n}")
        conversation = render_trajectory(traj)
        out = Judgement(criterion.id, None)
        values: list[float] = []
        for s in range(self.samples):
            order = self.order(criterion, traj, s)
            aliases = [[str(p + 1), criterion.choices[i]] for p, i in enumerate(order)]
            reply = await self.caller.ask(
                self.messages(criterion, conversation, order), salt=f"sample{s}", seed=self.seed + s
            )
            out.usage.add(reply.usage)
            shown = parse_verdict(reply.text, aliases)
            choice = None if shown is None else order[shown]
            out.choices.append(choice)
            out.reasons.append(reason_of(reply.text))
            v = UNPARSEABLE[self.on_unparseable](n) if choice is None else choice / (n - 1)
            if v is not None:
                values.append(v)
        out.score = sum(values) / len(values) if values else None
        return out

    async def judge_all(self, task: TaskSpec, traj: Trajectory) -> list[Judgement]:
        crits = [c for c in task.rubric.criteria if isinstance(c, JudgeCriterion)]
        return list(await asyncio.gather(*(self.judge(c, traj) for c in crits)))

    def rescored(self, task: TaskSpec, traj: Trajectory, judged: Sequence[Judgement]) -> RubricResult:
        """The trajectory's rubric result with its judge criteria graded by `judged`."""
        if traj.rubric is None:
            raise ValueError(f"trajectory {traj.id!r} has no rubric result to fill in; grade it first")
        by_id = {j.criterion: j for j in judged}
        results = []
        for r in traj.rubric.criteria:
            j = by_id.get(r.id) if r.kind == "judge" else None
            if j is not None:
                why = j.reasons[-1] if j.reasons else ""
                r = CriterionResult(
                    id=r.id, kind=r.kind, weight=r.weight, score=j.score, detail=f"judge: {_cut(why, 300)}"
                )
            results.append(r)
        return combine(task.rubric, results)

    async def rescore(self, task: TaskSpec, traj: Trajectory) -> RubricResult:
        return self.rescored(task, traj, await self.judge_all(task, traj))

    async def score(self, task: TaskSpec, trajectories: Sequence[Trajectory]) -> list[Score]:
        weights = {c.id: c.weight for c in task.rubric.criteria}
        out = []
        for traj in trajectories:
            judged = await self.judge_all(task, traj)
            usage = Usage()
            for j in judged:
                usage.add(j.usage)
            graded = [j for j in judged if j.score is not None]
            den = sum(weights[j.criterion] for j in graded)
            value = sum(weights[j.criterion] * j.score for j in graded) / den if den else 0.0  # type: ignore[operator]
            detail: dict[str, Any] = {
                **usage.detail("judge"),
                "judged": len(graded),
                "unparseable": sum(j.unparseable for j in judged),
                "reasons": {j.criterion: j.reasons for j in judged},
            }
            for j in graded:
                detail[f"criterion/{j.criterion}"] = j.score
            if self.fill_rubric:
                rubric = self.rescored(task, traj, judged)
                value = rubric.score
                detail["rubric"] = rubric
            out.append(Score(value, detail))
        return out


@register_reward("judge")
def judge_reward(
    judge: ChatModel | str = "embedded",
    *,
    cache: ReplyCache | str | None = "memory",
    per_1k_prompt: float = 0.0,
    per_1k_completion: float = 0.0,
    temperature: float = 0.0,
    max_new_tokens: int = 256,
    **options: Any,
) -> JudgeReward:
    """The judge reward from config values: a model or model spec, a cache ('memory', a JSONL path
    or None), prices per 1k tokens, sampling, and any `JudgeReward` option (samples, fill_rubric, ...)."""
    return JudgeReward(
        model_of(judge),
        cache=cache_of(cache),
        pricing=Pricing(per_1k_prompt, per_1k_completion),
        sampling=SamplingParams(temperature=temperature, max_new_tokens=max_new_tokens),
        **options,
    )
