"""Say a task's request in words: varied templates, a user style, and an optional model paraphrase.

`TEMPLATES[kind]` holds several phrasings of one request kind; `render(kind, rng, style, **slots)`
picks one, wraps it in an opener and a closer for the user's style (terse users skip both,
verbose ones add context, impatient ones push), and capitalises. `paraphrase(model, text, facts)`
asks a `ChatModel` to reword the request and keeps the rewording only when every required fact
(ids, names, values, normalised as the grader normalises them) survives; otherwise the template
text stands. `plural` and `humanize` make field and noun names readable.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence

from agentgym.models.base import ChatModel, SamplingParams
from agentgym.world.normalize import canonical_text

TEMPLATES: dict[str, tuple[str, ...]] = {
    "read_field": (
        "What is the {field} of {noun} {id}?",
        "Can you tell me the {field} on {noun} {id}?",
        "I need the {field} for {noun} {id}.",
        "Look up {noun} {id} and tell me its {field}.",
        "Which {field} does {noun} {id} have?",
    ),
    "read_by_key": (
        "What is the {field} of the {noun} with {key} {key_value}?",
        "Find the {noun} whose {key} is {key_value} and tell me the {field}.",
        "There's a {noun} registered under {key_value}. What's its {field}?",
    ),
    "count": (
        "How many {nouns} have {field} {value}?",
        "Count the {nouns} whose {field} is {value}, please.",
        "I need the number of {nouns} with {field} set to {value}.",
        "How many {nouns} are {value} right now?",
    ),
    "create": (
        "Create a {noun} with {details}.",
        "Please add a new {noun}: {details}.",
        "Set up a {noun} — {details}.",
        "Register a {noun} with these details: {details}.",
    ),
    "update": (
        "Change the {field} of {noun} {ref} to {value}.",
        "Set {ref}'s {field} to {value}.",
        "Update {noun} {ref}: the {field} should be {value}.",
        "The {field} on {noun} {ref} is out of date; make it {value}.",
    ),
    "action": (
        "Please {action} {noun} {ref}{extra}.",
        "{Action} the {noun} {ref}{extra}.",
        "Could you {action} {noun} {ref}{extra}?",
        "I need {noun} {ref} {action_done}{extra}.",
    ),
    "delete": (
        "Delete {noun} {ref}.",
        "Remove the {noun} {ref} for good.",
        "Please get rid of {noun} {ref} — delete it.",
    ),
    "related_read": (
        "Who or what is {noun} {id} for? Give me the {parent_field} of its {parent_noun}.",
        "{noun_cap} {id} belongs to a {parent_noun}. What is that {parent_noun}'s {parent_field}?",
        "For {noun} {id}, I need the {parent_field} of the {parent_noun} it's linked to.",
    ),
    "create_for_parent": (
        "Add a {noun} for {parent_noun} {parent_ref} with {details}.",
        "Create a new {noun} linked to the {parent_noun} {parent_ref}: {details}.",
        "{parent_ref} needs a new {noun} — {details}.",
    ),
    "list_children": (
        "How many {nouns} does {parent_noun} {parent_ref} have, and what are they called?",
        "List the {nouns} of {parent_noun} {parent_ref} for me, with a count.",
        "Which {nouns} belong to the {parent_noun} {parent_ref}? How many in total?",
    ),
    "bulk_action": (
        "Please {action} every {noun} of {parent_noun} {parent_ref}{filter}.",
        "{Action} all of {parent_ref}'s {nouns}{filter}.",
        "For the {parent_noun} {parent_ref}, {action} each {noun}{filter}.",
    ),
    "bulk_update": (
        "Set the {field} of every {noun} of {parent_noun} {parent_ref} to {value}.",
        "All of {parent_ref}'s {nouns} should get {field} {value}.",
        "Update each {noun} belonging to {parent_noun} {parent_ref}: {field} becomes {value}.",
    ),
    "real_call": (
        "Using {server}, {purpose}{with_args}.",
        "Can you {purpose} with the {server} tool{with_args}?",
        "I'd like you to {purpose}{with_args} — use {server}.",
    ),
    "real_pair": (
        "With {server}, first {purpose_a}{with_a}, then {purpose_b}{with_b}.",
        "Two things via {server}: {purpose_a}{with_a}; and {purpose_b}{with_b}.",
    ),
}

OPENERS: dict[str, tuple[str, ...]] = {
    "neutral": ("", "", "Hi. ", "Hello, ", "Quick request: "),
    "terse": ("",),
    "verbose": (
        "Hi there, I hope you're well. I'm tidying up our records before the weekly review. ",
        "Good morning! I've been meaning to sort this out since yesterday. ",
        "Hello — a colleague asked me to take care of this, so here goes. ",
    ),
    "confused": ("Um, I'm not totally sure how this works, but ", "Sorry if this is unclear — ", "I think "),
    "impatient": ("Quickly: ", "Need this now: ", "ASAP — "),
    "expert": ("", "Request: ", "Task: "),
}
CLOSERS: dict[str, tuple[str, ...]] = {
    "neutral": ("", "", " Thanks!", " Thank you."),
    "terse": ("",),
    "verbose": (
        " Thanks so much for your help, it really makes my day easier.",
        " Let me know once it's done!",
    ),
    "confused": (" Does that make sense?", " I hope that's the right way to ask.", ""),
    "impatient": (" Fast, please.", " Don't keep me waiting.", ""),
    "expert": ("", " No need to confirm first."),
}
STYLES = tuple(OPENERS)


def humanize(name: str) -> str:
    """'pain_score' → 'pain score'; 'dueDate' → 'due date'."""
    s = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", name).replace("_", " ").replace("-", " ")
    return re.sub(r"\s+", " ", s).strip().lower()


def plural(noun: str) -> str:
    if noun.endswith("sis"):
        return noun[:-2] + "es"
    if noun.endswith(("s", "x", "ch", "sh")):
        return noun + "es"
    if noun.endswith("y") and noun[-2:-1] not in "aeiou":
        return noun[:-1] + "ies"
    return noun + "s"


def _cap(s: str) -> str:
    return s[:1].upper() + s[1:]


def render(kind: str, rng: random.Random, style: str = "neutral", /, **slots: object) -> str:
    """One phrasing of request `kind` in `style` (see module doc)."""
    slots.setdefault("noun_cap", _cap(str(slots.get("noun", ""))))
    if "action" in slots:
        slots.setdefault("Action", _cap(str(slots["action"])))
    body = rng.choice(TEMPLATES[kind]).format(**slots)
    opener = rng.choice(OPENERS.get(style, OPENERS["neutral"]))
    closer = rng.choice(CLOSERS.get(style, CLOSERS["neutral"]))
    if opener and not opener.endswith((". ", "! ", ": ", "— ")):
        body = body[:1].lower() + body[1:]
    text = f"{opener}{body}{closer}".strip()
    return _cap(text)


def details(pairs: Sequence[tuple[str, object]]) -> str:
    """'title "X", starts at 2026-03-03T10:00:00Z and pain score 3'."""
    parts = [f"{humanize(k)} {_quote(v)}" for k, v in pairs]
    if not parts:
        return "the defaults"
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def _quote(v: object) -> str:
    return f'"{v}"' if isinstance(v, str) and " " in v else str(v)


PARAPHRASE_PROMPT = (
    "Rewrite the request below as the same person would say it in other words. Keep every id, name, "
    "number and value exactly as written. Reply with the rewritten request only.\n\nRequest: {text}"
)


def keeps_facts(text: str, facts: Sequence[str]) -> bool:
    """Every fact (normalised as the grader normalises text) occurs in `text`."""
    norm = canonical_text(text)
    return all(canonical_text(str(f)) in norm for f in facts)


async def paraphrase(
    model: ChatModel, text: str, facts: Sequence[str], sampling: SamplingParams | None = None
) -> tuple[str, bool]:
    """(request, paraphrased?): the model's rewording when it keeps every fact, else `text`."""
    completion = await model.generate(
        [{"role": "user", "content": PARAPHRASE_PROMPT.format(text=text)}],
        None,
        sampling or SamplingParams(temperature=0.7, max_new_tokens=96),
    )
    out = completion.text.strip().strip('"').strip()
    if out and len(out) < 4 * len(text) + 40 and keeps_facts(out, facts):
        return out, True
    return text, False
