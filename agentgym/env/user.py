"""User simulators: who answers the agent when it replies without calling tools.

`reply(task, messages)` returns the user's next message, or None when the user is done (the episode
then terminates). `messages` is the episode so far in OpenAI format, as the environment holds it.

`ScriptedUser` is deterministic: it says each of the task's scripted follow-ups in turn, then
stops; with no follow-ups it is the single-turn user.

`ModelUser` lets any `ChatModel` play the task's `UserProfile`: persona, style (one behavioural line
per style in `STYLES`), the goal (the task's instruction, already said as the opening message) and
the hidden facts (prompt: `prompts/user_simulator.txt`). The model sees the dialogue from the
user's side (`user_view`): the assistant's visible text becomes its `user` turns and the simulated
user's own messages its `assistant` turns; the agent's system prompt, tool results and tool-call or
`<think>` markup are never shown. Deterministic guards in code, not only in the prompt:

- The dialogue ends only through `STOP_TOKEN` in the model's reply (an empty reply counts as a
  stop), and never before the agent has acted: while no tool call of the episode has succeeded (a
  `tool` message whose content does not start with `{"error"`), a stop is suppressed and a fixed
  nudge restating the request is said instead.
- A reply that contains a hidden fact's value (casefolded, whitespace collapsed) which the
  assistant's last message did not ask about (no word of the fact's key, split on `_`, starts a
  word there) and the user has not said before is regenerated once with a note; if it still leaks,
  the value is replaced by "…".
- After `max_user_turns` replies the user is done. Replies are cleaned: stop token and a leading
  "User:" removed, whitespace stripped, cut to about `max_reply_chars`.

Counters per episode (reset by `reset`): `ModelUser.stats`. Simulators never see or call tools.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

from agentgym.jsonutil import dumps_str
from agentgym.models.base import ChatModel, SamplingParams
from agentgym.parsing import split_reasoning
from agentgym.spec.task import TaskSpec

STOP_TOKEN = "###STOP###"

PROMPT = (Path(__file__).parent / "prompts" / "user_simulator.txt").read_text(encoding="utf-8")

STYLES: dict[str, str] = {
    "terse": "answer in as few words as possible; no greetings, no thanks, no explanations",
    "verbose": "write full, chatty sentences and add a little context about why you want this",
    "confused": "be unsure of details and of the right terms; ask what things mean when they are unclear",
    "impatient": "be short and a little irritated; push the assistant to get on with it",
    "expert": "be precise and use the exact technical terms; expect the same precision back",
    "neutral": "be polite and plain; say what is needed, no more",
}
"""One behavioural line per `UserProfile.style` (a new style is a new entry here)."""

LEAK_NOTE = (
    "Your previous draft gave away something the assistant has not asked for yet ({keys}). "
    "Write your message again without it."
)

_TOOL_CALL = re.compile(r"<tool_call>.*?(?:</tool_call>|$)", re.S)
_USER_PREFIX = re.compile(r"^\s*user\s*:\s*", re.I)


class UserSimulator(Protocol):
    is_sync: bool

    def reset(self, task: TaskSpec) -> None:
        """Start a new dialogue."""

    async def reply(self, task: TaskSpec, messages: list[dict[str, Any]]) -> str | None:
        """The user's next message, or None to end the dialogue."""


class ScriptedUser:
    """Says the task's scripted follow-ups in order, then stops."""

    is_sync = True

    def __init__(self) -> None:
        self._said = 0

    def reset(self, task: TaskSpec) -> None:
        self._said = 0

    async def reply(self, task: TaskSpec, messages: list[dict[str, Any]]) -> str | None:
        if self._said >= len(task.user.follow_ups):
            return None
        text = task.user.follow_ups[self._said]
        self._said += 1
        return None if STOP_TOKEN in text else text


# ---- pure parts ------------------------------------------------------------------------------


def visible_text(text: str) -> str:
    """What a reader of the chat sees: `<think>` and `<tool_call>` blocks removed."""
    return _TOOL_CALL.sub("", split_reasoning(text)[0]).strip()


def user_view(messages: list[dict[str, Any]]) -> list[dict[str, str]]:
    """The episode from the user's side: assistant text as `user` turns, the user's messages as
    `assistant` turns, nothing else (no system prompt, tools or markup); adjacent turns of one
    side are joined."""
    flip = {"assistant": "user", "user": "assistant"}
    out: list[dict[str, str]] = []
    for m in messages:
        role = flip.get(m.get("role", ""))
        content = m.get("content")
        text = visible_text(content) if role and isinstance(content, str) else ""
        if not text:
            continue
        if out and out[-1]["role"] == role:
            out[-1]["content"] += "\n\n" + text
        else:
            out.append({"role": role, "content": text})  # type: ignore[dict-item]
    return out


def agent_has_acted(messages: list[dict[str, Any]]) -> bool:
    """Whether any tool call of the episode succeeded (its result is not an error object)."""
    return any(
        m.get("role") == "tool" and not str(m.get("content") or "").lstrip().startswith('{"error"')
        for m in messages
    )


def _norm(text: str) -> str:
    return " ".join(text.casefold().split())


def _fact_text(value: Any) -> str:
    return value if isinstance(value, str) else dumps_str(value)


def _asks_about(key: str, message: str) -> bool:
    text = message.casefold()
    return any(w and re.search(r"\b" + re.escape(w), text) for w in key.casefold().split("_"))


def leaked_facts(facts: Mapping[str, Any], reply: str, asked: str, said: str) -> list[str]:
    """Keys of the hidden facts whose value `reply` gives although `asked` (the assistant's last
    message) does not ask about them and `said` (what the user said before) never gave them."""
    out = []
    for key, value in facts.items():
        v = _norm(_fact_text(value))
        if v and v in _norm(reply) and v not in _norm(said) and not _asks_about(key, asked):
            out.append(key)
    return out


def redact(text: str, values: list[str]) -> str:
    """`text` with each value (any case, any whitespace) replaced by "…"."""
    for value in values:
        words = value.split()
        if words:
            text = re.sub(r"\s+".join(map(re.escape, words)), "…", text, flags=re.I)
    return text


def _cut(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    head = text[:limit]
    words = head.rsplit(None, 1)
    return (words[0] if len(words) > 1 else head).rstrip() + "…"


# ---- the model-driven user ---------------------------------------------------------------------


class ModelUser:
    """A ChatModel playing the task's user (see module doc)."""

    is_sync = False
    max_reply_chars = 600

    def __init__(
        self,
        model: ChatModel,
        *,
        sampling: SamplingParams | None = None,
        max_user_turns: int = 6,
        stop_token: str = STOP_TOKEN,
    ) -> None:
        if max_user_turns < 0:
            raise ValueError(f"max_user_turns must be >= 0, got {max_user_turns}")
        if not stop_token:
            raise ValueError("stop_token must not be empty")
        self.model = model
        self.sampling = sampling or SamplingParams(temperature=0.0, max_new_tokens=160)
        self.max_user_turns = max_user_turns
        self.stop_token = stop_token
        self.stats: dict[str, int] = self._fresh_stats()

    @staticmethod
    def _fresh_stats() -> dict[str, int]:
        return {
            "replies": 0,
            "model_calls": 0,
            "stops_suppressed": 0,
            "regenerations": 0,
            "leaks_redacted": 0,
        }

    def reset(self, task: TaskSpec) -> None:
        self.stats = self._fresh_stats()

    def system_prompt(self, task: TaskSpec) -> str:
        profile = task.user
        facts = "\n".join(f"{k}: {_fact_text(v)}" for k, v in profile.hidden_facts.items())
        return PROMPT.format(
            persona=profile.persona,
            style=profile.style,
            style_line=STYLES[profile.style],
            goal=task.instruction,
            hidden_facts=facts or "(nothing)",
            stop_token=self.stop_token,
        ).strip()

    def nudge(self, task: TaskSpec) -> str:
        """What the user says instead of stopping before the agent has done anything."""
        return _cut(f"Could you go ahead and do it, please? {task.instruction}", self.max_reply_chars)

    async def _draft(
        self, system: str, dialogue: list[dict[str, str]], facts: Mapping[str, Any], asked: str, said: str
    ) -> tuple[bool, str, list[str]]:
        """One generation: (wants to stop, cleaned text, keys of the facts it leaks)."""
        self.stats["model_calls"] += 1
        out = await self.model.generate(
            [{"role": "system", "content": system}, *dialogue], None, self.sampling
        )
        draft = visible_text(out.text or "")
        text = _USER_PREFIX.sub("", draft.replace(self.stop_token, "").strip(), count=1).strip()
        stop = self.stop_token in draft or not text
        return stop, text, [] if stop else leaked_facts(facts, text, asked, said)

    async def reply(self, task: TaskSpec, messages: list[dict[str, Any]]) -> str | None:
        if self.stats["replies"] >= self.max_user_turns:
            return None
        dialogue = user_view(messages)
        last = next((m for m in reversed(messages) if m.get("role") == "assistant"), {})
        asked = visible_text(last["content"]) if isinstance(last.get("content"), str) else ""
        said = "\n".join(m["content"] for m in dialogue if m["role"] == "assistant")
        facts = task.user.hidden_facts
        system = self.system_prompt(task)
        stop, text, leaks = await self._draft(system, dialogue, facts, asked, said)
        if leaks:
            self.stats["regenerations"] += 1
            note = LEAK_NOTE.format(keys=", ".join(leaks))
            stop, text, leaks = await self._draft(system + "\n\n" + note, dialogue, facts, asked, said)
            if leaks:
                self.stats["leaks_redacted"] += len(leaks)
                text = redact(text, [_fact_text(facts[k]) for k in leaks])
        if stop:  # an explicit stop token or an empty reply
            if agent_has_acted(messages):
                return None
            self.stats["stops_suppressed"] += 1
            text = self.nudge(task)
        self.stats["replies"] += 1
        return _cut(text, self.max_reply_chars)
