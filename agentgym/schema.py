"""JSON Schema validation on the hot path.

`validator(schema)` returns a compiled, cached `Validator` whose `check(instance)` gives None for a
valid instance or a one-line reason for an invalid one. Schemas are compiled with `fastjsonschema`
(about 20× faster than `jsonschema` on tool-sized objects, which keeps `env.step` cheap); a schema
fastjsonschema cannot compile falls back to `jsonschema`'s Draft 2020-12 validator. Defaults in a
schema are never written into the instance. `check_schema` meta-validates a schema itself.
"""

from __future__ import annotations

from typing import Any

import fastjsonschema
import jsonschema

from agentgym.jsonutil import dumps

_CACHE: dict[bytes, Validator] = {}
_CACHE_MAX = 100_000


class Validator:
    """A compiled schema."""

    __slots__ = ("_fast", "_slow", "schema")

    def __init__(self, schema: dict[str, Any]) -> None:
        self.schema = schema
        self._fast = None
        self._slow = None
        try:
            self._fast = fastjsonschema.compile(schema, use_default=False, use_formats=True)
        except Exception:  # unsupported construct: fall back to the reference implementation
            self._slow = jsonschema.Draft202012Validator(schema, format_checker=None)

    def check(self, instance: Any) -> str | None:
        """None when valid, else the first reason it is not."""
        if self._fast is not None:
            try:
                self._fast(instance)
            except fastjsonschema.JsonSchemaValueException as e:
                return e.message
            except Exception as e:  # a schema whose generated code fails at run time (odd crawled schemas)
                return f"could not validate: {type(e).__name__}: {e}"
            return None
        err = jsonschema.exceptions.best_match(self._slow.iter_errors(instance))
        if err is None:
            return None
        where = "/".join(str(p) for p in err.absolute_path)
        return f"{where}: {err.message}" if where else err.message


_BY_ID: dict[int, tuple[dict[str, Any], Validator]] = {}


def validator(schema: dict[str, Any]) -> Validator:
    """The compiled validator for `schema`, cached by canonical JSON (and, for the hot path, by the
    identity of the schema object, which the entry keeps alive so its id cannot be reused)."""
    hit = _BY_ID.get(id(schema))
    if hit is not None and hit[0] is schema:
        return hit[1]
    key = dumps(schema, sort_keys=True)
    v = _CACHE.get(key)
    if v is None:
        if len(_CACHE) >= _CACHE_MAX:
            _CACHE.clear()
        v = _CACHE[key] = Validator(schema)
    if len(_BY_ID) >= _CACHE_MAX:
        _BY_ID.clear()
    _BY_ID[id(schema)] = (schema, v)
    return v


def check_schema(schema: Any) -> str | None:
    """None when `schema` is a valid JSON Schema (Draft 2020-12 meta-schema), else why not."""
    try:
        jsonschema.Draft202012Validator.check_schema(schema)
    except jsonschema.SchemaError as e:
        return e.message
    return None
