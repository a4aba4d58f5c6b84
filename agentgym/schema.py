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
from jsonschema.validators import validator_for

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


_META: dict[type, Any] = {}
_META_CHECKED: dict[bytes, tuple[str, str] | None] = {}


def _meta_validator(cls: type) -> Any:
    meta = _META.get(cls)
    if meta is None:
        meta = _META[cls] = cls(cls.META_SCHEMA)
    return meta


_TEXT_ANNOTATIONS = ("description", "title", "$comment")


def _unique_strings(value: Any) -> bool:
    return (
        isinstance(value, list) and all(isinstance(v, str) for v in value) and len(set(value)) == len(value)
    )


def _shape(schema: Any, cls: type) -> Any:
    """`schema` less what the Draft 2020-12 meta-schema constrains by type alone — string
    annotations, an array of examples or enum values, any default or const, a `required` array of
    distinct strings — so that schemas differing only in wording or names share one cache entry; a
    value of the wrong type is kept for the meta-schema to report. Other dialects are kept whole
    (draft 4, for one, wants `required` and `enum` non-empty)."""
    if not isinstance(schema, dict) or cls is not jsonschema.Draft202012Validator:
        return schema
    drop = {k for k in _TEXT_ANNOTATIONS if isinstance(schema.get(k), str)}
    drop |= {k for k in ("examples", "enum") if isinstance(schema.get(k), list)}
    drop |= {k for k in ("default", "const") if k in schema}
    if _unique_strings(schema.get("required")):
        drop.add("required")
    return {k: v for k, v in schema.items() if k not in drop} if drop else schema


def _meta_check(schema: Any, cls: type) -> tuple[str, str] | None:
    """(path, message) of the best meta-validation error of `schema` under dialect `cls`, or None.

    Meta-validation is compositional: each subschema under `properties`, `items` or
    `additionalProperties` is checked against the meta-schema on its own, so a schema is checked as
    its subschemas plus a shell without them, each cached by its shape (`_shape`). Tool schemas
    repeat the same few shapes endlessly, so this gives the verdict of checking each whole about
    10x faster over a repository of generated tools."""
    schema = _shape(schema, cls)
    key = cls.__name__.encode() + dumps(schema, sort_keys=True)
    if key in _META_CHECKED:
        return _META_CHECKED[key]
    found: tuple[str, str] | None = None
    if isinstance(schema, dict):
        subs: list[tuple[str, Any]] = []
        if isinstance(schema.get("properties"), dict) and schema["properties"]:
            subs += [(f"properties/{k}", v) for k, v in schema["properties"].items()]
        subs += [(k, schema[k]) for k in ("items", "additionalProperties") if isinstance(schema.get(k), dict)]
        if subs:
            for where, sub in subs:
                err = _meta_check(sub, cls)
                if err is not None:
                    found = ("/".join(p for p in (where, err[0]) if p), err[1])
                    break
            if found is None:  # the names of properties are free; the subschemas passed above
                shell = {k: v for k, v in schema.items() if k not in ("items", "additionalProperties")}
                if "properties" in shell and isinstance(shell["properties"], dict):
                    shell["properties"] = {}
                found = _meta_check(shell, cls)
        else:
            found = _best_error(schema, cls)
    else:
        found = _best_error(schema, cls)
    if len(_META_CHECKED) >= _CACHE_MAX:
        _META_CHECKED.clear()
    _META_CHECKED[key] = found
    return found


def _best_error(schema: Any, cls: type) -> tuple[str, str] | None:
    err = jsonschema.exceptions.best_match(_meta_validator(cls).iter_errors(schema))
    if err is None:
        return None
    return "/".join(str(p) for p in err.absolute_path), err.message


def check_schema(schema: Any) -> str | None:
    """None when `schema` is a valid JSON Schema under its `$schema` dialect (Draft 2020-12 when it
    declares none), else why not (`path: message`)."""
    cls = validator_for(schema, default=jsonschema.Draft202012Validator) if isinstance(schema, dict) else None
    err = _meta_check(schema, cls or jsonschema.Draft202012Validator)
    if err is None:
        return None
    return f"{err[0]}: {err[1]}" if err[0] else err[1]
