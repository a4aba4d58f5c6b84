"""English noun forms and identifier words, shared by the synthetic builder and semantics inference."""

from __future__ import annotations

import re


def plural(noun: str) -> str:
    """'session' → 'sessions', 'company' → 'companies', 'box' → 'boxes'."""
    if noun.endswith(("s", "x", "ch", "sh")):
        return noun + "es"
    if noun.endswith("y") and noun[-2:-1] not in "aeiou":
        return noun[:-1] + "ies"
    return noun + "s"


def singular(word: str) -> str:
    """'companies' → 'company', 'boxes' → 'box', 'files' → 'file' (a heuristic)."""
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith(("ses", "xes", "ches", "shes")):
        return word[:-2]
    if word.endswith("s") and not word.endswith("ss") and len(word) > 3:
        return word[:-1]
    return word


def words(name: str) -> list[str]:
    """Lower-case words of an identifier in any case style: 'getUserId' → ['get', 'user', 'id']."""
    parts = re.split(r"[_\-.\s]+|(?<=[a-z0-9])(?=[A-Z])", name)
    return [p.lower() for p in parts if p]
