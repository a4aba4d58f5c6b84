"""Values for tasks: a new value for a record field, and plausible arguments for a real tool.

`new_value(schema, current, pool, rng, field)` returns a value that validates against `schema`,
differs from `current`, and looks like the field's other values: another enum member, a nearby
number, a shifted date, a value taken from another record (`pool`), or a fresh name for label
fields. `tool_arguments(input_schema, rng)` fills a real tool's arguments from its schema: the
schema's own examples first, then defaults, enums, then hints from the argument name. Both return
None when they cannot make a valid value; callers drop that draft. Deterministic in `rng`.
"""

from __future__ import annotations

import datetime as dt
import random
import re
from collections.abc import Sequence
from typing import Any

from agentgym.repository.synth.values import ADJ, CITIES, FIRST, LAST, WORDS
from agentgym.schema import validator

PERSON_HINTS = ("full_name", "person", "contact", "owner", "manager", "author", "assignee", "therapist")
LABEL_FIELDS = ("title", "name", "full_name", "display_name", "label", "subject", "headline")


def valid(schema: dict[str, Any], value: Any) -> bool:
    return validator(schema).check(value) is None


def fresh_label(field: str, noun: str, rng: random.Random) -> str:
    if any(h in field for h in PERSON_HINTS):
        return f"{rng.choice(FIRST)} {rng.choice(LAST)}"
    return f"{rng.choice(ADJ).capitalize()} {noun} {rng.choice(WORDS)}"


def _shift(value: str, rng: random.Random) -> str | None:
    days = rng.choice((-7, -3, -1, 1, 2, 3, 7, 14))
    try:
        if len(value) == 10:
            return (dt.date.fromisoformat(value) + dt.timedelta(days=days)).isoformat()
        t = dt.datetime.fromisoformat(value.replace("Z", "+00:00")) + dt.timedelta(days=days)
        return t.strftime("%Y-%m-%dT%H:%M:%SZ")
    except ValueError:
        return None


def new_value(
    schema: dict[str, Any],
    current: Any,
    pool: Sequence[Any],
    rng: random.Random,
    field: str = "",
    noun: str = "record",
) -> Any:
    """A valid value of `schema` other than `current` (see module doc), or None."""
    candidates: list[Any] = []
    if "enum" in schema:
        candidates = [v for v in schema["enum"] if v != current]
    elif schema.get("type") == "boolean":
        candidates = [not current] if isinstance(current, bool) else [True, False]
    elif schema.get("type") in ("integer", "number"):
        lo, hi = schema.get("minimum"), schema.get("maximum")
        base = current if isinstance(current, (int, float)) and not isinstance(current, bool) else 10
        steps = [1, 2, 3, 5, 10] if schema.get("type") == "integer" else [1.5, 2.25, 5.0, 12.5]
        candidates = [base + s for s in steps] + [base - s for s in steps]
        if schema.get("type") == "integer":
            candidates = [int(c) for c in candidates]
        else:
            candidates = [round(c, 2) for c in candidates]
        candidates = [c for c in candidates if (lo is None or c >= lo) and (hi is None or c <= hi)]
    elif schema.get("type") == "string":
        fmt = schema.get("format")
        if fmt in ("date", "date-time") and isinstance(current, str):
            shifted = _shift(current, rng)
            candidates = [shifted] if shifted else []
        elif field in LABEL_FIELDS or field.endswith("_name"):
            candidates = [fresh_label(field, noun, rng) for _ in range(3)]
        candidates += [v for v in pool if v != current and isinstance(v, str)]
        if not candidates and "pattern" not in schema and fmt is None:
            candidates = [f"{rng.choice(ADJ)} {rng.choice(WORDS)}".capitalize()]
    if schema.get("type") != "string":
        rng.shuffle(candidates)
    for c in candidates:
        if c != current and valid(schema, c):
            return c
    return None


# ---- real tools ------------------------------------------------------------------------------

_NAME_HINTS: tuple[tuple[str, tuple[Any, ...]], ...] = (
    ("url", ("https://example.com", "https://www.python.org", "https://en.wikipedia.org/wiki/Lisbon")),
    ("email", ("ana.costa@example.com", "li.wei@example.org")),
    ("city", CITIES),
    ("location", CITIES),
    ("country", ("Portugal", "Japan", "Kenya", "Canada")),
    ("query", ("renewable energy", "python asyncio", "climate policy", "open source licences")),
    ("search", ("renewable energy", "python asyncio")),
    ("keyword", ("solar", "kubernetes", "coffee")),
    ("topic", ("machine learning", "urban gardening")),
    ("symbol", ("AAPL", "BTC", "ETH")),
    ("ticker", ("AAPL", "MSFT")),
    ("repo", ("octocat/hello-world",)),
    ("owner", ("octocat",)),
    ("path", ("/tmp/notes.txt", "README.md")),
    ("file", ("report.csv", "notes.txt")),
    ("language", ("en", "python")),
    ("lang", ("en", "fr")),
    ("date", ("2026-03-02",)),
    ("name", ("Ana Costa", "project-atlas")),
    ("title", ("Quarterly review",)),
    ("text", ("Hello from agentgym", "The quick brown fox")),
    ("message", ("Build finished",)),
    ("content", ("Meeting notes: ship on Friday",)),
    ("id", ("12345", "abc-001")),
    ("address", ("0x742d35Cc6634C0532925a3b844Bc454e4438f44e",)),
)


def _by_name(name: str, schema: dict[str, Any], rng: random.Random) -> Any:
    low = name.lower()
    t = schema.get("type")
    if t == "boolean":
        return bool(schema.get("default", False))
    if t in ("integer", "number"):
        lo, hi = schema.get("minimum", 1), schema.get("maximum", 10)
        v = max(lo, min(hi, 5 if "limit" in low or "count" in low or "num" in low else lo))
        return int(v) if t == "integer" else float(v)
    if t not in (None, "string"):
        return None
    for hint, values in _NAME_HINTS:
        if hint in low:
            return rng.choice(values)
    return None


def tool_arguments(input_schema: dict[str, Any], rng: random.Random) -> dict[str, Any] | None:
    """Valid arguments for a real tool (see module doc), or None when none can be made."""
    for ex in input_schema.get("examples") or ():
        if isinstance(ex, dict) and valid(input_schema, ex):
            return dict(ex)
    props = input_schema.get("properties") or {}
    args: dict[str, Any] = {}
    for name in input_schema.get("required") or ():
        schema = props.get(name)
        if not isinstance(schema, dict):
            return None
        if "default" in schema:
            v = schema["default"]
        elif schema.get("enum"):
            v = rng.choice(schema["enum"])
        elif schema.get("examples"):
            v = schema["examples"][0]
        else:
            v = _by_name(name, schema, rng)
        if v is None or not valid(schema, v):
            return None
        args[name] = v
    return args if valid(input_schema, args) else None


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
