"""Sample an initial world state for a task: the agent's domains' seed records, varied.

`sample_state(world, collections, rng)` starts from the seed records of the given collections and
adds new records made by crossover: a copy of a seed record (so fields that must agree, like a
start and its end, stay together), with some fields taken from other records, enum fields
redrawn, unique fields made unique and a fresh label. References point at existing records of the
referenced collection. Every new record validates against its entity's schema and invariants, or
it is dropped. Deterministic in `rng`.
"""

from __future__ import annotations

import copy
import random
from collections.abc import Iterable
from typing import Any

from agentgym.agents.catalog import noun_of
from agentgym.schema import validator
from agentgym.spec.world import EntitySpec, WorldSnapshot
from agentgym.taskgen.values import LABEL_FIELDS, fresh_label
from agentgym.world.conditions import Context, matches_all
from agentgym.world.domain import World
from agentgym.world.state import WorldState


def label_field(entity: EntitySpec) -> str | None:
    """The field people name a record by (title, name, ...), if the entity has one."""
    props = entity.record_schema.get("properties", {})
    for f in (*LABEL_FIELDS, *sorted(p for p in props if p.endswith("_name"))):
        if props.get(f, {}).get("type") == "string" and "enum" not in props[f]:
            return f
    return None


def noun(entity: EntitySpec) -> str:
    """What one record is called ('patient'), from the entity's description or collection."""
    return noun_of({"collection": entity.collection, "description": entity.description})


def _unique_variant(value: Any, taken: set[Any], rng: random.Random) -> Any:
    if not isinstance(value, str):
        return None
    for _ in range(6):
        n = rng.randint(2, 99)
        cand = value.replace("@", f"{n}@", 1) if "@" in value else f"{value}-{n}"
        if cand not in taken:
            return cand
    return None


def _new_record(
    entity: EntitySpec, donors: list[dict[str, Any]], state: WorldState, rng: random.Random, now: str
) -> dict[str, Any] | None:
    props = entity.record_schema.get("properties", {})
    rec = copy.deepcopy(rng.choice(donors))
    locked = {c.field for c in entity.invariants} | {
        v["$field"] for c in entity.invariants if isinstance(v := c.value, dict) and "$field" in v
    }
    for f, schema in props.items():
        if f == "id" or f in locked or f in entity.refs:
            continue
        if "enum" in schema and rng.random() < 0.6:
            rec[f] = rng.choice(schema["enum"])
        elif rng.random() < 0.4:
            other = rng.choice(donors)
            if f in other:
                rec[f] = copy.deepcopy(other[f])
    for f, target in entity.refs.items():
        ids = [r["id"] for r in state.iter(target)]
        if f in rec and ids:
            rec[f] = rng.choice(ids)
    label = label_field(entity)
    if label and label in rec:
        rec[label] = fresh_label(label, noun(entity), rng)
    for f in entity.unique:
        if f in rec:
            taken = {r.get(f) for r in state.iter(entity.collection)}
            if rec[f] in taken:
                rec[f] = _unique_variant(rec[f], taken, rng)
                if rec[f] is None:
                    return None
    if label:
        taken_labels = {r.get(label) for r in state.iter(entity.collection)}
        if rec.get(label) in taken_labels:
            return None
    rec["id"] = state.next_id(entity.collection, entity.id_prefix)
    if validator(entity.record_schema).check(rec) is not None:
        return None
    if entity.invariants and not matches_all(entity.invariants, rec, Context(now=now)):
        return None
    return rec


def sample_state(
    world: World, collections: Iterable[str], rng: random.Random, extra: tuple[int, int] = (1, 5)
) -> WorldSnapshot:
    """The seed records of `collections`, plus `extra` (min, max) new records each (see module doc)."""
    cols = list(dict.fromkeys(collections))
    seed = {c: world.seed.collections.get(c, []) for c in cols}
    state = WorldState.from_snapshot(WorldSnapshot(now=world.seed.now, collections=seed))
    # parents first, so new children can reference new parents too
    order = sorted(cols, key=lambda c: len(world.entities[c].refs))
    for c in order:
        entity = world.entities[c]
        donors = list(seed[c])
        if not donors:
            continue
        for _ in range(rng.randint(*extra)):
            rec = _new_record(entity, donors, state, rng, world.seed.now)
            if rec is not None:
                state.put(c, rec)
    return state.snapshot()
