"""Self-critique rubric reward: the critic compares a group's rollouts pairwise and ranks them.

In: one task and its group of G finished trajectories (a GRPO group). Out: one `Score` per
trajectory in [0, 1], from pairwise comparisons by a critic `ChatModel` (by default the policy
model itself: pass it as `critic`). Each comparison is one prompt (`prompts/compare.txt`) showing
the rubrics — the YAML files `rubrics/core.yaml` and `rubrics/prescriptive.yaml` unless other paths
are given — the task rubric (the user's request and the task's criteria described in words,
`task_rubric`), and two compact renderings (`render_trajectory`). The critic writes its reason
first, then `<verdict>A</verdict>`, `B` or `tie` (parsed by `judge.parse_verdict`).

Every pair is judged in BOTH orders, so a critic that always prefers the first (or second) slot
gives each side one win and cancels out; `position_consistency` reports the share of pairs whose
two verdicts named the same rollout. All pairs when G(G-1)/2 <= `max_pairs` (28: every pair for
G <= 8), otherwise a seeded random subset of `max_pairs` pairs. An unparseable verdict is dropped
from the aggregation and counted (`unparseable`). Outcomes become scores by a registered
aggregator (`AGGREGATORS`): `win_rate` (wins + ties/2 over comparisons; 0.5 with none) or
`bradley_terry` (MM iterations of Hunter 2004 with a tiny symmetric prior of `prior` virtual games
per pair for existence and stability; the score is the mean modelled probability of beating each
other rollout). A group of one gets 0.5. The reward never mutates a trajectory.
"""

from __future__ import annotations

import asyncio
import itertools
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from agentgym.models.base import ChatModel, SamplingParams
from agentgym.rewards.base import Score
from agentgym.rewards.judge import (
    CachedCaller,
    Pricing,
    ReplyCache,
    Usage,
    bundled_file,
    cache_of,
    load_prompt,
    model_of,
    parse_verdict,
    reason_of,
    render_trajectory,
    seed_of,
)
from agentgym.rewards.registry import register_reward
from agentgym.spec.base import Record
from agentgym.spec.task import TaskSpec
from agentgym.spec.trajectory import Trajectory
from agentgym.yamlfile import load_yaml

RUBRICS = Path(__file__).parent / "rubrics"

# ---- rubrics ----------------------------------------------------------------------------------------


class RubricItem(Record):
    id: str
    """Short name, shown to the critic."""
    text: str
    """The standard, in words."""


class CritiqueRubric(Record):
    """A rubric file: named criteria the critic compares responses against."""

    name: str
    """Rubric name (core, prescriptive, ...)."""
    description: str = ""
    """What the rubric is for (shown as its heading)."""
    criteria: tuple[RubricItem, ...] = Field(min_length=1)
    """The criteria, in display order."""


def load_rubric(name_or_path: str | Path) -> CritiqueRubric:
    """A rubric YAML: a bundled one by name (`core`, `prescriptive`) or any path."""
    return CritiqueRubric.model_validate(load_yaml(bundled_file(name_or_path, RUBRICS, ".yaml", "rubric")))


def render_rubric(r: CritiqueRubric) -> str:
    head = f"{r.name.upper()} RUBRIC" + (f" ({r.description})" if r.description else "")
    return "\n".join([head, *(f"- {c.id}: {c.text}" for c in r.criteria)])


def _conds(where: Sequence[Any]) -> str:
    return " and ".join(f"{c.field} {c.op} {c.value!r}" for c in where) or "any"


def _args(args: dict[str, Any]) -> str:
    return f" with {', '.join(f'{k}={v!r}' for k, v in args.items())}" if args else ""


DESCRIBE: dict[str, Callable[[Any], str]] = {
    "call": lambda c: (
        f"calls {c.tool}{_args(c.args)}"
        + (f" at least {c.min_count} times" if c.min_count > 1 else "")
        + (f", at most {c.max_count} times" if c.max_count is not None else "")
    ),
    "checkpoint": lambda c: (
        "makes these calls in this order: " + ", then ".join(f"{p.tool}{_args(p.args)}" for p in c.sequence)
    ),
    "answer": lambda c: "the reply states: " + "; ".join(c.facts),
    "state": lambda c: {
        "exists": f"leaves a record in {c.collection} where {_conds(c.where)}",
        "absent": f"leaves no record in {c.collection} where {_conds(c.where)}",
        "count": f"leaves exactly {c.count} records in {c.collection} where {_conds(c.where)}",
    }[c.expect],
    "forbidden": lambda c: (
        f"never calls {c.call.tool}{_args(c.call.args)}"
        if c.call is not None
        else f"never leaves a record in {c.collection} where {_conds(c.where)}"
        if c.collection is not None
        else f"changes no existing record outside {', '.join(c.allow_changes or ()) or 'none'}"
    ),
    "judge": lambda c: c.criterion,
    "tests": lambda c: "the code it writes passes the hidden unit tests",
}
"""A task criterion in words, by kind (used when the criterion has no description)."""


def task_rubric(task: TaskSpec) -> str:
    """The task rubric in words: the request, then each criterion (its description or DESCRIBE)."""
    lines = [f"TASK RUBRIC (the user's request: {task.instruction!r}). A good response:"]
    for c in task.rubric.criteria:
        lines.append(f"- {c.description or DESCRIBE[c.kind](c)}")
    return "\n".join(lines)


# ---- aggregation --------------------------------------------------------------------------------------

Outcome = tuple[int, int, float]
"""(i, j, s): one comparison of rollout i against j; s is i's result (1 win, 0.5 tie, 0 loss)."""

AGGREGATORS: dict[str, Callable[..., list[float]]] = {}


def aggregator(name: str) -> Callable[[Callable[..., list[float]]], Callable[..., list[float]]]:
    """Register `f(n, outcomes, **options) -> n scores in [0, 1]` under `name`."""

    def deco(f: Callable[..., list[float]]) -> Callable[..., list[float]]:
        AGGREGATORS[name] = f
        return f

    return deco


@aggregator("win_rate")
def win_rate(n: int, outcomes: Sequence[Outcome], **_: Any) -> list[float]:
    """Each rollout's share of points over its comparisons (tie = half); 0.5 with none."""
    pts, games = [0.0] * n, [0] * n
    for i, j, s in outcomes:
        pts[i] += s
        pts[j] += 1 - s
        games[i] += 1
        games[j] += 1
    return [p / g if g else 0.5 for p, g in zip(pts, games, strict=True)]


def bradley_terry_strengths(
    n: int, outcomes: Sequence[Outcome], prior: float = 0.1, iters: int = 1000, tol: float = 1e-12
) -> list[float]:
    """Bradley–Terry strengths p (geometric mean 1) by the MM algorithm: p_i <- W_i / sum_j N_ij /
    (p_i + p_j). Ties count half a win to each side; `prior` adds that many virtual games to every
    pair, split evenly, so the estimate exists (no infinite strength) and the comparison graph is
    connected even for a random subset of pairs."""
    wins = [[0.0] * n for _ in range(n)]
    for i, j, s in outcomes:
        wins[i][j] += s
        wins[j][i] += 1 - s
    if prior > 0:
        for i, j in itertools.permutations(range(n), 2):
            wins[i][j] += prior / 2
    games = [[wins[i][j] + wins[j][i] for j in range(n)] for i in range(n)]
    w = [sum(row) for row in wins]
    p = [1.0] * n
    for _ in range(iters):
        new = []
        for i in range(n):
            den = sum(games[i][j] / (p[i] + p[j]) for j in range(n) if j != i and games[i][j])
            new.append(w[i] / den if den else p[i])
        g = _geomean([x for x in new if x > 0]) or 1.0
        new = [x / g for x in new]
        delta = max(abs(a - b) / max(b, 1e-300) for a, b in zip(new, p, strict=True))
        p = new
        if delta < tol:
            break
    return p


def _geomean(xs: Sequence[float]) -> float:
    if not xs:
        return 0.0
    prod = 1.0
    for x in xs:
        prod *= x ** (1 / len(xs))
    return prod


@aggregator("bradley_terry")
def bradley_terry(n: int, outcomes: Sequence[Outcome], prior: float = 0.1, **_: Any) -> list[float]:
    """Each rollout's mean Bradley–Terry probability of beating each other rollout; 0.5 alone."""
    if n == 1:
        return [0.5]
    p = bradley_terry_strengths(n, outcomes, prior)
    return [
        sum(p[i] / (p[i] + p[j]) if p[i] + p[j] else 0.5 for j in range(n) if j != i) / (n - 1)
        for i in range(n)
    ]


def choose_pairs(n: int, max_pairs: int, seed: int) -> list[tuple[int, int]]:
    """Every pair (i < j) when there are at most `max_pairs`, else a seeded random subset."""
    pairs = list(itertools.combinations(range(n), 2))
    if len(pairs) <= max_pairs:
        return pairs
    return sorted(random.Random(seed).sample(pairs, max_pairs))


# ---- the reward ---------------------------------------------------------------------------------------

Verdict = Literal["A", "B", "tie"]
VERDICTS: tuple[Verdict, ...] = ("A", "B", "tie")
ALIASES = (
    ("A", "response a", "a is better", "assistant a"),
    ("B", "response b", "b is better", "assistant b"),
    ("tie", "equal", "draw"),
)
_RESULT = {"A": 1.0, "B": 0.0, "tie": 0.5}


@dataclass(slots=True)
class Comparison:
    """One prompt: rollout `first` shown as A, `second` as B."""

    first: int
    second: int
    verdict: Verdict | None
    """None: unparseable."""
    reason: str
    text: str
    """The critic's whole reply."""
    messages: list[dict[str, Any]]
    """The exact prompt (what a critic training example reuses)."""

    def outcome(self) -> Outcome | None:
        """(first, second, first's result), or None when unparseable."""
        return None if self.verdict is None else (self.first, self.second, _RESULT[self.verdict])


@dataclass(slots=True)
class CritiqueResult:
    scores: list[float]
    comparisons: list[Comparison]
    usage: Usage = field(default_factory=Usage)

    @property
    def unparseable(self) -> int:
        return sum(c.verdict is None for c in self.comparisons)

    @property
    def position_consistency(self) -> float | None:
        """Share of pairs, both verdicts readable, whose two orders preferred the same rollout (or
        both tie); None when no pair has two readable verdicts."""
        by_pair: dict[tuple[int, int], list[float]] = {}
        for c in self.comparisons:
            o = c.outcome()
            if o is not None:
                i, j, s = o
                by_pair.setdefault((min(i, j), max(i, j)), []).append(s if i < j else 1 - s)
        both = [v for v in by_pair.values() if len(v) == 2]
        return sum(v[0] == v[1] for v in both) / len(both) if both else None


class SelfCritiqueReward:
    """See module doc."""

    def __init__(
        self,
        critic: ChatModel,
        *,
        name: str = "self_critique",
        rubrics: Sequence[str | Path] = ("core", "prescriptive"),
        aggregator: str = "bradley_terry",
        prior: float = 0.1,
        max_pairs: int = 28,
        prompt: str | Path = "compare",
        sampling: SamplingParams | None = None,
        cache: ReplyCache | None = None,
        pricing: Pricing | None = None,
        seed: int = 0,
    ) -> None:
        if aggregator not in AGGREGATORS:
            raise ValueError(f"unknown aggregator {aggregator!r}; registered: {sorted(AGGREGATORS)}")
        if max_pairs < 1:
            raise ValueError(f"max_pairs must be >= 1, got {max_pairs}")
        self.name = name
        self.rubrics = [load_rubric(r) for r in rubrics]
        self.aggregator = aggregator
        self.prior = prior
        self.max_pairs = max_pairs
        self.template = load_prompt(prompt)
        self.caller = CachedCaller(critic, sampling=sampling, cache=cache, pricing=pricing)
        self.seed = seed

    def messages(self, task: TaskSpec, a: str, b: str) -> list[dict[str, Any]]:
        """The comparison prompt for responses rendered as `a` and `b`."""
        text = self.template.substitute(
            rubrics="\n\n".join(render_rubric(r) for r in self.rubrics),
            task=task_rubric(task),
            a=a,
            b=b,
        )
        return [{"role": "user", "content": text}]

    async def compare(
        self, task: TaskSpec, shown: Sequence[str], first: int, second: int
    ) -> tuple[Comparison, Usage]:
        msgs = self.messages(task, shown[first], shown[second])
        reply = await self.caller.ask(msgs, seed=seed_of(self.seed, task.id, first, second))
        k = parse_verdict(reply.text, ALIASES)
        verdict = None if k is None else VERDICTS[k]
        return Comparison(first, second, verdict, reason_of(reply.text), reply.text, msgs), reply.usage

    async def compare_group(self, task: TaskSpec, trajectories: Sequence[Trajectory]) -> CritiqueResult:
        """Both-order comparisons of the chosen pairs, and the aggregated scores."""
        n = len(trajectories)
        shown = [render_trajectory(t, request=False) for t in trajectories]
        pairs = choose_pairs(n, self.max_pairs, seed_of(self.seed, task.id, n))
        jobs = [self.compare(task, shown, i, j) for i, j in pairs] + [
            self.compare(task, shown, j, i) for i, j in pairs
        ]
        done = await asyncio.gather(*jobs)
        result = CritiqueResult([], [c for c, _ in done])
        for _, u in done:
            result.usage.add(u)
        outcomes = [o for c in result.comparisons if (o := c.outcome()) is not None]
        result.scores = AGGREGATORS[self.aggregator](n, outcomes, prior=self.prior)
        return result

    async def score(self, task: TaskSpec, trajectories: Sequence[Trajectory]) -> list[Score]:
        r = await self.compare_group(task, trajectories)
        n = len(trajectories)
        per: list[dict[str, float]] = [
            {"wins": 0.0, "losses": 0.0, "ties": 0.0, "comparisons": 0.0} for _ in range(n)
        ]
        for c in r.comparisons:
            o = c.outcome()
            if o is None:
                continue
            i, j, s = o
            for k, res in ((i, s), (j, 1 - s)):
                per[k]["comparisons"] += 1
                per[k]["wins" if res == 1 else "losses" if res == 0 else "ties"] += 1
        # Group-level numbers (the critic's tokens and cost for the whole group) carry a `group_`
        # prefix: they repeat on every rollout, so sum them over groups, not over rollouts.
        group = {
            **{f"group_{k}": v for k, v in r.usage.detail("critic").items()},
            "group_unparseable": r.unparseable,
            "group_comparisons": len(r.comparisons),
        }
        if r.position_consistency is not None:
            group["group_position_consistency"] = r.position_consistency
        return [Score(s, {**d, **group}) for s, d in zip(r.scores, per, strict=True)]


@register_reward("self_critique")
def self_critique_reward(
    critic: ChatModel | str,
    *,
    cache: ReplyCache | str | None = "memory",
    per_1k_prompt: float = 0.0,
    per_1k_completion: float = 0.0,
    temperature: float = 0.0,
    max_new_tokens: int = 256,
    **options: Any,
) -> SelfCritiqueReward:
    """The self-critique reward from config values. `critic` is required: pass the policy model
    itself (the default critic, as in K2) or a model spec for a separate critic."""
    return SelfCritiqueReward(
        model_of(critic),
        cache=cache_of(cache),
        pricing=Pricing(per_1k_prompt, per_1k_completion),
        sampling=SamplingParams(temperature=temperature, max_new_tokens=max_new_tokens),
        **options,
    )
