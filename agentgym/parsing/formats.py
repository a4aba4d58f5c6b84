"""The built-in tool-call formats.

- `hermes`: `<tool_call>{"name": ..., "arguments": {...}}</tool_call>` (Qwen, Hermes, SmolLM tool templates).
- `glm_xml`: `<tool_call>name<arg_key>k</arg_key><arg_value>v</arg_value></tool_call>` (GLM-4.5).
- `pythonic`: `[get_weather(city="Paris"), ...]` or one bare call (Llama 3.2 style); literals only.
- `json`: bare `{"name": ..., "arguments": ...}` objects (or a list of them) anywhere in the text.
- `openai`: structured `tool_calls` (`[{"id", "type": "function", "function": {"name", "arguments"}}]`).

Auto-detection order: tagged formats first (hermes, glm_xml), then pythonic, then json.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from agentgym.jsonutil import dumps_str
from agentgym.parsing.base import ParsedCall, call_from_object, register

Calls = Sequence[tuple[str, Mapping[str, Any]]]

_TAGGED = re.compile(r"<tool_call>(.*?)(?:</tool_call>|\Z)", re.S)


def _first_body(text: str) -> str | None:
    m = _TAGGED.search(text)
    return None if m is None else m.group(1).lstrip()


def _strip_tagged(text: str) -> str:
    return _TAGGED.sub("", text).replace("</tool_call>", "").strip()


class Hermes:
    name = "hermes"

    def detect(self, text: str) -> bool:
        body = _first_body(text)
        return body is not None and (body == "" or body[0] in "{[")

    def parse(self, text: str) -> tuple[str, list[ParsedCall]]:
        calls: list[ParsedCall] = []
        for m in _TAGGED.finditer(text):
            body = m.group(1).strip()
            closed = m.group(0).endswith("</tool_call>")
            if not body:
                calls.append(ParsedCall("", None, "", "empty <tool_call> block"))
                continue
            try:
                obj = orjson.loads(body)
            except orjson.JSONDecodeError as e:
                why = f"the <tool_call> body is not valid JSON ({e})"
                if not closed:
                    why += "; the block is missing </tool_call>"
                calls.append(ParsedCall(_guess_name(body), None, body, why))
                continue
            if isinstance(obj, list) and not obj:
                calls.append(ParsedCall("", None, body, "the <tool_call> holds an empty list of calls"))
            for o in obj if isinstance(obj, list) else [obj]:
                calls.append(call_from_object(o, body))
        return _strip_tagged(text), calls

    def render(self, calls: Calls) -> str:
        return "\n".join(
            "<tool_call>\n"
            # "</" written as "<\/" (the same JSON string) so a value holding "</tool_call>" cannot end the block
            + json.dumps({"name": n, "arguments": dict(a)}, ensure_ascii=False).replace("</", "<\\/")
            + "\n</tool_call>"
            for n, a in calls
        )


_NAME_GUESS = re.compile(r'"name"\s*:\s*"([^"]{1,128})"')


def _guess_name(body: str) -> str:
    m = _NAME_GUESS.search(body)
    return m.group(1) if m else ""


_ARG = re.compile(r"<arg_key>(.*?)</arg_key>\s*<arg_value>(.*?)</arg_value>", re.S)


class GlmXml:
    name = "glm_xml"

    def detect(self, text: str) -> bool:
        body = _first_body(text)
        return body is not None and body != "" and body[0] not in "{["

    def parse(self, text: str) -> tuple[str, list[ParsedCall]]:
        calls: list[ParsedCall] = []
        for m in _TAGGED.finditer(text):
            body = m.group(1)
            name = body.partition("<")[0].strip()
            raw = body.strip()
            if not name or any(c.isspace() for c in name) or "<" in name:
                calls.append(ParsedCall("", None, raw, "the <tool_call> must start with the tool name"))
                continue
            if not m.group(0).endswith("</tool_call>"):
                calls.append(ParsedCall(name, None, raw, "the <tool_call> block is missing </tool_call>"))
                continue
            pairs = _ARG.findall(body)
            if body.count("<arg_key>") != len(pairs) or body.count("<arg_value>") != len(pairs):
                calls.append(
                    ParsedCall(name, None, raw, "every <arg_key> needs exactly one <arg_value> after it")
                )
                continue
            args: dict[str, Any] = {}
            raw_values: dict[str, str] = {}
            for k, v in pairs:
                args[k.strip()] = _xml_value(v)
                raw_values[k.strip()] = v
            # Values are untyped text here: the environment re-types them by the tool's schema (coerce_arguments).
            calls.append(ParsedCall(name, args, dumps_str(args), raw_values=raw_values))
        return _strip_tagged(text), calls

    def render(self, calls: Calls) -> str:
        out = []
        for n, a in calls:
            parts = [f"<tool_call>{n}"]
            for k, v in a.items():
                val = v if isinstance(v, str) else json.dumps(v, ensure_ascii=False)
                parts.append(f"<arg_key>{k}</arg_key>\n<arg_value>{val}</arg_value>")
            out.append("\n".join(parts) + "\n</tool_call>")
        return "\n".join(out)


def _xml_value(v: str) -> Any:
    s = v.strip()
    if s and (s[0] in '{["-' or s[0].isdigit() or s in ("true", "false", "null")):
        try:
            return orjson.loads(s)
        except orjson.JSONDecodeError:
            pass
    return v


_PY_START = re.compile(r"^\[?\s*[A-Za-z_][\w.]*\s*\(")
_FENCE = re.compile(r"^```[a-zA-Z]*\s*\n?(.*?)\n?```$", re.S)


def _unfence(text: str) -> str:
    s = text.strip()
    if s.startswith("<|python_tag|>"):
        s = s[len("<|python_tag|>") :].strip()
    m = _FENCE.match(s)
    return m.group(1).strip() if m else s


def _dotted(node: ast.AST) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value)
        return None if base is None else f"{base}.{node.attr}"
    return None


def _as_json(v: Any) -> Any:
    """A Python literal as JSON data (tuples become lists); anything JSON cannot hold is a ValueError."""
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    if isinstance(v, (list, tuple)):
        return [_as_json(x) for x in v]
    if isinstance(v, dict) and all(isinstance(k, str) for k in v):
        return {k: _as_json(x) for k, x in v.items()}
    raise ValueError(f"not JSON: {type(v).__name__}")


class Pythonic:
    name = "pythonic"

    def detect(self, text: str) -> bool:
        s = _unfence(text)
        return bool(_PY_START.match(s)) and s.rstrip().endswith((")", ")]"))

    def parse(self, text: str) -> tuple[str, list[ParsedCall]]:
        s = _unfence(text)
        try:
            tree = ast.parse(s, mode="eval").body
        except SyntaxError as e:
            m = re.match(r"^\[?\s*([A-Za-z_][\w.]*)", s)
            return "", [ParsedCall(m.group(1) if m else "", None, s, f"not a valid pythonic call: {e.msg}")]
        nodes = tree.elts if isinstance(tree, (ast.List, ast.Tuple)) else [tree]
        calls: list[ParsedCall] = []
        for node in nodes:
            raw = ast.get_source_segment(s, node) or s
            if not isinstance(node, ast.Call):
                calls.append(ParsedCall("", None, raw, "expected a call like tool(arg=value)"))
                continue
            name = _dotted(node.func) or ""
            if node.args:
                calls.append(ParsedCall(name, None, raw, "pythonic calls take keyword arguments only"))
                continue
            args: dict[str, Any] = {}
            err = None
            for kw in node.keywords:
                if kw.arg is None:
                    err = "**kwargs is not allowed in a tool call"
                    break
                try:
                    args[kw.arg] = _as_json(ast.literal_eval(kw.value))
                except (ValueError, SyntaxError, TypeError, RecursionError, MemoryError):
                    err = f"argument {kw.arg!r} is not a JSON-compatible literal"
                    break
            if err:
                calls.append(ParsedCall(name, None, raw, err))
            else:
                calls.append(ParsedCall(name, args, dumps_str(args)))
        return "", calls

    def render(self, calls: Calls) -> str:
        def one(n: str, a: Mapping[str, Any]) -> str:
            return f"{n}(" + ", ".join(f"{k}={v!r}" for k, v in a.items()) + ")"

        return "[" + ", ".join(one(n, a) for n, a in calls) + "]"


_JSON_CALL = re.compile(r'(?:\[\s*)?\{\s*"(?:name|function)"\s*:')


class BareJson:
    name = "json"

    def detect(self, text: str) -> bool:
        return bool(_JSON_CALL.search(text))

    def parse(self, text: str) -> tuple[str, list[ParsedCall]]:
        dec = json.JSONDecoder()
        calls: list[ParsedCall] = []
        kept: list[str] = []
        pos = 0
        for m in _JSON_CALL.finditer(text):
            start = m.start()
            if start < pos:
                continue
            try:
                obj, end = dec.raw_decode(text, start)
            except (json.JSONDecodeError, RecursionError) as e:
                why = e.msg if isinstance(e, json.JSONDecodeError) else "nested too deeply"
                kept.append(text[pos:start])
                calls.append(
                    ParsedCall(
                        _guess_name(text[start:]),
                        None,
                        text[start:].strip()[:2000],
                        f"looks like a JSON tool call but is not valid JSON ({why})",
                    )
                )
                pos = len(text)
                break
            kept.append(text[pos:start])
            raw = text[start:end]
            for o in obj if isinstance(obj, list) else [obj]:
                calls.append(call_from_object(o, raw))
            pos = end
        kept.append(text[pos:])
        content = "".join(kept)
        content = re.sub(r"```(?:json)?\s*```", "", content).strip()
        return content, calls

    def render(self, calls: Calls) -> str:
        objs = [{"name": n, "arguments": dict(a)} for n, a in calls]
        return json.dumps(objs[0] if len(objs) == 1 else objs, ensure_ascii=False)


class OpenAIToolCalls:
    """Structured calls; as text, the JSON of a `tool_calls` list."""

    name = "openai"

    def detect(self, text: str) -> bool:
        return '"function"' in text and '"tool_calls"' in text

    def parse(self, text: str) -> tuple[str, list[ParsedCall]]:
        try:
            obj = orjson.loads(text)
        except orjson.JSONDecodeError as e:
            return "", [ParsedCall("", None, text, f"tool_calls are not valid JSON ({e})")]
        tcs = obj.get("tool_calls") if isinstance(obj, dict) else obj
        if not isinstance(tcs, list):
            return "", [ParsedCall("", None, text, "tool_calls must be a list")]
        calls = []
        for tc in tcs:
            c = call_from_object(tc, dumps_str(tc))
            if isinstance(tc, dict) and isinstance(tc.get("id"), str):
                c.id = tc["id"]
            calls.append(c)
        content = obj.get("content") if isinstance(obj, dict) else None
        return content if isinstance(content, str) else "", calls

    def render(self, calls: Calls) -> str:
        return json.dumps(
            {
                "tool_calls": [
                    {
                        "id": f"call_{i}",
                        "type": "function",
                        "function": {"name": n, "arguments": json.dumps(dict(a), ensure_ascii=False)},
                    }
                    for i, (n, a) in enumerate(calls)
                ]
            },
            ensure_ascii=False,
        )


register(Hermes(), auto_priority=0)
register(GlmXml(), auto_priority=1)
register(Pythonic(), auto_priority=2)
register(BareJson(), auto_priority=3)
register(OpenAIToolCalls())
