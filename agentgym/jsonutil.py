"""The one JSON encoder agentgym uses on data it does not control.

orjson is fast but refuses integers beyond 64 bits (which model output can contain); `dumps` uses
it and falls back to the standard library for such values, so encoding never fails on valid JSON
data. `sort_keys` gives canonical output for keys and hashes.
"""

from __future__ import annotations

import json
import re
from typing import Any

import orjson


def dumps(obj: Any, *, sort_keys: bool = False) -> bytes:
    try:
        return orjson.dumps(obj, option=orjson.OPT_SORT_KEYS if sort_keys else 0)
    except TypeError:
        return json.dumps(
            obj, sort_keys=sort_keys, ensure_ascii=False, separators=(",", ":"), default=str
        ).encode()


def dumps_str(obj: Any, *, sort_keys: bool = False) -> str:
    return dumps(obj, sort_keys=sort_keys).decode()


def first_object(text: str) -> dict[str, Any] | None:
    """The first JSON object embedded in free text (a model's reply), or None."""
    dec = json.JSONDecoder()
    for m in re.finditer(r"\{", text):
        try:
            obj, _ = dec.raw_decode(text, m.start())
        except (json.JSONDecodeError, RecursionError):
            continue
        if isinstance(obj, dict):
            return obj
    return None
