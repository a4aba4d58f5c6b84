"""Normal forms for comparing world values and reply text.

`canonical(value)` maps JSON values that mean the same to the same Python value: integral floats
become ints (3.0 == 3), other floats are rounded to 9 significant digits, strings are NFC-normalised
and stripped, None-valued keys are dropped, dict keys sorted. `canonical_text(s)` is the looser form
answer facts are matched in: case-folded, whitespace collapsed, currency symbols dropped, thousands separators leading and
trailing zeros of numbers removed ("$1,250.50" and "1250.5" agree, so do "07:30" and "7:30"). Pure functions, no I/O.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Mapping
from typing import Any


def canonical(value: Any) -> Any:
    """The canonical form of a JSON value (see module doc)."""
    t = type(value)
    if t is str:
        return value.strip() if value.isascii() else unicodedata.normalize("NFC", value).strip()
    if t is int or t is bool or value is None:
        return value
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if math.isfinite(value) and value.is_integer():
            return int(value)
        return float(f"{value:.9g}") if math.isfinite(value) else value
    if isinstance(value, str):
        return unicodedata.normalize("NFC", value).strip()
    if isinstance(value, dict):
        return {k: canonical(v) for k, v in sorted(value.items()) if v is not None}
    if isinstance(value, (list, tuple)):
        return [canonical(v) for v in value]
    return value


_NUM = re.compile(r"(?<![\w.])(\d{1,3}(?:,\d{3})+|\d+)(\.\d+)?(?![\w])")
_SPACE = re.compile(r"\s+")
_CURRENCY = re.compile(r"[$€£¥]")


def _num(m: re.Match[str]) -> str:
    whole = m.group(1).replace(",", "").lstrip("0") or "0"
    frac = (m.group(2) or "").rstrip("0")
    return whole + (frac if frac != "." else "")


def canonical_text(text: str) -> str:
    """Loose normal form of free text, for matching facts in replies."""
    t = unicodedata.normalize("NFKC", text).casefold()
    t = _CURRENCY.sub("", t)
    t = _NUM.sub(_num, t)
    return _SPACE.sub(" ", t).strip()


def same(a: Any, b: Any) -> bool:
    """JSON equality of canonical values: like ==, except that true/false never equal 1/0."""
    if type(a) is bool or type(b) is bool:
        return type(a) is type(b) and a == b
    if type(a) is list:
        return type(b) is list and len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if type(a) is dict:
        return type(b) is dict and a.keys() == b.keys() and all(same(v, b[k]) for k, v in a.items())
    return a == b


def get_path(record: Mapping[str, Any], path: str) -> Any:
    """`record[a][b]` for path 'a.b'; None when any step is missing."""
    if "." not in path:
        return record.get(path)
    cur: Any = record
    for part in path.split("."):
        if not isinstance(cur, Mapping):
            return None
        cur = cur.get(part)
    return cur
