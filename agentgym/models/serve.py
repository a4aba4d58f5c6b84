"""An OpenAI-compatible chat-completions server over any `ChatModel` (starlette + uvicorn).

`app(model)` answers `GET /v1/models` and `POST /v1/chat/completions` (`messages`, `tools`,
`tool_choice`, `max_tokens`, `temperature`, `top_p`, `seed`). The model's text is parsed with its
own tool-call format: when the request has tools and `tool_choice` is not "none", calls found are
returned as OpenAI `tool_calls` (finish reason `tool_calls`) and the rest as `content` — the
native mode; with `tool_choice: "none"` the raw text comes back untouched — the text mode. The
sampled token ids and log-probabilities come back as `logprobs.content`, tokens written
`token_id:<id>` as vLLM's `return_tokens_as_token_ids` does. Requests are served one at a time
(the CPU generates one sequence at a time anyway); bad requests get a 400 with a message.
`agentgym serve model` runs it.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from agentgym.models.base import ChatModel, SamplingParams
from agentgym.parsing import parse_turn


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": "invalid_request_error"}}, status_code=status)


def app(model: ChatModel, name: str | None = None) -> Starlette:
    served = name or model.name
    lock = asyncio.Lock()

    async def models(request: Request) -> JSONResponse:
        return JSONResponse(
            {"object": "list", "data": [{"id": served, "object": "model", "owned_by": "agentgym"}]}
        )

    async def chat(request: Request) -> JSONResponse:
        try:
            body = await request.json()
        except (ValueError, json.JSONDecodeError):
            return _error(400, "the body is not JSON")
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            return _error(400, "messages must be a non-empty list")
        if body.get("model") not in (None, served):
            return JSONResponse(
                {"error": {"message": f"model {body.get('model')!r} is not served here ({served})"}},
                status_code=404,
            )
        try:
            sampling = SamplingParams(
                temperature=float(body.get("temperature") or 0.0),
                top_p=float(body.get("top_p") or 1.0),
                max_new_tokens=int(body.get("max_tokens") or body.get("max_completion_tokens") or 256),
                seed=body.get("seed"),
            )
        except (ValueError, TypeError) as e:
            return _error(400, f"bad sampling parameters: {e}")
        tools = body.get("tools") or None
        async with lock:
            completion = await model.generate(messages, tools, sampling)
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
        n_out = len(completion.token_ids or ())
        return JSONResponse(
            {
                "id": f"chatcmpl-{uuid.uuid4().hex[:16]}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": served,
                "choices": [choice],
                "usage": {
                    "prompt_tokens": completion.prompt_tokens,
                    "completion_tokens": n_out,
                    "total_tokens": completion.prompt_tokens + n_out,
                },
            }
        )

    return Starlette(
        routes=[
            Route("/v1/models", models, methods=["GET"]),
            Route("/v1/chat/completions", chat, methods=["POST"]),
        ]
    )


def serve(model: ChatModel, host: str = "127.0.0.1", port: int = 8000, name: str | None = None) -> None:
    import uvicorn

    uvicorn.run(app(model, name), host=host, port=port, log_level="warning")
