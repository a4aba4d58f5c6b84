"""System prompts for made agents: persona, areas of expertise and behavioural pattern, varied in form.

A prompt is composed, not filled in: a name and a role drawn for the agent's domains, a tone, the
areas it knows (from the domains' descriptions and the records its tools touch), two to four
behaviour rules drawn from a pool, and one of several layouts (`LAYOUTS`: prose, a briefing with
headings, a first-person introduction, a bullet list, a terse operator note) that order and phrase
those parts differently. Every rule in the pool is compatible with the tasks made for the agent:
act without asking when the request is clear, ask when a needed detail is missing, never force an
operation a record's state refuses.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

NAMES = (
    "Ada",
    "Amara",
    "Arjun",
    "Beatriz",
    "Bo",
    "Caio",
    "Chen",
    "Dalia",
    "Emeka",
    "Esme",
    "Farid",
    "Greta",
    "Hiro",
    "Ines",
    "Jae",
    "Kofi",
    "Lale",
    "Mika",
    "Nia",
    "Oskar",
    "Paz",
    "Quinn",
    "Ravi",
    "Sana",
    "Tomas",
    "Uzo",
    "Vera",
    "Wanjiru",
    "Xavi",
    "Yara",
    "Zeno",
    "Ilse",
    "Rune",
    "Sol",
    "Tove",
    "Amaru",
)
ROLES = (
    "{area} assistant",
    "{area} operations coordinator",
    "{area} support specialist",
    "{area} records clerk",
    "{area} desk agent",
    "back-office assistant for {area}",
    "{area} concierge",
    "{area} workflow agent",
)
TONES = (
    "warm and concise",
    "formal and precise",
    "brisk, with no small talk",
    "friendly and plain-spoken",
    "calm and methodical",
    "cheerful but efficient",
)
USERS = (
    "the team that runs {area}",
    "staff members who message you between other jobs",
    "one busy manager",
    "colleagues on the front desk",
    "customers writing in",
    "the operations lead",
)
RULES = (
    "Look records up with your tools before you change them, and never guess an id.",
    "Change only what you were asked to change; leave every other record as it is.",
    "When a record's state does not allow an operation, do not force it: say why, plainly.",
    "If a detail you need is missing from the request, ask for it in one short question.",
    "When the request is clear, act on it right away instead of asking for confirmation.",
    "Quote the ids of the records you created or changed in your reply.",
    "Report values and counts exactly as the tools return them.",
    "Keep replies to one or two sentences unless the user asks for more.",
    "Prefer the narrowest tool that does the job (a lookup by id over a broad search).",
    "After a change, state what it is now, not only that it changed.",
    "If a tool fails with a temporary error, try the call again before giving up.",
)
ASK_RULE = RULES[3]


@dataclass(slots=True)
class PersonaParts:
    name: str
    role: str
    tone: str
    serves: str
    areas: list[str]
    rules: list[str]


def _sentence_list(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _prose(p: PersonaParts) -> str:
    return (
        f"You are {p.name}, a {p.role} working for {p.serves}. You know {_sentence_list(p.areas)}. "
        f"Your manner is {p.tone}. " + " ".join(p.rules)
    )


def _briefing(p: PersonaParts) -> str:
    rules = "\n".join(f"- {r}" for r in p.rules)
    areas = "\n".join(f"- {a[0].upper()}{a[1:]}" for a in p.areas)
    return (
        f"# Role\n{p.name}: {p.role}. You serve {p.serves}.\n\n# Expertise\n{areas}\n\n"
        f"# How you work\n{rules}\n\nTone: {p.tone}."
    )


def _first_person(p: PersonaParts) -> str:
    return (
        f"I am {p.name}, the {p.role}. I help {p.serves}, and my patch is {_sentence_list(p.areas)}. "
        f"People describe me as {p.tone}. The rules I was given, word for word: " + " ".join(p.rules)
    )


def _bullets(p: PersonaParts) -> str:
    lines = [
        f"Name: {p.name}",
        f"Role: {p.role}",
        f"Users: {p.serves}",
        f"Knows: {'; '.join(p.areas)}",
        f"Style: {p.tone}",
        "Rules:",
    ]
    return "\n".join(lines + [f"  {i + 1}. {r}" for i, r in enumerate(p.rules)])


def _operator_note(p: PersonaParts) -> str:
    return (
        f"Operator note — this agent is {p.name} ({p.role}). Scope: {_sentence_list(p.areas)}. "
        f"Audience: {p.serves}. Be {p.tone}. Standing orders: " + " ".join(p.rules)
    )


LAYOUTS: dict[str, Callable[[PersonaParts], str]] = {
    "prose": _prose,
    "briefing": _briefing,
    "first_person": _first_person,
    "bullets": _bullets,
    "operator_note": _operator_note,
}


def area_of(domain: str) -> str:
    return domain.replace("_", " ").replace("-", " ")


def compose(rng: random.Random, areas: list[str], area: str) -> tuple[str, str, str]:
    """(display name, system prompt, layout) for an agent over `areas` (phrases), named for `area`."""
    rules = rng.sample(RULES, rng.randint(2, 4))
    if ASK_RULE not in rules:  # tasks may leave a detail out on purpose: every agent knows to ask
        rules.insert(rng.randrange(len(rules) + 1), ASK_RULE)
    parts = PersonaParts(
        name=rng.choice(NAMES),
        role=rng.choice(ROLES).format(area=area),
        tone=rng.choice(TONES),
        serves=rng.choice(USERS).format(area=area),
        areas=areas,
        rules=rules,
    )
    layout = rng.choice(sorted(LAYOUTS))
    return f"{parts.name}, {parts.role}", LAYOUTS[layout](parts), layout
