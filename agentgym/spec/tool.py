"""ToolSpec: one tool, in the MCP `Tool` shape, plus where it came from and what it means.

A ToolSpec is what an agent holds and what a backend executes. The MCP fields (`name`,
`description`, `input_schema`, `output_schema`, `annotations`) are what a model sees; `provenance`,
`taxonomy` and `semantics` are what agentgym needs to place, license and simulate it. `semantics` is
present only for tools whose effect on world state is known; those run on the deterministic engine
(`agentgym.world.engine`), the rest need a real backend or a model of the world.

Names are namespaced per server (`server__tool`, see `qualified_name`) so two servers' `search`
never collide, and stay valid OpenAI function names (`^[a-zA-Z0-9_-]{1,64}$`).
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator

from agentgym.spec.base import JsonDict, Record

TOOL_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
Operation = Literal["create", "get", "list", "search", "count", "update", "delete", "action", "clone"]


def qualified_name(server: str, tool: str) -> str:
    """The exposed name of `tool` from `server`: `server__tool`, cleaned to the OpenAI charset."""
    raw = f"{server}__{tool}"
    return re.sub(r"[^A-Za-z0-9_-]", "_", raw)[:64]


class ToolAnnotations(Record):
    """MCP behaviour hints (all optional, as in the protocol)."""

    title: str | None = None
    """Human-readable title."""
    read_only_hint: bool | None = None
    """The tool does not modify its environment."""
    destructive_hint: bool | None = None
    """The tool may perform destructive updates."""
    idempotent_hint: bool | None = None
    """Calling the tool twice with the same arguments has no additional effect."""
    open_world_hint: bool | None = None
    """The tool interacts with an open world of external entities."""


class Provenance(Record):
    """Where a tool spec came from, and whether it may be redistributed."""

    source: Literal["starter", "crawl", "live", "synthetic"]
    """How it entered the repository: hand-written starter world, crawl dump, live MCP scrape, or generated."""
    server: str
    """The MCP server (or synthetic domain) that offers it."""
    original_name: str
    """The tool's name on that server, before namespacing."""
    package: str | None = None
    """Package or repository it is installed from, with version where known."""
    license: str | None = None
    """SPDX-like licence of the server; decides whether the spec may ship."""


class Taxonomy(Record):
    """Place in the category → domain tree."""

    category: str
    """Top-level category, e.g. 'Productivity'."""
    domain: str
    """Specific application domain, e.g. 'calendar'."""


class Condition(Record):
    """A predicate over a record field: `record[field] <op> value`.

    `value` may be a literal or a reference: `{"$arg": name}` (a call argument), `{"$field": name}`
    (another field of the same record), `{"$now": true}` (the world clock). Used by list filters,
    preconditions, and rubric state criteria alike.
    """

    field: str
    """Record field, dotted for nested objects."""
    op: Literal[
        "eq",
        "ne",
        "gt",
        "gte",
        "lt",
        "lte",
        "in",
        "not_in",
        "contains",
        "not_contains",
        "icontains",
        "exists",
        "missing",
    ] = "eq"
    """Comparison. `contains` tests list membership or substring; `icontains` is case-insensitive substring."""
    value: object = None
    """Right-hand side: literal or reference (see class doc)."""
    message: str | None = None
    """Error shown to the agent when this is a precondition and it fails."""


class Effect(Record):
    """One change a domain action makes to its target record."""

    op: Literal["set", "append", "remove", "increment"]
    """`set` a field, `append`/`remove` an item of a list field, `increment` a number."""
    field: str
    """The field changed."""
    value: object = None
    """Literal or reference (`$arg`, `$field`, `$now`), as in `Condition`."""


class FilterArg(Record):
    """How a list/search argument filters records."""

    field: str
    """Record field the argument is compared with."""
    op: str = "eq"
    """Comparison, as in `Condition.op`."""


class ToolSemantics(Record):
    """What a tool does to world state, precisely enough for the deterministic engine to run it."""

    operation: Operation
    """The kind of effect."""
    collection: str
    """Entity collection acted on, e.g. 'calendar.events'."""
    id_arg: str | None = None
    """Argument naming the target record (get, update, delete, action, clone)."""
    key_field: str = "id"
    """Record field the `id_arg` value is matched against (a unique field such as `email` for lookups)."""
    field_args: dict[str, str] = Field(default_factory=dict)
    """Argument → record field for create/update (unlisted arguments map to same-named fields)."""
    filters: dict[str, FilterArg] = Field(default_factory=dict)
    """Argument → filter, for list and search."""
    query_arg: str | None = None
    """Free-text argument for search."""
    search_fields: tuple[str, ...] = ()
    """Fields the search query is matched against."""
    sort: str | None = None
    """Field results are ordered by (prefix '-' for descending); id order otherwise."""
    page_size: int = 20
    """Default page size for list and search."""
    limit_arg: str | None = None
    """Argument that sets the page size."""
    cursor_arg: str | None = None
    """Argument carrying the pagination cursor."""
    preconditions: tuple[Condition, ...] = ()
    """Must all hold on the target record before an update, delete or action."""
    ref_preconditions: dict[str, tuple[Condition, ...]] = Field(default_factory=dict)
    """Argument → conditions the record it references must meet (e.g. posting needs a channel that
    is not archived). The argument's field must be a reference (`EntitySpec.refs`)."""
    effects: tuple[Effect, ...] = ()
    """Changes an action (or, after its field changes, an update) makes to its target record; an
    effect whose value is an omitted optional argument is skipped."""
    defaults: JsonDict = Field(default_factory=dict)
    """Field defaults on create (values may be references)."""
    touch: dict[str, object] = Field(default_factory=dict)
    """Trace fields a read updates (e.g. last_opened_at); ignored by state comparison."""
    confidence: float = Field(default=1.0, ge=0, le=1)
    """1.0 for authored or generated semantics; lower when inferred from a real tool's name,
    description, schema and annotations (only confident inferences are stored)."""
    returns: Literal["record", "id", "ack", "page"] | None = None
    """Shape of the result; by default record for single-record ops, page for list/search, ack for delete."""


class ToolSpec(Record):
    """One tool an agent can call."""

    name: str
    """Exposed, namespaced name (see `qualified_name`)."""
    description: str
    """What the tool does, for the model."""
    input_schema: JsonDict
    """JSON Schema of the arguments (an object schema)."""
    output_schema: JsonDict | None = None
    """JSON Schema of structured results, when known; results are validated against it."""
    title: str | None = None
    """Human-readable title."""
    annotations: ToolAnnotations = Field(default_factory=ToolAnnotations)
    """MCP behaviour hints."""
    provenance: Provenance
    """Where the spec came from."""
    taxonomy: Taxonomy
    """Category and domain."""
    semantics: ToolSemantics | None = None
    """Known effect on world state; None means the deterministic engine cannot run it."""

    @field_validator("name")
    @classmethod
    def _valid_name(cls, v: str) -> str:
        if not TOOL_NAME.match(v):
            raise ValueError(f"tool name {v!r} must match {TOOL_NAME.pattern}")
        return v

    @field_validator("input_schema")
    @classmethod
    def _object_schema(cls, v: JsonDict) -> JsonDict:
        if v.get("type", "object") != "object":
            raise ValueError("input_schema must describe an object")
        return v

    @property
    def read_only(self) -> bool:
        """True when the tool cannot change state (by semantics, else by annotation)."""
        if self.semantics is not None:
            return self.semantics.operation in ("get", "list", "search", "count")
        return bool(self.annotations.read_only_hint)

    def openai_schema(self) -> JsonDict:
        """The tool as an OpenAI `tools` entry (what chat templates take)."""
        return {
            "type": "function",
            "function": {"name": self.name, "description": self.description, "parameters": self.input_schema},
        }
