"""Shared base for every saved agentgym record.

Records that are saved and shared (tools, agents, tasks, rubrics, trajectories) derive from
`Record`: frozen, strict about unknown fields, and documented field by field (the docstring under
each field becomes its JSON-schema description). They round-trip through JSON exactly:
`Model.model_validate_json(m.model_dump_json()) == m`. Behaviour lives elsewhere.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

JsonDict = dict[str, Any]
"""A JSON object: what tool arguments, records and schemas are."""


class Record(BaseModel):
    """Frozen, documented, JSON-round-trippable data."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)
