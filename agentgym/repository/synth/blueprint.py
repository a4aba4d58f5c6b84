"""DomainBlueprint: what a synthetic domain is, before it becomes tools.

A blueprint names a domain (its category, a one-line description) and its entities; each entity
has an archetype (which brings base attributes: a person has a name and an email, an event has a
start and an end, ...), domain-specific attributes with types, optionally a status lifecycle
(states and named transitions: `approve: submitted -> approved`) and references to other entities
of the domain. Blueprints come from the taxonomy file (compositional generator) or from a model
(model-assisted generator); `agentgym.repository.synth.build` turns any valid blueprint into a
`DomainSpec` whose every tool has exact semantics. Data only.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from agentgym.spec.base import Record

Archetype = Literal[
    "person",
    "organization",
    "item",
    "event",
    "document",
    "transaction",
    "place",
    "task",
    "asset",
    "message",
    "measurement",
    "subscription",
    "media",
    "account",
]
AttrType = Literal[
    "string",
    "text",
    "integer",
    "number",
    "money",
    "boolean",
    "date",
    "datetime",
    "email",
    "url",
    "phone",
    "enum",
    "tags",
    "rating",
    "percent",
    "duration_minutes",
    "code",
]
SLUG = re.compile(r"^[a-z][a-z0-9_]*$")


class AttributeBlueprint(Record):
    name: str
    """snake_case field name."""
    type: AttrType
    """Value type; decides the JSON Schema and how seed values are made."""
    values: tuple[str, ...] = ()
    """Allowed values (type 'enum')."""
    required: bool = False
    """Whether create must be given it."""
    description: str = ""
    """What it holds."""
    filterable: bool = False
    """Whether list tools filter on it."""

    @field_validator("name")
    @classmethod
    def _slug(cls, v: str) -> str:
        if not SLUG.match(v):
            raise ValueError(f"attribute name {v!r} must be snake_case")
        return v

    @model_validator(mode="after")
    def _enum_values(self) -> AttributeBlueprint:
        if (self.type == "enum") != bool(self.values):
            raise ValueError(f"attribute {self.name!r}: values are required exactly for type 'enum'")
        return self


class TransitionBlueprint(Record):
    verb: str
    """snake_case action verb, e.g. 'approve'."""
    source: tuple[str, ...] = Field(min_length=1)
    """States the transition may start from."""
    target: str
    """State it ends in."""


class LifecycleBlueprint(Record):
    states: tuple[str, ...] = Field(min_length=2)
    """Status values; the first is the state of new records."""
    transitions: tuple[TransitionBlueprint, ...] = Field(min_length=1)
    """Named transitions (each becomes an action tool)."""

    @model_validator(mode="after")
    def _known_states(self) -> LifecycleBlueprint:
        known = set(self.states)
        for t in self.transitions:
            bad = [s for s in (*t.source, t.target) if s not in known]
            if bad:
                raise ValueError(f"transition {t.verb!r} uses unknown states {bad}")
        verbs = [t.verb for t in self.transitions]
        if len(verbs) != len(set(verbs)):
            raise ValueError(f"transition verbs must be unique: {verbs}")
        return self


class EntityBlueprint(Record):
    name: str
    """Singular snake_case noun, e.g. 'invoice'."""
    plural: str | None = None
    """Plural form when not name + 's'."""
    archetype: Archetype
    """Base attributes and seed-value style."""
    description: str = ""
    """What one record is."""
    attributes: tuple[AttributeBlueprint, ...] = ()
    """Domain-specific attributes (added to the archetype's)."""
    lifecycle: LifecycleBlueprint | None = None
    """Status lifecycle, if the entity has one."""
    refs: tuple[str, ...] = ()
    """Names of other entities of the domain each record belongs to (becomes `<name>_id`)."""

    @field_validator("name")
    @classmethod
    def _slug(cls, v: str) -> str:
        if not SLUG.match(v):
            raise ValueError(f"entity name {v!r} must be snake_case")
        return v

    @property
    def plural_name(self) -> str:
        from agentgym.repository.words import plural

        return self.plural or plural(self.name)


class DomainBlueprint(Record):
    name: str
    """Globally unique snake_case domain name (also the tools' namespace)."""
    category: str
    """Taxonomy category."""
    description: str
    """One sentence on what the domain's service does."""
    entities: tuple[EntityBlueprint, ...] = Field(min_length=1, max_length=6)
    """Its entity types."""

    @field_validator("name")
    @classmethod
    def _slug(cls, v: str) -> str:
        if not SLUG.match(v):
            raise ValueError(f"domain name {v!r} must be snake_case")
        return v

    @model_validator(mode="after")
    def _refs_resolve(self) -> DomainBlueprint:
        names = [e.name for e in self.entities]
        if len(names) != len(set(names)):
            raise ValueError(f"entity names must be unique: {names}")
        for e in self.entities:
            for r in e.refs:
                if r not in names or r == e.name:
                    raise ValueError(f"entity {e.name!r} refers to {r!r}, not another entity of the domain")
        return self


class CategoryBlueprint(Record):
    name: str
    """Category name, e.g. 'Health & Fitness'."""
    domains: tuple[DomainBlueprint, ...]
    """Its application domains."""


class Taxonomy(Record):
    categories: tuple[CategoryBlueprint, ...]
    """Every category, in order."""
