"""An OpenAI-compatible server over any `ChatModel` (starlette + uvicorn), vLLM-flavoured.

`app(model)` answers:
- `POST /v1/chat/completions` (`messages`, `tools`, `tool_choice`, `max_tokens`, `temperature`,
  `top_p`, `seed`). The model's text is parsed with its own tool-call format: when the request has
  tools and `tool_choice` is not "none", calls found are returned as OpenAI `tool_calls` (finish
  reason `tool_calls`) and the rest as `content` — the native mode; with `tool_choice: "none"` the
  raw text comes back untouched — the text mode. The sampled ids and log-probabilities come back
  as `logprobs.content`, tokens written `token_id:<id>` as vLLM's `return_tokens_as_token_ids` does.
- `POST /v1/completions`, as vLLM answers it: `prompt` is text or a list of token ids (one prompt);
  `max_tokens` (16), `temperature` (1.0), `top_p`, `seed`, `logprobs` (0 or 1: the sampled token's
  log-probability, which is also the only `top_logprobs` entry), `return_tokens_as_token_ids`,
  `stop_token_ids` (the model's end tokens only). `choices[0].text` excludes the end token;
  `logprobs.tokens`/`token_logprobs` cover every sampled token, the end token included.
- `POST /v1/load_lora_adapter` (`lora_name`, `lora_path`: a folder saved by peft) and
  `POST /v1/unload_lora_adapter` (`lora_name`), vLLM's dynamic LoRA endpoints, for models that
  can carry adapters (`TransformersChatModel.load_adapter`). A request whose `model` names a
  loaded adapter is generated with it; the model's own name means the base weights. Success is a
  plain-text line, as vLLM gives it.
- `GET /v1/models`: the base model and each adapter (with `parent`: the base, `root`: its folder).

Errors are vLLM's shape, `{"error": {"message", "type", "param", "code"}}`: 400 for a bad request
(and for what this server does not do: several prompts, `echo`, stop strings, `logprobs` > 1, raw
token ids or adapters on a model that cannot take them), 404 for an unknown model or adapter.
Concurrent requests reach the model together (a `TransformersChatModel` batches those with the
same settings and adapter). `agentgym serve model` runs it.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

from agentgym.models.base import ChatModel, Completion, SamplingParams
from agentgym.parsing import parse_turn

_TYPES = {400: "BadRequestError", 404: "NotFoundError"}


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse(
        {"error": {"message": message, "type": _TYPES.get(status, "Error"), "param": None, "code": status}},
        status_code=status,
    )


class _Refused(Exception):
    """A request answered with an error (status, message)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


async def _body(request: Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except (ValueError, json.JSONDecodeError):
        raise _Refused(400, "the body is not JSON") from None
    if not isinstance(body, dict):
        raise _Refused(400, "the body must be a JSON object")
    return body


def _sampling(body: dict[str, Any], *, temperature: float, max_tokens: int) -> SamplingParams:
    def pick(key: str, default: Any) -> Any:
        return default if body.get(key) is None else body[key]

    try:
        return SamplingParams(
            temperature=float(pick("temperature", temperature)),
            top_p=float(pick("top_p", 1.0)),
            max_new_tokens=int(pick("max_tokens", pick("max_completion_tokens", max_tokens))),
            seed=body.get("seed"),
        )
    except (ValueError, TypeError) as e:
        raise _Refused(400, f"bad sampling parameters: {e}") from None


def _usage(c: Completion) -> dict[str, int]:
    n = len(c.token_ids or ())
    return {"prompt_tokens": c.prompt_tokens, "completion_tokens": n, "total_tokens": c.prompt_tokens + n}


def app(model: ChatModel, name: str | None = None) -> Starlette:
    served = name or model.name

    def adapter_of(requested: Any) -> str | None:
        """The adapter a request's `model` names (None: the base weights)."""
        if requested in (None, served):
            return None
        if requested in getattr(model, "adapters", {}):
            return requested
        raise _Refused(404, f"The model `{requested}` does not exist.")

    async def run(adapter: str | None, make: Any) -> Completion:
        try:
            return await make()
        except KeyError:  # the adapter was unloaded while the request waited
            raise _Refused(404, f"The model `{adapter}` does not exist.") from None

    def can(method: str, what: str) -> Any:
        f = getattr(model, method, None)
        if f is None:
            raise _Refused(400, f"this server's model ({served}) cannot {what}")
        return f

    async def models(request: Request) -> JSONResponse:
        data = [{"id": served, "object": "model", "owned_by": "agentgym", "root": served, "parent": None}]
        for a, path in getattr(model, "adapters", {}).items():
            data.append({"id": a, "object": "model", "owned_by": "agentgym", "root": path, "parent": served})
        return JSONResponse({"object": "list", "data": data})

    async def chat(request: Request) -> JSONResponse:
        body = await _body(request)
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            raise _Refused(400, "messages must be a non-empty list")
        adapter = adapter_of(body.get("model"))
        sampling = _sampling(body, temperature=0.0, max_tokens=256)
        tools = body.get("tools") or None
        if adapter is None:
            completion = await model.generate(messages, tools, sampling)
        else:
            ids = model.sequence(messages, tools, add_generation_prompt=True).ids  # type: ignore[attr-defined]
            completion = await run(adapter, lambda: model.generate_ids(ids, sampling, adapter))  # type: ignore[attr-defined]
        message: dict[str, Any] = {"role": "assistant", "content": completion.text}
        finish = completion.finish_reason
        if tools and body.get("tool_choice") != "none":
            turn = parse_turn(completion.text, model.tool_format)
            good = [c for c in turn.calls if c.error is None]
            if good:
                message["content"] = turn.content or None
                message["tool_calls"] = [
                    {
                        "id": f"call_{uuid.uuid4().hex[:12]}",
                        "type": "function",
                        "function": {"name": c.name, "arguments": c.raw},
                    }
                    for c in good
                ]
                finish = "tool_calls"
        choice: dict[str, Any] = {"index": 0, "message": message, "finish_reason": finish}
        if completion.token_ids is not None and completion.logprobs is not None:
            choice["logprobs"] = {
                "content": [
                    {"token": f"token_id:{t}", "logprob": lp}
                    for t, lp in zip(completion.token_ids, completion.logprobs, strict=False)
                ]
            }
        return JSONResponse(
            {
                "id": f"chatcmpl-{uuid.uuid4().hex[:16]}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": body.get("model") or served,
                "choices": [choice],
                "usage": _usage(completion),
            }
        )

    async def completions(request: Request) -> JSONResponse:
        body = await _body(request)
        adapter = adapter_of(body.get("model"))
        generate_ids = can("generate_ids", "continue raw prompts (it is not a local transformers model)")
        ids = _prompt_ids(model, body.get("prompt"), body.get("add_special_tokens", True))
        for key, what in (("echo", "echo"), ("stop", "stop strings"), ("suffix", "suffix")):
            if body.get(key):
                raise _Refused(400, f"{what} is not supported by this server")
        if body.get("n") not in (None, 1):
            raise _Refused(400, "n must be 1 here")
        eos = set(getattr(model, "eos_ids", ()))
        extra_stops = set(body.get("stop_token_ids") or ()) - eos
        if extra_stops:
            raise _Refused(
                400, f"stop_token_ids other than the model's end tokens {sorted(eos)}: {sorted(extra_stops)}"
            )
        n_logprobs = body.get("logprobs")
        if n_logprobs is not None and (not isinstance(n_logprobs, int) or not 0 <= n_logprobs <= 1):
            raise _Refused(400, "logprobs must be 0 or 1 here (the sampled token's log-probability)")
        sampling = _sampling(body, temperature=1.0, max_tokens=16)
        c = await run(adapter, lambda: generate_ids(ids, sampling, adapter))
        choice: dict[str, Any] = {
            "index": 0,
            "text": c.text,
            "logprobs": None,
            "finish_reason": c.finish_reason,
            "stop_reason": None,
        }
        if n_logprobs is not None and c.token_ids is not None and c.logprobs is not None:
            as_ids = bool(body.get("return_tokens_as_token_ids"))
            tokens = [f"token_id:{t}" if as_ids else model.decode([t]) for t in c.token_ids]  # type: ignore[attr-defined]
            offsets, at = [], 0
            for t in c.token_ids:
                offsets.append(at)
                at += len(model.decode([t]))  # type: ignore[attr-defined]
            choice["logprobs"] = {
                "text_offset": offsets,
                "token_logprobs": c.logprobs,
                "tokens": tokens,
                "top_logprobs": [{tok: lp} for tok, lp in zip(tokens, c.logprobs, strict=True)],
            }
        return JSONResponse(
            {
                "id": f"cmpl-{uuid.uuid4().hex[:16]}",
                "object": "text_completion",
                "created": int(time.time()),
                "model": body.get("model") or served,
                "choices": [choice],
                "usage": _usage(c),
            }
        )

    async def load_lora(request: Request) -> PlainTextResponse:
        body = await _body(request)
        lora, path = body.get("lora_name"), body.get("lora_path")
        if not isinstance(lora, str) or not lora or not isinstance(path, str) or not path:
            raise _Refused(400, "Both 'lora_name' and 'lora_path' must be provided.")
        load = can("load_adapter", "load LoRA adapters (it is not a local transformers model)")
        if lora == served or lora in getattr(model, "adapters", {}):
            raise _Refused(400, f"The lora adapter '{lora}' has already been loaded.")
        try:
            await asyncio.to_thread(load, lora, path)
        except Exception as e:  # peft's errors: no such folder, no adapter_config.json, bad weights
            raise _Refused(400, f"Loading lora {lora} failed: {type(e).__name__}: {e}") from None
        return PlainTextResponse(f"Success: LoRA adapter '{lora}' added successfully.")

    async def unload_lora(request: Request) -> PlainTextResponse:
        body = await _body(request)
        lora = body.get("lora_name")
        if not isinstance(lora, str) or not lora:
            raise _Refused(400, "'lora_name' needs to be provided to unload a LoRA adapter.")
        unload = can("unload_adapter", "unload LoRA adapters (it is not a local transformers model)")
        if lora not in getattr(model, "adapters", {}):
            raise _Refused(404, f"The lora adapter '{lora}' cannot be found.")
        await asyncio.to_thread(unload, lora)
        return PlainTextResponse(f"Success: LoRA adapter '{lora}' removed successfully.")

    async def refused(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, _Refused)
        return _error(exc.status, exc.message)

    return Starlette(
        routes=[
            Route("/v1/models", models, methods=["GET"]),
            Route("/v1/chat/completions", chat, methods=["POST"]),
            Route("/v1/completions", completions, methods=["POST"]),
            Route("/v1/load_lora_adapter", load_lora, methods=["POST"]),
            Route("/v1/unload_lora_adapter", unload_lora, methods=["POST"]),
        ],
        exception_handlers={_Refused: refused},
    )


def _prompt_ids(model: Any, prompt: Any, add_special_tokens: bool) -> list[int]:
    """One prompt, as vLLM takes it: text, a list of ids, or a one-element list of either."""
    if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], str | list):
        prompt = prompt[0]
    if isinstance(prompt, str) and prompt:
        return model.tokenizer(prompt, add_special_tokens=add_special_tokens)["input_ids"]
    if (
        isinstance(prompt, list)
        and prompt
        and all(isinstance(t, int) and not isinstance(t, bool) and t >= 0 for t in prompt)
    ):
        vocab = len(model.tokenizer)
        if max(prompt) >= vocab:
            raise _Refused(400, f"token id {max(prompt)} is out of vocabulary (size {vocab})")
        return list(prompt)
    raise _Refused(400, "prompt must be one non-empty string or one non-empty list of token ids")


def serve(model: ChatModel, host: str = "127.0.0.1", port: int = 8000, name: str | None = None) -> None:
    import uvicorn

    uvicorn.run(app(model, name), host=host, port=port, log_level="warning")
