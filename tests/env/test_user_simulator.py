"""ModelUser: the persona user simulator, with a queued fake ChatModel for plumbing and the embedded
model for one real episode."""

from __future__ import annotations

import time
from typing import get_args

import pytest

from agentgym.env import STOP_TOKEN, ModelUser, ToolUseEnv, decode_observation
from agentgym.env.user import STYLES, leaked_facts, redact, user_view
from agentgym.models.base import Completion, SamplingParams
from agentgym.parsing import render_calls
from agentgym.spec.task import UserProfile

TASK = "calendar-cancel-demo"
ERROR = '{"error":"not_found","message":"no such event"}'


class QueuedModel:
    """Returns queued texts in order and records every prompt it was given."""

    name = "queued"
    tool_format = "hermes"

    def __init__(self, *texts: str) -> None:
        self.texts = list(texts)
        self.calls: list[list[dict]] = []

    async def generate(self, messages, tools=None, sampling=None):
        assert tools is None  # the user never sees tools
        self.calls.append(messages)
        return Completion(text=self.texts.pop(0), model=self.name)


def hermes(*calls):
    return render_calls("hermes", list(calls))


@pytest.fixture
def task(starter):
    return starter.tasks[TASK].model_copy(
        update={
            "user": UserProfile(
                persona="Dana, a sales lead who runs the demos.",
                style="terse",
                hidden_facts={"cancel_reason": "the client postponed", "room": "Atlas 3"},
            )
        }
    )


def chat(task, *turns):
    """An episode's messages: the agent's system prompt and request, then `turns` as given."""
    return [
        {"role": "system", "content": "You are a calendar assistant."},
        {"role": "user", "content": task.instruction},
        *turns,
    ]


def say(text):
    return {"role": "assistant", "content": text}


OK_TOOL = {
    "role": "tool",
    "tool_call_id": "c0",
    "name": "calendar__search_events",
    "content": '[{"id":"evt_0011"}]',
}


def test_every_style_has_a_line():
    assert set(STYLES) == set(get_args(UserProfile.model_fields["style"].annotation))


async def test_stop_token_ends_after_a_successful_call(task):
    user = ModelUser(QueuedModel(f"Thanks, that's all. {STOP_TOKEN}"))
    user.reset(task)
    assert await user.reply(task, chat(task, say(None), OK_TOOL, say("Cancelled it."))) is None
    assert user.stats["replies"] == 0 and user.stats["stops_suppressed"] == 0


async def test_stop_before_any_successful_call_is_suppressed(task):
    user = ModelUser(QueuedModel(STOP_TOKEN, "  ", STOP_TOKEN))
    user.reset(task)
    failed = {"role": "tool", "tool_call_id": "c0", "name": "calendar__cancel_event", "content": ERROR}
    msgs = chat(task, say(None), failed, say("Done!"))
    nudge = await user.reply(task, msgs)
    assert nudge == f"Could you go ahead and do it, please? {task.instruction}"
    assert await user.reply(task, msgs) == nudge  # an empty reply is a stop too
    assert user.stats["stops_suppressed"] == 2 and user.stats["replies"] == 2
    assert await user.reply(task, [*msgs, OK_TOOL, say("Now it is cancelled.")]) is None


async def test_hidden_fact_revealed_when_asked(task):
    user = ModelUser(QueuedModel("Because the client postponed."))
    user.reset(task)
    out = await user.reply(task, chat(task, say("Sure. What is the reason for cancelling?")))
    assert out == "Because the client postponed."
    assert user.stats["regenerations"] == 0 and user.stats["leaks_redacted"] == 0


async def test_hidden_fact_not_asked_is_regenerated_then_redacted(task):
    model = QueuedModel("It is in Atlas 3, the client postponed.", "The  CLIENT postponed, in Atlas   3.")
    user = ModelUser(model)
    user.reset(task)
    out = await user.reply(task, chat(task, say("Which date is the demo on?")))
    assert out == "…, in …."
    assert "atlas" not in out.casefold() and "postponed" not in out.casefold()
    assert user.stats == {**user.stats, "regenerations": 1, "leaks_redacted": 2, "model_calls": 2}
    first, second = (m[0]["content"] for m in model.calls)
    assert "previous draft" not in first and "cancel_reason, room" in second


async def test_regeneration_that_no_longer_leaks_is_kept(task):
    user = ModelUser(QueuedModel("Room Atlas 3.", "March 10."))
    user.reset(task)
    out = await user.reply(task, chat(task, say("Which date is the demo on?")))
    assert out == "March 10." and user.stats["leaks_redacted"] == 0 and user.stats["regenerations"] == 1


def test_leak_rules_are_pure():
    facts = {"order_number": "A-17", "home_address": "Main St  5"}
    reply = "It's A-17, to main st 5."
    assert leaked_facts(facts, reply, "What is your order?", "") == ["home_address"]
    # a key word only has to start a word ("address" in "addresses"); "order" inside "border" is no ask
    assert leaked_facts(facts, reply, "Which addresses, and which border?", "") == ["order_number"]
    assert leaked_facts(facts, reply, "Anything else?", "My order is a-17 and I live at Main St 5") == []
    assert redact("Ship to MAIN\n st 5 now", ["Main St  5"]) == "Ship to … now"


async def test_max_user_turns_and_reset(task):
    model = QueuedModel("one", "two", "three")
    user = ModelUser(model, max_user_turns=2)
    user.reset(task)
    msgs = chat(task, say("Hm?"))
    assert [await user.reply(task, msgs) for _ in range(3)] == ["one", "two", None]
    assert len(model.calls) == 2 and user.stats["replies"] == 2
    user.reset(task)
    assert user.stats["replies"] == 0 and await user.reply(task, msgs) == "three"


async def test_reply_is_cleaned_and_cut(task):
    user = ModelUser(QueuedModel("  User:  Yes, go ahead.  ", "word " * 400))
    user.reset(task)
    assert await user.reply(task, chat(task, say("Shall I?"))) == "Yes, go ahead."
    long = await user.reply(task, chat(task, say("Shall I?")))
    assert len(long) <= user.max_reply_chars + 1 and long.endswith("…") and long.startswith("word word")


async def test_model_sees_the_dialogue_from_the_users_side(task):
    model = QueuedModel("Atlas 3.")
    user = ModelUser(model)
    user.reset(task)
    msgs = chat(
        task,
        {
            "role": "assistant",
            "content": '<think>find it first</think>Let me look. <tool_call>{"name": "x"}</tool_call>',
            "tool_calls": [{"id": "c0", "type": "function", "function": {"name": "x", "arguments": "{}"}}],
        },
        OK_TOOL,
        say("Found it. Which room is it in?"),
    )
    assert await user.reply(task, msgs) == "Atlas 3."
    (sent,) = model.calls
    assert [m["role"] for m in sent] == ["system", "assistant", "user"]
    assert sent[1]["content"] == task.instruction
    assert sent[2]["content"] == "Let me look.\n\nFound it. Which room is it in?"
    body = " ".join(m["content"] for m in sent[1:])
    assert "<tool_call>" not in body and "<think>" not in body and "evt_0011" not in body
    system = sent[0]["content"]
    assert "Dana, a sales lead" in system and STYLES["terse"] in system and task.instruction in system
    assert "cancel_reason: the client postponed" in system and "room: Atlas 3" in system
    assert STOP_TOKEN in system and "calendar assistant" not in system
    assert user_view(msgs) == sent[1:]


async def test_episode_through_the_env(task):
    model = QueuedModel("Atlas 3.", f"Great, thanks. {STOP_TOKEN}")
    env = ToolUseEnv("starter", user=ModelUser(model))
    obs, info = await env.areset(options={"task": task})
    assert info["task_id"] == TASK
    obs, r, term, trunc, _ = await env.astep("Which room is the demo in?")
    assert decode_observation(obs) == [{"role": "user", "content": "Atlas 3."}] and not (term or trunc)
    await env.astep(hermes(("calendar__search_events", {"query": "product demo"})))
    await env.astep(hermes(("calendar__cancel_event", {"event_id": "evt_0011"})))
    obs, r, term, trunc, info = await env.astep("Cancelled the product demo.")
    assert decode_observation(obs) == [] and term and not trunc
    assert info["end_reason"] == "answered" and r == 1.0
    traj = env.trajectory(policy="test")
    assert [m.content for m in traj.messages if m.role == "user"] == [task.instruction, "Atlas 3."]
    assert env.user.stats["replies"] == 1 and len(model.calls) == 2
    env.close()


@pytest.mark.slow
def test_embedded_model_plays_the_user(task):
    from agentgym.models import load_model

    one_fact = task.model_copy(
        update={"user": task.user.model_copy(update={"hidden_facts": {"room": "Atlas 3"}})}
    )
    user = ModelUser(load_model("embedded"), sampling=SamplingParams(max_new_tokens=40), max_user_turns=3)
    env = ToolUseEnv("starter", user=user)
    env.reset(options={"task": one_fact})
    t0 = time.perf_counter()
    obs, _, term, trunc, _ = env.step("Happy to help. Which room is the product demo in?")
    replies = [m["content"] for m in decode_observation(obs)]
    print("reply to the question:", replies)
    assert not (term or trunc) and len(replies) == 1 and replies[0].strip()
    env.step(hermes(("calendar__search_events", {"query": "product demo"})))
    env.step(hermes(("calendar__cancel_event", {"event_id": "evt_0011"})))
    term = trunc = False
    while not (term or trunc):
        obs, _, term, trunc, info = env.step("I have cancelled the product demo on March 10.")
        print("reply to the answer:", decode_observation(obs))
    print("stats:", user.stats, f"{time.perf_counter() - t0:.1f}s")
    assert term and not trunc and info["end_reason"] == "answered"
    assert 1 <= user.stats["replies"] <= 3 and user.stats["model_calls"] >= user.stats["replies"]
    assert user.stats["stops_suppressed"] == 0  # the agent had acted before every later reply
