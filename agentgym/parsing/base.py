"""Tool-call parsing: turn an assistant turn (raw text or an OpenAI message) into reasoning, visible
text and calls.

Formats live in a registry (`FORMATS`, filled by `@register`); each knows how to find its markup
in text, parse it and render calls back into it (the oracle and few-shot prompts speak through
`render`). `parse_turn` first splits off `<think>` reasoning — never parsed for calls — then lets
the chosen format (or, in `auto`, the first format whose markup is present) extract calls.

A malformed call is never dropped: it comes back as a `ParsedCall` with `error` set and the raw text
kept, so the environment can answer it with a typed tool error. Parsing never raises on any input.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson

from agentgym.jsonutil import dumps_str


@dataclass(slots=True)
class ParsedCall:
    """One call found in a turn."""

    name: str
    """Tool name as written ('' when it could not be read)."""
    arguments: dict[str, Any] | None
    """Decoded arguments; None when they could not be decoded."""
    raw: str
    """Arguments as text (JSON when decodable, else the raw markup), for the OpenAI message."""
    error: str | None = None
    """Why the call is malformed; None when well-formed."""
    id: str | None = None
    """Call id given by a structured message."""
    raw_values: dict[str, str] | None = None
    """Argument values as written, for formats that do not type them (glm_xml); see `coerce_arguments`."""


@dataclass(slots=True)
class ParsedTurn:
    """An assistant turn, taken apart."""

    content: str
    """Visible text with reasoning and call markup removed."""
    reasoning: str | None = None
    """Text of `<think>` blocks."""
    calls: list[ParsedCall] = field(default_factory=list)
    """Calls in order of appearance."""
    format: str | None = None
    """The format the calls were found in."""


class ToolCallFormat(Protocol):
    name: str

    def detect(self, text: str) -> bool:
        """Whether `text` contains this format's call markup."""

    def parse(self, text: str) -> tuple[str, list[ParsedCall]]:
        """Visible text and calls. Must not raise."""

    def render(self, calls: Sequence[tuple[str, Mapping[str, Any]]]) -> str:
        """Text that this format parses back into `calls`."""


FORMATS: dict[str, ToolCallFormat] = {}
AUTO_ORDER: list[str] = []


def register(fmt: ToolCallFormat, *, auto_priority: int | None = None) -> ToolCallFormat:
    """Add a format to the registry; `auto_priority` places it in auto-detection (lower first)."""
    FORMATS[fmt.name] = fmt
    if auto_priority is not None:
        _PRIORITY[fmt.name] = auto_priority
        if fmt.name not in AUTO_ORDER:
            AUTO_ORDER.append(fmt.name)
        AUTO_ORDER.sort(key=_PRIORITY.__getitem__)
    return fmt


_PRIORITY: dict[str, int] = {}

_THINK = re.compile(r"<think>(.*?)</think>", re.S)


def split_reasoning(text: str) -> tuple[str, str | None]:
    """(text without reasoning, reasoning or None). An unclosed `<think>` swallows the rest."""
    if "<think>" not in text and "</think>" not in text:
        return text, None
    parts = [m.group(1).strip() for m in _THINK.finditer(text)]
    rest = _THINK.sub("", text)
    if "<think>" in rest:  # unclosed: everything after it is reasoning
        head, _, tail = rest.partition("<think>")
        parts.append(tail.strip())
        rest = head
    elif "</think>" in rest:  # template put <think> in the prompt: text before the close is reasoning
        head, _, tail = rest.partition("</think>")
        parts.insert(0, head.strip())
        rest = tail
    return rest.strip(), "\n\n".join(p for p in parts if p) or None


def decode_arguments(value: Any) -> tuple[dict[str, Any] | None, str, str | None]:
    """(arguments, raw JSON text, error) from a JSON object or a string holding one."""
    if isinstance(value, Mapping):
        return dict(value), dumps_str(value), None
    if value is None:
        return {}, "{}", None
    if isinstance(value, str):
        s = value.strip() or "{}"
        try:
            decoded = orjson.loads(s)
        except orjson.JSONDecodeError as e:
            return None, value, f"arguments are not valid JSON: {e}"
        if not isinstance(decoded, dict):
            return None, value, f"arguments must be a JSON object, got {type(decoded).__name__}"
        return decoded, s, None
    return None, str(value), f"arguments must be a JSON object, got {type(value).__name__}"


def call_from_object(obj: Any, raw: str) -> ParsedCall:
    """A ParsedCall from a decoded `{"name": ..., "arguments"|"parameters": ...}` object."""
    if not isinstance(obj, Mapping):
        return ParsedCall(
            "", None, raw, f"a tool call must be a JSON object with 'name', got {type(obj).__name__}"
        )
    fn = obj.get("function") if isinstance(obj.get("function"), Mapping) else obj
    name = fn.get("name")
    if not isinstance(name, str) or not name:
        return ParsedCall("", None, raw, "the tool call has no 'name'")
    args = fn.get("arguments", fn.get("parameters"))
    decoded, text, err = decode_arguments(args)
    return ParsedCall(name, decoded, text, err)


def _json_type(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, int):
        return "integer"
    if isinstance(v, float):
        return "number"
    if isinstance(v, str):
        return "string"
    return "array" if isinstance(v, list) else "object"


def coerce_arguments(call: ParsedCall, schema: Mapping[str, Any]) -> dict[str, Any] | None:
    """The call's arguments typed by the tool's schema. Formats that write values untyped (glm_xml)
    write strings raw, so where the schema allows a string, a value that decoded to a string (its
    quotes were content) or to a type the schema does not allow keeps its raw text: "42" stays "42"."""
    if call.arguments is None or not call.raw_values:
        return call.arguments
    props = schema.get("properties", {}) if isinstance(schema, Mapping) else {}
    out = dict(call.arguments)
    for key, raw in call.raw_values.items():
        prop = props.get(key)
        t = prop.get("type") if isinstance(prop, Mapping) else None
        allowed = {t} if isinstance(t, str) else set(t) if isinstance(t, list) else set()
        if "string" not in allowed:
            continue
        got = _json_type(out.get(key))
        if got == "string" or (got not in allowed and not (got == "integer" and "number" in allowed)):
            out[key] = raw
    return out


def check_format(fmt: str) -> str:
    """`fmt` if it is 'auto' or a registered format, else a ValueError naming the known ones."""
    if fmt != "auto" and fmt not in FORMATS:
        raise ValueError(f"unknown tool-call format {fmt!r}; known: auto, {', '.join(sorted(FORMATS))}")
    return fmt


def parse_turn(action: str | Mapping[str, Any], fmt: str = "auto") -> ParsedTurn:
    """Take an assistant turn apart (see module doc). Never raises on any action; an unknown `fmt`
    is a ValueError (a configuration error, caught when the environment is built)."""
    check_format(fmt)
    try:
        if isinstance(action, Mapping):
            return _parse_message(action, fmt)
        text = action if isinstance(action, str) else str(action)
        visible, reasoning = split_reasoning(text)
        names = AUTO_ORDER if fmt == "auto" else [fmt]
        for n in names:
            f = FORMATS[n]
            if f.detect(visible):
                content, calls = f.parse(visible)
                return ParsedTurn(content, reasoning, calls, n)
        return ParsedTurn(visible, reasoning, [], None)
    except (RecursionError, ValueError, TypeError, MemoryError) as e:
        # A format met input it could not take apart; the attempt is still a call to answer, not a crash.
        raw = action if isinstance(action, str) else repr(action)[:2000]
        return ParsedTurn(
            "", None, [ParsedCall("", None, raw[:2000], f"could not parse the turn: {type(e).__name__}")], fmt
        )


def _parse_message(msg: Mapping[str, Any], fmt: str) -> ParsedTurn:
    content = msg.get("content") or ""
    if not isinstance(content, str):
        content = str(content)
    tool_calls = msg.get("tool_calls")
    if not tool_calls:
        turn = parse_turn(content, fmt)
        extra = msg.get("reasoning_content")
        if isinstance(extra, str) and extra:
            turn.reasoning = extra if turn.reasoning is None else f"{extra}\n\n{turn.reasoning}"
        return turn
    visible, reasoning = split_reasoning(content)
    extra = msg.get("reasoning_content")
    if isinstance(extra, str) and extra:
        reasoning = extra if reasoning is None else f"{extra}\n\n{reasoning}"
    calls: list[ParsedCall] = []
    if not isinstance(tool_calls, Sequence) or isinstance(tool_calls, (str, bytes)):
        calls.append(ParsedCall("", None, str(tool_calls), "tool_calls must be a list"))
    else:
        for tc in tool_calls:
            raw = dumps_str(tc) if not isinstance(tc, str) else tc
            call = call_from_object(tc, raw)
            if isinstance(tc, Mapping) and isinstance(tc.get("id"), str):
                call.id = tc["id"]
            calls.append(call)
    return ParsedTurn(visible, reasoning, calls, "openai")


def render_calls(fmt: str, calls: Sequence[tuple[str, Mapping[str, Any]]]) -> str:
    """Text in format `fmt` that parses back into `calls`."""
    return FORMATS[fmt].render(calls)
