"""Seed values for synthetic records: plausible, typed, deterministic in the RNG they are given.

`value(attr, rng, ctx)` makes one value of an attribute's type, using its name as a hint where that
helps (a `*_name`, `city`, `email`...). `JSON_SCHEMA` maps attribute types to JSON Schema. Every
value made here validates against the schema of its type (a test checks this for every type).
"""

from __future__ import annotations

import datetime as dt
import random
import re
from typing import Any

from agentgym.repository.synth.blueprint import AttributeBlueprint

NOW = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)

FIRST = (
    "Ada",
    "Bruno",
    "Chiara",
    "Dmitri",
    "Elif",
    "Farah",
    "Goran",
    "Hana",
    "Ivo",
    "Jonas",
    "Keiko",
    "Lena",
    "Mateo",
    "Nadia",
    "Omar",
    "Priya",
    "Quentin",
    "Rosa",
    "Sven",
    "Tariq",
    "Uma",
    "Viktor",
    "Wen",
    "Yusuf",
    "Zofia",
)
LAST = (
    "Albers",
    "Banerjee",
    "Costa",
    "Dubois",
    "Eriksen",
    "Fischer",
    "García",
    "Haddad",
    "Ito",
    "Jansen",
    "Kowalski",
    "Lindqvist",
    "Moreau",
    "Nakamura",
    "Okafor",
    "Petrov",
    "Quinn",
    "Rossi",
    "Silva",
    "Tanaka",
    "Ulrich",
    "Vega",
    "Weber",
    "Yilmaz",
    "Zhang",
)
CITIES = (
    "Lisbon",
    "Oslo",
    "Nairobi",
    "Osaka",
    "Lyon",
    "Porto",
    "Tallinn",
    "Austin",
    "Montreal",
    "Cape Town",
    "Valencia",
    "Kraków",
    "Bergen",
    "Hanoi",
    "Rotterdam",
    "Adelaide",
)
COUNTRIES = (
    "Portugal",
    "Norway",
    "Kenya",
    "Japan",
    "France",
    "Estonia",
    "United States",
    "Canada",
    "South Africa",
    "Spain",
    "Poland",
    "Vietnam",
    "Netherlands",
    "Australia",
)
STREETS = (
    "Harbour Road",
    "Elm Street",
    "Rua Augusta",
    "Kings Parade",
    "Mill Lane",
    "Station Square",
    "Oak Avenue",
)
ADJ = (
    "quarterly",
    "urgent",
    "annual",
    "draft",
    "northern",
    "premium",
    "weekly",
    "legacy",
    "shared",
    "spring",
    "pilot",
    "regional",
    "priority",
    "archived",
    "standard",
    "express",
)
NOUNS = (
    "review",
    "plan",
    "batch",
    "report",
    "summary",
    "update",
    "request",
    "schedule",
    "proposal",
    "audit",
    "note",
    "checklist",
    "brief",
    "log",
    "forecast",
)
WORDS = (
    "alpha",
    "harbor",
    "summit",
    "cedar",
    "orbit",
    "delta",
    "meadow",
    "nova",
    "quartz",
    "atlas",
    "ember",
    "willow",
    "falcon",
    "lumen",
    "coral",
    "tundra",
)
UNITS = ("kg", "m", "°C", "kWh", "L", "ppm", "bpm", "km/h", "%", "mg/dL")

JSON_SCHEMA: dict[str, dict[str, Any]] = {
    "string": {"type": "string", "minLength": 1, "maxLength": 200},
    "text": {"type": "string", "maxLength": 4000},
    "integer": {"type": "integer", "minimum": 0},
    "number": {"type": "number"},
    "money": {"type": "number", "minimum": 0},
    "boolean": {"type": "boolean"},
    "date": {"type": "string", "format": "date"},
    "datetime": {"type": "string", "format": "date-time"},
    "email": {"type": "string", "format": "email"},
    "url": {"type": "string", "format": "uri"},
    "phone": {"type": "string", "pattern": r"^\+?[0-9 ()-]{6,20}$"},
    "tags": {"type": "array", "items": {"type": "string", "minLength": 1}, "maxItems": 20},
    "rating": {"type": "integer", "minimum": 1, "maximum": 5},
    "percent": {"type": "number", "minimum": 0, "maximum": 100},
    "duration_minutes": {"type": "integer", "minimum": 0},
    "code": {"type": "string", "pattern": r"^[A-Z0-9][A-Z0-9-]{2,19}$"},
}


def schema_of(attr: AttributeBlueprint) -> dict[str, Any]:
    if attr.type == "enum":
        s: dict[str, Any] = {"type": "string", "enum": list(attr.values)}
    else:
        s = dict(JSON_SCHEMA[attr.type])
    if attr.description:
        s["description"] = attr.description
    return s


def _slug(s: str) -> str:
    return re.sub(r"[^a-z0-9]+", "", s.lower())


def _words(name: str) -> str:
    return name.replace("_", " ")


def value(attr: AttributeBlueprint, rng: random.Random, *, entity: str, domain: str, i: int) -> Any:
    """A plausible value for `attr` on the i-th seed record of `entity`."""
    t, n = attr.type, attr.name
    if t == "enum":
        return attr.values[i % len(attr.values)]
    if t == "boolean":
        return i % 3 != 0
    if t == "integer":
        return rng.randint(1, 500) if "year" not in n else rng.randint(1990, 2026)
    if t in ("number", "money"):
        return round(rng.uniform(5, 2500), 2)
    if t == "rating":
        return rng.randint(1, 5)
    if t == "percent":
        return round(rng.uniform(0, 100), 1)
    if t == "duration_minutes":
        return rng.choice((15, 30, 45, 60, 90, 120, 180))
    if t == "date":
        return (NOW + dt.timedelta(days=rng.randint(-120, 120))).date().isoformat()
    if t == "datetime":
        return (NOW + dt.timedelta(hours=rng.randint(-2000, 2000))).strftime("%Y-%m-%dT%H:00:00Z")
    if t == "email":
        return (
            f"{_slug(rng.choice(FIRST))}.{_slug(rng.choice(LAST))}{i}@{domain.replace('_', '-')[:20]}.example"
        )
    if t == "url":
        return f"https://{domain.replace('_', '-')[:24]}.example/{entity}/{i + 1}"
    if t == "phone":
        return f"+{rng.randint(1, 99)} {rng.randint(100, 999)} {rng.randint(1000, 9999)}"
    if t == "code":
        head = (re.sub(r"[^A-Za-z0-9]", "", entity)[:3] or "REF").upper()
        return f"{head}-{rng.randint(1000, 99999)}"
    if t == "tags":
        return sorted(rng.sample(WORDS, 2))
    if t == "text":
        return (
            f"{rng.choice(ADJ).capitalize()} {_words(entity)} {rng.choice(NOUNS)} about {rng.choice(WORDS)} "
            f"for the {_words(domain)} team."
        )
    # plain strings: use the field name as a hint
    if "name" in n and any(
        k in n for k in ("full", "person", "contact", "owner", "manager", "author", "agent")
    ):
        return f"{rng.choice(FIRST)} {rng.choice(LAST)}"
    if n in ("full_name", "sender", "therapist", "assignee", "driver", "instructor", "owner"):
        return f"{rng.choice(FIRST)} {rng.choice(LAST)}"
    if "city" in n:
        return rng.choice(CITIES)
    if "country" in n:
        return rng.choice(COUNTRIES)
    if "address" in n:
        return f"{rng.randint(1, 240)} {rng.choice(STREETS)}, {rng.choice(CITIES)}"
    if n == "unit":
        return rng.choice(UNITS)
    if n in ("name", "title", "plan", "username"):
        base = (
            f"{rng.choice(WORDS)}{rng.randint(10, 99)}"
            if n == "username"
            else f"{rng.choice(ADJ).capitalize()} {_words(entity)} {rng.choice(WORDS)}"
        )
        return base
    if "location" in n:
        return f"{rng.choice(('Hall', 'Room', 'Bay', 'Site', 'Dock'))} {rng.randint(1, 40)}, {rng.choice(CITIES)}"
    return f"{rng.choice(WORDS).capitalize()} {_words(n)} {rng.randint(1, 99)}"
