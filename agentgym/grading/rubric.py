"""Rubric grading: a pure function of what the agent did and the world it left.

In: the rubric, the calls made (`CallRecord`: turn, tool, decoded arguments, success), the final
reply, and the initial and final states. Out: a `RubricResult` with a score per criterion. The
deterministic kinds are graded by code — each kind is a function in `GRADERS`; `judge` criteria are
reported as ungraded (score None) and left out of the weighted mean until a judge model grades them.
`forbidden` criteria are gates: if one is violated the total is 0 whatever else was achieved.
No I/O, no randomness, no model.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import orjson

from agentgym.spec.rubric import (
    AnswerCriterion,
    CallCriterion,
    CallPattern,
    CheckpointCriterion,
    ForbiddenCriterion,
    Rubric,
    StateCriterion,
)
from agentgym.spec.trajectory import CriterionResult, RubricResult, Trajectory
from agentgym.spec.world import WorldSnapshot
from agentgym.world.conditions import Context, matches_all
from agentgym.world.normalize import canonical, canonical_text, same
from agentgym.world.state import WorldState, changed_records


@dataclass(slots=True, frozen=True)
class CallRecord:
    """One call as the grader sees it."""

    turn: int
    tool: str
    arguments: Mapping[str, Any] | None
    ok: bool


@dataclass(slots=True)
class Evidence:
    """Everything a criterion may look at."""

    calls: Sequence[CallRecord]
    answer: str
    initial: WorldSnapshot | WorldState
    final: WorldSnapshot | WorldState
    trace_fields: Mapping[str, frozenset[str]]
    touched: set[tuple[str, str]] | None = None
    """Records that may differ between initial and final (None: compare everything)."""
    replies: Sequence[str] = ()
    """Every visible assistant text of the dialogue, in order (for answer criteria with scope 'any')."""
    results: Mapping[str, Any] = field(default_factory=dict)
    """Outcomes backends measured at the end of the episode, by criterion id (e.g. hidden tests run
    in the sandbox: `{"passed": int, "total": int, "detail": str}`)."""
    _texts: dict[str, str] = field(default_factory=dict)

    def records(self, collection: str, where: Sequence[Any] = ()) -> list[dict[str, Any]]:
        """Records of a collection; narrowed to one when `where` pins the id (a dict lookup, not a scan)."""
        if isinstance(self.final, WorldState):
            for c in where:
                if c.field == "id" and c.op == "eq" and isinstance(c.value, str):
                    rec = self.final.get(collection, c.value)
                    return [rec] if rec is not None else []
            return list(self.final.iter(collection))
        return list(self.final.collections.get(collection, []))

    def matching_ids(self, collection: str, where: Sequence[Any]) -> list[str]:
        """Ids of final-state records meeting every condition, in collection order.

        When the final state is a fork of the initial one (`touched` given), the initial state's
        matches are computed once and kept in its memo; the final matches are those, corrected by
        the touched records alone — exact, and O(writes) per episode instead of a scan."""
        ctx = Context(now=self.now)
        init, final = self.initial, self.final
        pinned = any(c.field == "id" and c.op == "eq" and isinstance(c.value, str) for c in where)
        if (
            pinned
            or self.touched is None
            or not isinstance(init, WorldState)
            or not isinstance(final, WorldState)
        ):
            return [r["id"] for r in self.records(collection, where) if matches_all(where, r, ctx)]
        key = ("matches", collection, id(where))
        hit = init.memo.get(key)
        if hit is None or hit[0] is not where:
            hit = init.memo[key] = (
                where,
                frozenset(r["id"] for r in init.iter(collection) if matches_all(where, r, ctx)),
            )
        changed = {i for c, i in self.touched if c == collection}
        if not changed:
            ids = set(hit[1])
        else:
            ids = set(hit[1] - changed)
            for i in changed:
                r = final.get(collection, i)
                if r is not None and matches_all(where, r, ctx):
                    ids.add(i)
        return [i for i in final.collections.get(collection, {}) if i in ids] if len(ids) > 1 else list(ids)

    def text(self, scope: str) -> str:
        """The normalised reply text an answer criterion reads ('final' or 'any'), computed once."""
        cache = self._texts
        if scope not in cache:
            raw = self.answer if scope == "final" else "\n".join([*self.replies, self.answer])
            cache[scope] = canonical_text(raw)
        return cache[scope]

    @property
    def now(self) -> str:
        return self.final.now


def matches(pattern: CallPattern, call: CallRecord) -> bool:
    """Whether a call fits a pattern (name, argument subset in canonical form, outcome)."""
    if call.tool != pattern.tool and not any(
        call.tool == alt or (_is_glob(alt) and fnmatch.fnmatchcase(call.tool, alt))
        for alt in alternatives(pattern.tool)
    ):
        return False
    if pattern.succeeded is not None and call.ok != pattern.succeeded:
        return False
    if pattern.args:
        if call.arguments is None:
            return False
        for k, v in pattern.args.items():
            if not same(canonical(call.arguments.get(k)), canonical(v)):
                return False
    return True


@lru_cache(maxsize=65536)
def alternatives(tool: str) -> tuple[str, ...]:
    """The names or globs a pattern's `tool` allows (`a|b` allows either)."""
    return tuple(tool.split("|"))


def _is_glob(s: str) -> bool:
    return "*" in s or "?" in s or "[" in s


def _state(c: StateCriterion, ev: Evidence) -> CriterionResult:
    n = len(ev.matching_ids(c.collection, c.where))
    ok = {"exists": n >= 1, "absent": n == 0, "count": n == c.count}[c.expect]
    want = {"exists": "at least 1", "absent": "0", "count": str(c.count)}[c.expect]
    return _result(c, 1.0 if ok else 0.0, f"{n} matching record(s) in {c.collection}, want {want}")


def _call(c: CallCriterion, ev: Evidence) -> CriterionResult:
    hits = [call for call in ev.calls if matches(c, call)]
    ok = len(hits) >= c.min_count and (c.max_count is None or len(hits) <= c.max_count)
    bound = f"{c.min_count}..{'' if c.max_count is None else c.max_count}"
    turn = hits[c.min_count - 1].turn if ok and c.min_count and hits else None
    return _result(c, 1.0 if ok else 0.0, f"{len(hits)} matching call(s) to {c.tool}, want {bound}", turn)


def _checkpoint(c: CheckpointCriterion, ev: Evidence) -> CriterionResult:
    i, turn = 0, None
    for call in ev.calls:
        if i < len(c.sequence) and matches(c.sequence[i], call):
            i += 1
            turn = call.turn
    done = i == len(c.sequence)
    return _result(c, i / len(c.sequence), f"{i} of {len(c.sequence)} steps in order", turn if done else None)


def _answer(c: AnswerCriterion, ev: Evidence) -> CriterionResult:
    reply = ev.text(c.scope)
    found = [f for f in c.facts if _fact_pattern(f).search(reply) is not None]
    missing = [f for f in c.facts if f not in found]
    detail = "all facts stated" if not missing else f"missing: {', '.join(repr(m) for m in missing)}"
    return _result(c, len(found) / len(c.facts), detail)


@lru_cache(maxsize=65536)
def _fact_pattern(fact: str) -> re.Pattern[str]:
    """Matches the normalised fact as a whole token, not inside a longer word or number ('5' is not in '2025')."""
    return re.compile(r"(?<![\w.:-])" + re.escape(canonical_text(fact)) + r"(?![\w]|[.:]\d)")


def _fact_in(fact: str, reply: str) -> bool:
    """`fact` (normalised) occurs in `reply` (normalised) as a whole token."""
    return re.search(r"(?<![\w.:-])" + re.escape(fact) + r"(?![\w]|[.:]\d)", reply) is not None


def _forbidden(c: ForbiddenCriterion, ev: Evidence) -> CriterionResult:
    if c.call is not None:
        bad = [call for call in ev.calls if matches(c.call, call)]
        return _result(
            c,
            0.0 if bad else 1.0,
            f"forbidden call made at turn {bad[0].turn}" if bad else "not made",
            bad[0].turn if bad else None,
        )
    if c.collection is not None:
        bad_recs = ev.matching_ids(c.collection, c.where)
        return _result(
            c, 0.0 if bad_recs else 1.0, f"forbidden state: {bad_recs}" if bad_recs else "state avoided"
        )
    changes = changed_records(ev.initial, ev.final, ev.trace_fields, ev.touched)
    allowed = c.allow_changes or ()
    stray = [
        f"{col}/{rid}"
        for col, rid, before, _ in changes
        if before is not None and not any(fnmatch.fnmatchcase(f"{col}/{rid}", p) for p in allowed)
    ]
    return _result(
        c, 0.0 if stray else 1.0, f"collateral changes: {stray}" if stray else "no collateral changes"
    )


def _result(c: Any, score: float | None, detail: str, turn: int | None = None) -> CriterionResult:
    return CriterionResult(id=c.id, kind=c.kind, weight=c.weight, score=score, detail=detail, turn=turn)


def _tests(c: Any, ev: Evidence) -> CriterionResult:
    got = ev.results.get(c.id)
    if not got:
        return _result(c, 0.0, "the hidden tests were not run (no sandbox backend in this episode)")
    total = int(got.get("total", 0))
    passed = int(got.get("passed", 0))
    score = passed / total if total else 0.0
    return _result(
        c, score, f"{passed}/{total} tests passed" + (f"; {got['detail']}" if got.get("detail") else "")
    )


GRADERS: dict[str, Callable[[Any, Evidence], CriterionResult]] = {
    "state": _state,
    "call": _call,
    "checkpoint": _checkpoint,
    "answer": _answer,
    "forbidden": _forbidden,
    "judge": lambda c, ev: _result(c, None, "needs a judge model"),
    "tests": _tests,
}
GATES = frozenset({"forbidden"})


def grade(rubric: Rubric, ev: Evidence) -> RubricResult:
    """Score every criterion and combine them (see module doc)."""
    results = tuple(GRADERS[c.kind](c, ev) for c in rubric.criteria)
    return combine(rubric, results)


def combine(rubric: Rubric, results: Sequence[CriterionResult]) -> RubricResult:
    """Weighted mean of graded non-gate criteria, zeroed by any violated gate."""
    gated = any(r.kind in GATES and r.score == 0.0 for r in results)
    num = den = 0.0
    for r in results:
        if r.kind in GATES or r.score is None:
            continue
        num += r.weight * r.score
        den += r.weight
    score = 0.0 if gated or den == 0 else num / den
    ungraded = tuple(r.id for r in results if r.score is None)
    return RubricResult(
        score=score,
        passed=score >= rubric.pass_threshold - 1e-9,
        gated=gated,
        criteria=tuple(results),
        ungraded=ungraded,
    )


def calls_from_trajectory(traj: Trajectory) -> list[CallRecord]:
    """The grader's view of a saved trajectory's calls."""
    outcomes = {o.call_id: (t.index, o.ok) for t in traj.turns for o in t.calls}
    out = []
    for m in traj.messages:
        for tc in m.tool_calls or ():
            turn, ok = outcomes.get(tc.id, (-1, False))
            try:
                args = orjson.loads(tc.function.arguments)
            except orjson.JSONDecodeError:
                args = None
            out.append(CallRecord(turn, tc.function.name, args if isinstance(args, dict) else None, ok))
    return out


def replies(traj: Trajectory) -> list[str]:
    """Visible text of every assistant message, in order."""
    return [m.content for m in traj.dialogue() if m.role == "assistant" and m.content]


def final_answer(traj: Trajectory) -> str:
    """Text of the last assistant message that made no calls ('' if none)."""
    for m in reversed(traj.dialogue()):
        if m.role == "assistant" and not m.tool_calls:
            return m.content or ""
    return ""
