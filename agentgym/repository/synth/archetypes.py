"""Archetypes: the base attributes each kind of entity brings (data, used by the builder).

A blueprint's entity declares an archetype and adds its own attributes; the builder prepends the
archetype's attributes. Names here are reserved: a blueprint attribute may not reuse them, nor
`id`, `status` (the lifecycle's field) or `<entity>_id` (references).
"""

from __future__ import annotations

from agentgym.repository.synth.blueprint import AttributeBlueprint as A

CURRENCIES = ("USD", "EUR", "GBP", "JPY", "CHF")

ARCHETYPES: dict[str, tuple[A, ...]] = {
    "person": (
        A(name="full_name", type="string", required=True),
        A(name="email", type="email"),
        A(name="phone", type="phone"),
        A(name="created_at", type="datetime"),
    ),
    "organization": (
        A(name="name", type="string", required=True),
        A(name="website", type="url"),
        A(name="country", type="string", filterable=True),
        A(name="created_at", type="datetime"),
    ),
    "item": (
        A(name="name", type="string", required=True),
        A(name="description", type="text"),
        A(name="price", type="money"),
        A(name="quantity", type="integer"),
    ),
    "event": (
        A(name="title", type="string", required=True),
        A(name="starts_at", type="datetime", required=True),
        A(name="ends_at", type="datetime"),
        A(name="location", type="string"),
    ),
    "document": (
        A(name="title", type="string", required=True),
        A(name="body", type="text"),
        A(name="tags", type="tags", filterable=True),
        A(name="updated_at", type="datetime"),
    ),
    "transaction": (
        A(name="amount", type="money", required=True),
        A(name="currency", type="enum", values=CURRENCIES, filterable=True),
        A(name="reference", type="code"),
        A(name="created_at", type="datetime"),
    ),
    "place": (
        A(name="name", type="string", required=True),
        A(name="address", type="string"),
        A(name="city", type="string", filterable=True),
        A(name="country", type="string"),
    ),
    "task": (
        A(name="title", type="string", required=True),
        A(name="description", type="text"),
        A(name="priority", type="enum", values=("low", "medium", "high", "urgent"), filterable=True),
        A(name="due_date", type="date"),
    ),
    "asset": (
        A(name="name", type="string", required=True),
        A(name="serial_number", type="code"),
        A(name="location", type="string"),
        A(name="acquired_on", type="date"),
    ),
    "message": (
        A(name="body", type="text", required=True),
        A(name="sent_at", type="datetime"),
        A(name="sender", type="string", filterable=True),
    ),
    "measurement": (
        A(name="value", type="number", required=True),
        A(name="unit", type="string"),
        A(name="recorded_at", type="datetime", required=True),
    ),
    "subscription": (
        A(name="plan", type="string", required=True),
        A(name="price", type="money"),
        A(name="renews_on", type="date"),
        A(name="seats", type="integer"),
    ),
    "media": (
        A(name="title", type="string", required=True),
        A(name="url", type="url"),
        A(name="duration_minutes", type="duration_minutes"),
        A(name="published_at", type="datetime"),
    ),
    "account": (
        A(name="username", type="string", required=True),
        A(name="email", type="email"),
        A(name="verified", type="boolean", filterable=True),
        A(name="created_at", type="datetime"),
    ),
}

RESERVED = frozenset({"id", "status"})
