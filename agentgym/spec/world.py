"""World data: the entity types a domain keeps, the domain itself, and a world state as data.

`EntitySpec` types one collection of records (its JSON Schema, id prefix, unique and reference
fields, and trace fields that reads update and comparisons ignore). `DomainSpec` bundles a domain's
entities, tools and seed records; it is what the hand-written data files in `tools/` hold and what
generators emit. `WorldSnapshot` is a complete state; `agentgym.world.state.WorldState` is its
live form.
"""

from __future__ import annotations

from pydantic import Field, model_validator

from agentgym.spec.base import JsonDict, Record
from agentgym.spec.tool import Condition, ToolSpec


class WorldSnapshot(Record):
    """A complete world state as data."""

    now: str = "2026-03-02T09:00:00Z"
    """The world clock (ISO 8601, UTC); deterministic, never the wall clock."""
    collections: dict[str, list[JsonDict]] = Field(default_factory=dict)
    """Collection name → records; every record has a string `id`."""


class EntitySpec(Record):
    """One typed collection of records."""

    collection: str
    """Globally unique collection name, `domain.entities`."""
    description: str = ""
    """What a record represents."""
    id_prefix: str
    """New ids are `{id_prefix}_{n:04d}`."""
    record_schema: JsonDict
    """JSON Schema every record must satisfy (an object schema with `id`)."""
    unique: tuple[str, ...] = ()
    """Fields no two records may share."""
    refs: dict[str, str] = Field(default_factory=dict)
    """Field → collection whose record id it must name."""
    trace_fields: tuple[str, ...] = ()
    """Fields that reads update (last_opened_at, ...); ignored by every state comparison."""
    invariants: tuple[Condition, ...] = ()
    """Conditions every record must keep (e.g. end after start); a write that breaks one is refused."""


class DomainSpec(Record):
    """A domain: entities, tools over them, and seed records."""

    name: str
    """Domain name, also the tools' server namespace."""
    category: str
    """Top-level category."""
    description: str = ""
    """What the domain is about."""
    entities: tuple[EntitySpec, ...]
    """Its collections."""
    tools: tuple[ToolSpec, ...]
    """Its tools."""
    seed: WorldSnapshot = Field(default_factory=WorldSnapshot)
    """Seed records (the starter world state)."""

    @model_validator(mode="after")
    def _consistent(self) -> DomainSpec:
        names = {e.collection for e in self.entities}
        for t in self.tools:
            if t.semantics is not None and t.semantics.collection not in names:
                raise ValueError(f"tool {t.name} acts on unknown collection {t.semantics.collection!r}")
        for c in self.seed.collections:
            if c not in names:
                raise ValueError(f"seed records for unknown collection {c!r}")
        return self
