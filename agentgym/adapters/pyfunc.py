"""A tool's JSON schema as a real Python function: the shape TRL and MCP servers demand of tools.

TRL (through `transformers.utils.get_json_schema`) and the MCP SDK's `MCPServer` (through pydantic)
both read a tool's parameters off a Python signature and its docstring, not off a JSON schema.
`tool_function(spec, call)` builds that function: keyword-only parameters named and typed after the
schema's properties (required ones without default), `Annotated[..., Field(description=...)]`
hints, and a Google-style docstring (`Args:`) holding each description. Calling it passes the
arguments the caller actually gave to `call(tool_name, arguments)`.

Limits (refused with `UnsupportedSchema`, never silently changed): a parameter name that is not a
Python identifier or is a keyword; a tool name starting with `_`. Lossy by nature: only `type`,
`enum`, `items`, `anyOf`/`oneOf` and `description` survive into the signature; bounds, patterns,
formats and nested object shapes do not. The full schema is still enforced, by the environment,
on every call.
"""

from __future__ import annotations

import inspect
import keyword
from collections.abc import Callable, Mapping
from typing import Annotated, Any, Literal, Union

from pydantic import Field

from agentgym.spec.tool import ToolSpec

_SCALARS: dict[str, Any] = {
    "string": str,
    "integer": int,
    "number": float,
    "boolean": bool,
    "null": type(None),
    "object": dict,
}


class UnsupportedSchema(ValueError):
    """A tool's schema cannot be written as a Python signature."""


def annotation(schema: Mapping[str, Any]) -> Any:
    """The Python type hint closest to a JSON schema (see module doc for what is lost)."""
    if schema.get("enum"):
        return Literal[tuple(schema["enum"])]
    for key in ("anyOf", "oneOf"):
        if schema.get(key):
            return Union[tuple(annotation(s) for s in schema[key])]  # noqa: UP007  (built from a tuple)
    kind = schema.get("type")
    if isinstance(kind, list):
        return Union[tuple(annotation({**schema, "type": k}) for k in kind)]  # noqa: UP007
    if kind == "array":
        items = schema.get("items")
        return list[annotation(items)] if isinstance(items, Mapping) else list
    return _SCALARS.get(kind, Any) if isinstance(kind, str) else Any


def allows_null(schema: Mapping[str, Any]) -> bool:
    kind = schema.get("type")
    kinds = kind if isinstance(kind, list) else [kind]
    return (
        "null" in kinds
        or None in (schema.get("enum") or ())
        or any(allows_null(s) for s in (schema.get("anyOf") or schema.get("oneOf") or ()))
    )


def _one_line(text: str) -> str:
    return " ".join(text.split())


def tool_function(
    spec: ToolSpec, call: Callable[[str, dict[str, Any]], Any], *, method: bool = False
) -> Callable[..., Any]:
    """A function named `spec.name` whose signature and docstring mirror its input schema.

    `method=True` adds a leading `self` (for binding onto a class); `call` then receives the
    instance first: `call(self, name, arguments)`.
    """
    if spec.name.startswith("_"):
        raise UnsupportedSchema(f"tool {spec.name!r}: names starting with '_' are private to Python peers")
    props: Mapping[str, Any] = spec.input_schema.get("properties") or {}
    required = set(spec.input_schema.get("required") or ())
    params, hints, doc_args = [], {}, []
    for name, schema in props.items():
        if not name.isidentifier() or keyword.iskeyword(name):
            raise UnsupportedSchema(
                f"tool {spec.name!r}: parameter {name!r} is not a Python identifier, so it cannot be a "
                "keyword argument of a Python tool"
            )
        desc = _one_line(schema.get("description") or "") or f"{schema.get('type', 'any')} value"
        hint = annotation(schema)
        if name not in required:
            hint = hint | None
        hints[name] = Annotated[hint, Field(description=desc)]
        default = inspect.Parameter.empty if name in required else None
        params.append(
            inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=hints[name])
        )
        doc_args.append(f"    {name}: {desc}")
    # Parameters a caller left out arrive as None from pydantic-based callers; drop those the
    # schema does not allow to be null, so "absent" stays absent.
    droppable = {n for n in props if n not in required and not allows_null(props[n])}
    name = spec.name

    def _args(kwargs: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in kwargs.items() if not (v is None and k in droppable)}

    if method:

        def fn(self: Any, **kwargs: Any) -> Any:
            return call(self, name, _args(kwargs))

        params.insert(0, inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD))
    else:

        def fn(**kwargs: Any) -> Any:
            return call(name, _args(kwargs))

    hints["return"] = str
    fn.__name__ = fn.__qualname__ = spec.name
    fn.__signature__ = inspect.Signature(params, return_annotation=str)  # type: ignore[attr-defined]
    fn.__annotations__ = hints
    description = _one_line(spec.description or spec.title or spec.name)
    fn.__doc__ = description + ("\n\nArgs:\n" + "\n".join(doc_args) if doc_args else "")
    return fn
