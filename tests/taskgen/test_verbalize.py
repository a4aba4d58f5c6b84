"""Request wording: varied templates per style, and model paraphrases kept only when facts survive."""

from __future__ import annotations

import asyncio
import random

import pytest

from agentgym.taskgen.verbalize import STYLES, TEMPLATES, humanize, keeps_facts, paraphrase, plural, render


def test_templates_vary_and_fill_every_slot():
    rng = random.Random(0)
    slots = dict(
        noun="session",
        nouns="sessions",
        id="ses_0001",
        field="pain score",
        value="4",
        key="email",
        key_value="a@b.example",
        details='title "X"',
        ref='"Morning run"',
        action="check in",
        action_done="checked in",
        extra="",
        parent_noun="patient",
        parent_ref='"Ana Costa"',
        parent_field="email",
        filter="",
        server="exa",
        purpose="search the web",
        with_args="",
        purpose_a="a",
        purpose_b="b",
        with_a="",
        with_b="",
    )
    for kind, variants in TEMPLATES.items():
        assert len(variants) >= 2, kind
        seen = {render(kind, random.Random(i), "neutral", **slots) for i in range(40)}
        assert len(seen) >= 2, kind
        assert not any("{" in s for s in seen)
    terse = render("update", rng, "terse", **slots)
    verbose = render("update", rng, "verbose", **slots)
    assert len(verbose) > len(terse) + 20
    assert set(STYLES) == {"neutral", "terse", "verbose", "confused", "impatient", "expert"}


def test_names_read_well():
    assert humanize("pain_score") == "pain score" and humanize("dueDate") == "due date"
    assert (
        plural("analysis") == "analyses" and plural("category") == "categories" and plural("box") == "boxes"
    )


def test_paraphrase_kept_only_with_every_fact(scripted):
    text = 'Change the pain score of session "Morning run" to 4.'
    facts = ['"Morning run"', "4"]
    good = scripted(['Please set the pain score on the "Morning run" session to 4.'])
    out, changed = asyncio.run(paraphrase(good, text, facts))
    assert changed and out.startswith("Please set")
    lossy = scripted(["Please update the pain score of that session."])
    out, changed = asyncio.run(paraphrase(lossy, text, facts))
    assert not changed and out == text
    assert keeps_facts("set it to 4.0 for morning RUN", ["4", "Morning run"])


@pytest.mark.slow
def test_paraphrase_with_the_embedded_model():
    from agentgym.models import load_model

    model = load_model("embedded")
    text = "Set the status of ticket tic_0004 to resolved."
    out, changed = asyncio.run(paraphrase(model, text, ["tic_0004", "resolved"]))
    print("paraphrase:", changed, out)
    assert (changed and keeps_facts(out, ["tic_0004", "resolved"])) or (not changed and out == text)
