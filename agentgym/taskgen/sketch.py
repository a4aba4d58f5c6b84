"""A task in the making: the gold chain executed on the simulator, and the rubric derived from it.

`AgentView` sorts an agent's tools by what they do: per collection, by operation (`get_by_key` for
lookups by a unique field, `list_for_parent` for lists filtered by a reference), and the real tools
without semantics. A blueprint (`agentgym.taskgen.blueprints`) drives a `Sketch`: every `call`
runs on a private fork of the sampled initial state through the deterministic engine, so each
next call can use what earlier ones returned (ids read then used); `ask` adds a question the user
answers from hidden facts; `finish` sets the reply. A call that fails when it should not rejects
the draft (`Reject`); an expected failure (a refused operation to recover from) is kept.

`derive_rubric(sketch)` reads what happened, never what was intended:
- `state` criteria from the final-state diff (created records with the values given, updated
  fields, deleted ids; created ones also counted once by label);
- `call` criteria for each successful write (target id pinned), a lookup criterion for read-only
  tasks, and the call pattern (arguments, any outcome) for real tools;
- `checkpoint`s where a write used an id that an earlier read returned and the user never said —
  the read may be any of the agent's reads on that collection (`a|b|c` alternatives);
- `answer` facts the blueprint asked the reply to state; `judge` criteria for real-tool results;
- `forbidden`: no existing record outside the changed ones may change (collateral damage).
"""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from agentgym.grading.rubric import _fact_pattern
from agentgym.schema import validator
from agentgym.spec.agent import AgentSpec
from agentgym.spec.rubric import (
    AnswerCriterion,
    CallCriterion,
    CallPattern,
    CheckpointCriterion,
    Criterion,
    ForbiddenCriterion,
    JudgeCriterion,
    Rubric,
    StateCriterion,
)
from agentgym.spec.task import GoldCall, GoldTurn
from agentgym.spec.tool import Condition, ToolSpec
from agentgym.spec.world import EntitySpec
from agentgym.taskgen.worldgen import label_field
from agentgym.world.conditions import Context, matches_all
from agentgym.world.domain import World
from agentgym.world.engine import ToolFailure
from agentgym.world.normalize import canonical_text
from agentgym.world.state import WorldState, diff

READS = ("get", "get_by_key", "search", "list", "list_for_parent", "count")


class Reject(Exception):
    """This draft cannot make a valid task. `structural`: this agent's tools can never support the
    blueprint (the generator stops trying it for the agent); otherwise another draw may work."""

    def __init__(self, reason: str, *, structural: bool = False) -> None:
        super().__init__(reason)
        self.structural = structural


@dataclass(slots=True)
class CollectionView:
    collection: str
    entity: EntitySpec
    by_op: dict[str, list[ToolSpec]] = field(default_factory=lambda: defaultdict(list))

    def tools(self, *ops: str) -> list[ToolSpec]:
        return [t for op in ops for t in self.by_op.get(op, ())]

    def read_pattern(self) -> str:
        return "|".join(dict.fromkeys(t.name for t in self.tools(*READS)))


class AgentView:
    """An agent's tools by collection and operation (see module doc)."""

    def __init__(self, world: World, agent: AgentSpec) -> None:
        self.agent = agent
        self.cols: dict[str, CollectionView] = {}
        self.real: list[ToolSpec] = []
        for name in agent.tools:
            t = world.tools[name]
            sem = t.semantics
            if sem is None or sem.collection not in world.entities:
                self.real.append(t)
                continue
            entity = world.entities[sem.collection]
            view = self.cols.setdefault(sem.collection, CollectionView(sem.collection, entity))
            op = sem.operation
            if op == "get" and sem.key_field != "id":
                op = "get_by_key"
            elif op == "list" and any(f.field in entity.refs and f.op == "eq" for f in sem.filters.values()):
                view.by_op["list_for_parent"].append(t)
            view.by_op[op].append(t)


@dataclass(slots=True)
class Step:
    tool: ToolSpec
    args: dict[str, Any]
    ok: bool
    result: Any = None
    error: str | None = None
    executed: bool = True
    """False for real tools, which the simulator cannot run (their result is unknown)."""


class Sketch:
    """See module doc."""

    def __init__(
        self, world: World, view: AgentView, initial: WorldState, rng: random.Random, style: str
    ) -> None:
        self.world = world
        self.view = view
        self.initial = initial
        self.state = initial.fork()
        self.rng = rng
        self.style = style
        self.turns: list[GoldTurn] = []
        self.steps: list[Step] = []
        self.instruction = ""
        self.facts: list[str] = []
        """Strings the final reply must state."""
        self.mentioned: list[str] = []
        """Values the user said (their ids are not read-then-used dependencies)."""
        self.hidden: dict[str, Any] = {}
        self.follow_ups: list[str] = []
        self.judge: list[str] = []
        self.answer = ""
        self.kind = ""
        self.tags: list[str] = []
        self.rubric: Rubric | None = None
        """Set from `derive_rubric` once the chain is complete."""

    # ---- the gold chain -------------------------------------------------------------------

    def call(self, tool: ToolSpec, args: dict[str, Any], *, expect_ok: bool | None = True) -> Any:
        """Run one call (its own turn); returns the result. See `calls` for parallel calls."""
        return self.calls([(tool, args)], expect_ok=expect_ok)[0]

    def calls(
        self, batch: list[tuple[ToolSpec, dict[str, Any]]], *, expect_ok: bool | None = True
    ) -> list[Any]:
        """Run calls made together in one assistant turn, in order; returns their results (a
        `ToolFailure` for a failed one). `expect_ok`: True — any failure rejects the draft; False —
        the calls must fail; None — either."""
        results = []
        for tool, args in batch:
            if validator(tool.input_schema).check(args) is not None:
                raise Reject(f"arguments for {tool.name} break its schema")
            if tool.semantics is None or tool.semantics.collection not in self.world.entities:
                self.steps.append(Step(tool, args, ok=False, executed=False))
                results.append(None)
                continue
            try:
                result = self.world.engine.run(tool, args, self.state)
            except ToolFailure as e:
                if expect_ok:
                    raise Reject(f"{tool.name} failed: {e.message}") from None
                self.steps.append(Step(tool, args, ok=False, error=e.kind))
                results.append(e)
                continue
            if expect_ok is False:
                raise Reject(f"{tool.name} was meant to fail and did not")
            self.steps.append(Step(tool, args, ok=True, result=result))
            results.append(result)
        self.turns.append(GoldTurn(calls=tuple(GoldCall(tool=t.name, arguments=a) for t, a in batch)))
        return results

    def ask(self, question: str, key: str, value: Any, reply: str) -> None:
        """The agent asks for a detail the user knows but did not say; the user's scripted reply."""
        self.turns.append(GoldTurn(answer=question))
        self.hidden[key] = value
        self.follow_ups.append(reply)
        self.mentioned.append(str(value))

    def say(self, text: str, *mentioned: Any) -> None:
        """The user's opening request, and the values it states."""
        self.instruction = text
        self.mentioned += [str(m) for m in mentioned]

    def finish(self, answer: str, facts: list[Any] = ()) -> None:  # type: ignore[assignment]
        self.answer = answer
        self.facts = list(dict.fromkeys(str(f) for f in facts))
        short = [f for f in self.facts if len(f) < 3 and not f.isdigit()]
        if short:
            raise Reject(f"facts too short to check: {short}")
        norm = canonical_text(answer)
        missing = [f for f in self.facts if _fact_pattern(f).search(norm) is None]
        if missing:
            raise Reject(f"the gold answer does not state {missing}")
        self.turns.append(GoldTurn(answer=answer))

    # ---- what it amounts to ---------------------------------------------------------------

    @property
    def num_calls(self) -> int:
        return len(self.steps)

    @property
    def failed_calls(self) -> int:
        return sum(not s.ok and s.executed for s in self.steps)

    def difficulty(self) -> str:
        asks = bool(self.follow_ups)
        if self.num_calls >= 5 and (asks or self.failed_calls):
            return "complex"
        if self.num_calls == 1 and not asks and not self.failed_calls:
            return "simple"
        return "moderate"


def _where_after(before: dict[str, Any] | None, after: dict[str, Any], fields: list[str]) -> list[Condition]:
    conds = []
    for f in fields:
        if f in after:
            conds.append(Condition(field=f, op="eq", value=after[f]))
        elif before is not None and f in before:
            conds.append(Condition(field=f, op="missing"))
    return conds


def derive_rubric(sk: Sketch) -> Rubric:
    """The rubric of what the gold chain did (see module doc)."""
    crit: list[Criterion] = []
    world = sk.world
    changes = diff(sk.initial, sk.state, world.trace_fields, sk.state.touched())
    changed_existing: list[str] = []
    created_args: dict[str, dict[str, Any]] = {}
    for s in sk.steps:
        if s.ok and s.tool.semantics and s.tool.semantics.operation in ("create", "clone"):
            sem = s.tool.semantics
            mapped = {sem.field_args.get(a, a): v for a, v in s.args.items() if a != sem.id_arg}
            created_args[s.result["id"] if isinstance(s.result, dict) and "id" in s.result else ""] = mapped
    for i, ch in enumerate(changes):
        ent = world.entities[ch.collection]
        if ch.after is None:
            crit.append(
                StateCriterion(
                    id=f"deleted-{i}",
                    description=f"{ch.id} is deleted",
                    weight=2,
                    collection=ch.collection,
                    where=(Condition(field="id", value=ch.id),),
                    expect="absent",
                )
            )
            changed_existing.append(f"{ch.collection}/{ch.id}")
        elif ch.before is None:
            given = created_args.get(ch.id, {})
            fields = [f for f in given if f in ch.after and f != "id"]
            where = tuple(Condition(field=f, value=ch.after[f]) for f in fields)
            if not where:
                raise Reject("a created record with no given field cannot be checked")
            ctx = Context(now=sk.initial.now)
            if any(matches_all(where, r, ctx) for r in sk.initial.iter(ch.collection)):
                raise Reject("the created record looks like one that already exists")
            crit.append(
                StateCriterion(
                    id=f"created-{i}",
                    description=f"a new {ch.collection} record with the requested values",
                    weight=2,
                    collection=ch.collection,
                    where=where,
                )
            )
            label = label_field(ent)
            if label and label in ch.after:
                if any(r.get(label) == ch.after[label] for r in sk.initial.iter(ch.collection)):
                    raise Reject("the new record's name is already taken")
                crit.append(
                    StateCriterion(
                        id=f"created-once-{i}",
                        description="created exactly once",
                        collection=ch.collection,
                        where=(Condition(field=label, value=ch.after[label]),),
                        expect="count",
                        count=1,
                    )
                )
        else:
            fields = sorted(
                f
                for f in set(ch.before) | set(ch.after)
                if f != "id" and ch.before.get(f, _MISSING) != ch.after.get(f, _MISSING)
            )
            crit.append(
                StateCriterion(
                    id=f"updated-{i}",
                    description=f"{ch.id}: {', '.join(fields)} as requested",
                    weight=2,
                    collection=ch.collection,
                    where=(Condition(field="id", value=ch.id), *_where_after(ch.before, ch.after, fields)),
                )
            )
            changed_existing.append(f"{ch.collection}/{ch.id}")

    said = {canonical_text(m) for m in sk.mentioned} | {canonical_text(sk.instruction)}
    produced: dict[str, str] = {}
    """id → read pattern of the collection whose read returned it."""
    writes = 0
    for n, s in enumerate(sk.steps):
        sem = s.tool.semantics
        if not s.executed:
            crit.append(
                CallCriterion(
                    id=f"call-{n}",
                    description=f"calls {s.tool.name} with the requested arguments",
                    tool=s.tool.name,
                    args=s.args,
                    succeeded=None,
                )
            )
            continue
        if sem is None or not s.ok:
            continue
        if sem.operation in ("get", "list", "search", "count"):
            view = sk.view.cols[sem.collection]
            for rid in _ids_in(s.result):
                produced.setdefault(rid, view.read_pattern())
            continue
        writes += 1
        pinned = {sem.id_arg: s.args[sem.id_arg]} if sem.id_arg and sem.id_arg in s.args else {}
        crit.append(
            CallCriterion(id=f"call-{n}", description=f"uses {s.tool.name}", tool=s.tool.name, args=pinned)
        )
        for arg, value in s.args.items():
            if (
                isinstance(value, str)
                and value in produced
                and not any(canonical_text(value) in m for m in said)
            ):
                crit.append(
                    CheckpointCriterion(
                        id=f"lookup-before-{n}-{arg}",
                        description=f"finds {value} before using it",
                        sequence=(
                            CallPattern(tool=produced[value]),
                            CallPattern(tool=s.tool.name, args={arg: value}),
                        ),
                    )
                )
    if writes == 0:
        for col in dict.fromkeys(
            s.tool.semantics.collection for s in sk.steps if s.tool.semantics and s.executed
        ):
            crit.append(
                CallCriterion(
                    id=f"looked-up-{col.split('.')[-1]}",
                    description=f"reads {col}",
                    tool=sk.view.cols[col].read_pattern(),
                    succeeded=None,
                )
            )
    if sk.facts:
        crit.append(
            AnswerCriterion(id="answer", description="states what was asked", weight=2, facts=tuple(sk.facts))
        )
    for j, text in enumerate(sk.judge):
        crit.append(JudgeCriterion(id=f"judge-{j}", description=text, criterion=text))
    if any(s.executed for s in sk.steps):
        crit.append(
            ForbiddenCriterion(
                id="no-collateral",
                description="no other existing record changes",
                allow_changes=tuple(changed_existing),
            )
        )
    return Rubric(criteria=tuple(crit))


_MISSING = object()


def _ids_in(result: Any) -> list[str]:
    if isinstance(result, dict):
        if "items" in result:
            return [r["id"] for r in result["items"] if isinstance(r, dict) and "id" in r]
        if "id" in result:
            return [result["id"]]
    return []
