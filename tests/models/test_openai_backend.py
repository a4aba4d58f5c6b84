"""OpenAI-compatible servers: both tool-call modes, retries and clear errors (mock server), and real
episodes through a server process serving the embedded model."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import time

import httpx
import pytest
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

from agentgym.models.base import SamplingParams
from agentgym.models.openai_compat import ModelServerError, OpenAIChatModel

TOOLS = [
    {"type": "function", "function": {"name": "calendar__search_events", "parameters": {"type": "object"}}}
]


def mock(script):
    """A mock server answering from `script`: a list of (status, body, headers) or callables."""
    calls = []

    async def chat(request):
        body = await request.json()
        calls.append(body)
        step = script[min(len(calls) - 1, len(script) - 1)]
        if callable(step):
            return await step(body)
        status, payload, headers = step
        return JSONResponse(payload, status_code=status, headers=headers or {})

    app = Starlette(routes=[Route("/v1/chat/completions", chat, methods=["POST"])])
    return app, calls


def ok(message, logprobs=None):
    choice = {
        "index": 0,
        "message": message,
        "finish_reason": "tool_calls" if message.get("tool_calls") else "stop",
    }
    if logprobs:
        choice["logprobs"] = {"content": logprobs}
    return (200, {"choices": [choice], "usage": {"prompt_tokens": 7}}, None)


def model(app, **kw):
    return OpenAIChatModel(
        "http://mock/v1", "m", transport=httpx.ASGITransport(app=app), backoff_s=0.01, **kw
    )


def run(coro):
    return asyncio.run(coro)


def test_native_tool_calls_and_token_capture():
    tc = [
        {
            "id": "c1",
            "type": "function",
            "function": {"name": "calendar__search_events", "arguments": '{"query": "dentist"}'},
        }
    ]
    app, calls = mock(
        [
            ok(
                {"role": "assistant", "content": None, "tool_calls": tc},
                [{"token": "token_id:5", "logprob": -0.1}, {"token": "token_id:9", "logprob": -0.2}],
            )
        ]
    )
    out = run(
        model(app).generate([{"role": "user", "content": "hi"}], TOOLS, SamplingParams(max_new_tokens=8))
    )
    assert [(c.name, c.arguments) for c in out.tool_calls] == [
        ("calendar__search_events", {"query": "dentist"})
    ]
    assert out.token_ids == [5, 9] and out.logprobs == [-0.1, -0.2]
    assert out.as_action()["tool_calls"] == tc
    assert calls[0]["tools"] == TOOLS and calls[0]["max_tokens"] == 8 and "tool_choice" not in calls[0]


def test_text_mode_parses_calls_from_the_text():
    text = '<tool_call>{"name": "calendar__search_events", "arguments": {"query": "x"}}</tool_call>'
    app, calls = mock([ok({"role": "assistant", "content": text})])
    out = run(model(app, mode="text").generate([{"role": "user", "content": "hi"}], TOOLS))
    assert out.tool_calls[0].name == "calendar__search_events" and out.text == text
    assert calls[0]["tool_choice"] == "none"


def test_retries_with_backoff_then_clear_errors():
    app, calls = mock(
        [
            (429, {"error": {"message": "slow down"}}, {"retry-after": "0"}),
            (503, {}, None),
            ok({"role": "assistant", "content": "fine"}),
        ]
    )
    m = model(app)
    assert run(m.generate([{"role": "user", "content": "x"}])).text == "fine"
    assert len(calls) == 3 and m.retries == 2

    app, _ = mock([(500, {"error": "boom"}, None)])
    with pytest.raises(ModelServerError) as e:
        run(model(app, max_retries=2).generate([{"role": "user", "content": "x"}]))
    assert e.value.kind == "server" and "after 2 retries" in str(e.value)

    for status, kind in ((401, "auth"), (404, "not_found"), (400, "bad_request")):
        app, calls = mock([(status, {"error": {"message": f"nope {status}"}}, None)])
        with pytest.raises(ModelServerError) as e:
            run(model(app).generate([{"role": "user", "content": "x"}]))
        assert e.value.kind == kind and f"nope {status}" in str(e.value) and len(calls) == 1  # never retried

    app, _ = mock([(200, {"unexpected": True}, None)])
    with pytest.raises(ModelServerError, match="protocol"):
        run(model(app).generate([{"role": "user", "content": "x"}]))


def test_timeout_and_connection_refused():
    import threading

    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen()
    held = []
    threading.Thread(
        target=lambda: held.append(silent.accept()), daemon=True
    ).start()  # accepts, never answers
    try:
        m = OpenAIChatModel(
            f"http://127.0.0.1:{silent.getsockname()[1]}/v1",
            "m",
            timeout_s=0.3,
            max_retries=1,
            backoff_s=0.01,
        )
        with pytest.raises(ModelServerError) as e:
            run(m.generate([{"role": "user", "content": "x"}]))
        assert e.value.kind == "timeout" and "after 1 retries" in str(e.value)
    finally:
        silent.close()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(ModelServerError) as e:
        run(OpenAIChatModel(f"http://127.0.0.1:{port}/v1", "m").generate([{"role": "user", "content": "x"}]))
    assert e.value.kind == "connect"


@pytest.fixture(scope="module")
def server():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "agentgym", "serve", "model", "--port", str(port), "--name", "smol"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/v1/models", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.3)
        assert proc.poll() is None, proc.stderr.read().decode()
    yield f"http://127.0.0.1:{port}/v1"
    proc.terminate()
    proc.wait(10)


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["native", "text"])
def test_real_episodes_through_a_served_embedded_model(server, mode):
    from transformers import AutoTokenizer

    from agentgym.env.tool_env import EnvConfig, ToolUseEnv
    from agentgym.models import embedded
    from agentgym.policies import ModelPolicy
    from agentgym.runner import run_episode

    m = OpenAIChatModel(server, "smol", mode=mode)
    env = ToolUseEnv("starter", config=EnvConfig(max_turns=2))
    policy = ModelPolicy(m, SamplingParams(max_new_tokens=40))
    tok = AutoTokenizer.from_pretrained(embedded.prepare(log=lambda *_: None))
    for task_id in ("calendar-dentist-time", "calendar-cancel-demo"):
        traj = asyncio.run(run_episode(env, policy, task_id, 0))
        assert traj.terminated or traj.truncated
        assert traj.rubric is not None
        for turn in traj.turns:
            assert turn.token_ids and turn.logprobs and len(turn.token_ids) == len(turn.logprobs)
        first = traj.turns[0]
        text = traj.messages[first.message_index].content or ""
        if mode == "text":  # the text the env saw is exactly what the sampled ids decode to
            assert tok.decode(first.token_ids, skip_special_tokens=True).strip() == text.strip()
    bad = OpenAIChatModel(server, "not-this-model")
    with pytest.raises(ModelServerError) as e:
        asyncio.run(bad.generate([{"role": "user", "content": "hi"}]))
    assert e.value.kind == "not_found"
