"""A deterministic OpenAI-compatible chat server that plays agentgym tasks' gold paths (test helper).

It finds the task by the request's first user message; turn k of the conversation (k = assistant
messages so far) answers with gold turn k: its calls as `tool_calls`, or its answer as text. Tasks
listed in `--wrong` get a plain "I don't know." instead, so a test sees a failing rubric too.
Non-streaming and streaming (SSE) replies; GET /v1/models. Loopback only.

    python gold_openai_server.py --suite starter --port 8799 [--wrong TASK_ID ...]
"""

from __future__ import annotations

import argparse
import json
import time
import uuid

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, StreamingResponse
from starlette.routing import Route

from agentgym.suites.suite import load_suite


def make_app(suite_name: str, wrong: set[str]) -> Starlette:
    suite = load_suite(suite_name)
    by_request = {t.instruction: t for t in suite}

    def decide(body: dict) -> dict:
        msgs = body.get("messages", [])
        user = next(m for m in msgs if m.get("role") == "user")
        text = (
            user["content"]
            if isinstance(user["content"], str)
            else " ".join(p.get("text", "") for p in user["content"])
        )
        task = by_request[text.strip()]
        if task.id in wrong:
            return {"role": "assistant", "content": "I don't know."}
        turn = task.gold[min(sum(m.get("role") == "assistant" for m in msgs), len(task.gold) - 1)]
        if turn.answer is not None:
            return {"role": "assistant", "content": turn.answer}
        calls = [
            {
                "id": "call_" + uuid.uuid4().hex[:12],
                "type": "function",
                "function": {"name": c.tool, "arguments": json.dumps(c.arguments)},
            }
            for c in turn.calls
        ]
        return {"role": "assistant", "content": None, "tool_calls": calls}

    async def chat(request: Request):
        body = await request.json()
        msg = decide(body)
        finish = "tool_calls" if msg.get("tool_calls") else "stop"
        cid, created, model = "chatcmpl-" + uuid.uuid4().hex[:12], int(time.time()), body.get("model", "gold")
        usage = {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}
        if not body.get("stream"):
            return JSONResponse(
                {
                    "id": cid,
                    "object": "chat.completion",
                    "created": created,
                    "model": model,
                    "choices": [{"index": 0, "message": msg, "finish_reason": finish, "logprobs": None}],
                    "usage": usage,
                }
            )

        def chunk(delta, fr=None, u=None):
            c = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": model}
            c["choices"] = [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": fr}]
            if u is not None:
                c["usage"] = u
            return "data: " + json.dumps(c) + "\n\n"

        def events():
            if msg.get("tool_calls"):
                yield chunk(
                    {
                        "role": "assistant",
                        "content": None,
                        "tool_calls": [{"index": i, **tc} for i, tc in enumerate(msg["tool_calls"])],
                    }
                )
            else:
                yield chunk({"role": "assistant", "content": msg["content"]})
            yield chunk({}, fr=finish)
            if (body.get("stream_options") or {}).get("include_usage"):
                yield chunk(None, u=usage)
            yield "data: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")

    async def models(request: Request):
        return JSONResponse(
            {"object": "list", "data": [{"id": "gold", "object": "model", "owned_by": "test"}]}
        )

    return Starlette(
        routes=[
            Route("/v1/chat/completions", chat, methods=["POST"]),
            Route("/v1/models", models, methods=["GET"]),
        ]
    )


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--suite", default="starter")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--wrong", nargs="*", default=[])
    a = ap.parse_args()
    app = make_app(a.suite, set(a.wrong))
    print(f"READY {a.port}", flush=True)
    uvicorn.run(app, host="127.0.0.1", port=a.port, log_level="warning")
