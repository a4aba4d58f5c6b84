"""OpenAIChatModel: any OpenAI-compatible chat-completions server as a `ChatModel` (httpx).

Two tool-call modes (`mode`):
- `native` — the request carries `tools`; the server parses calls and returns `tool_calls`, which
  become the turn's calls (and the action is an OpenAI message dict with them);
- `text` — the model writes calls as text in `tool_format` (hermes by default) and our parser
  registry reads them; `tools` are still sent so the server's chat template can show them.

Token-exact capture where the server offers it: `logprobs` are requested, and with
`return_tokens_as_token_ids` (vLLM) the sampled token ids are read from the returned tokens
(`token_id:123`); the text is never re-tokenised here.

Every failure is one `ModelServerError(kind, message)`: `connect` (nothing listens), `timeout`,
`rate_limited` and `server` (after `max_retries` retries with exponential backoff and jitter,
honouring `Retry-After`), `auth` (401/403), `not_found` (404: wrong URL or model), `bad_request`
(other 4xx, with the server's message), `protocol` (an answer that is not a chat completion).
At most `max_concurrency` requests are in flight per model; `min_interval_s` spaces their starts.
"""

from __future__ import annotations

import asyncio
import functools
import math
import random
import ssl
import time
from typing import Any, Literal

import httpx

from agentgym.models.base import Completion, SamplingParams
from agentgym.parsing import ParsedCall, parse_turn

ErrorKind = Literal[
    "connect", "timeout", "rate_limited", "server", "auth", "not_found", "bad_request", "protocol"
]


class ModelServerError(RuntimeError):
    def __init__(self, kind: ErrorKind, message: str) -> None:
        super().__init__(f"{kind}: {message}")
        self.kind: ErrorKind = kind
        self.message = message


POOL = 32
"""Connections per HTTP client; `max_concurrency / POOL` clients share the requests."""

_RETRY = {429: "rate_limited", 500: "server", 502: "server", 503: "server", 504: "server"}
_FINAL = {401: "auth", 403: "auth", 404: "not_found"}


class OpenAIChatModel:
    """See module doc."""

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str | None = None,
        mode: Literal["native", "text"] = "native",
        tool_format: str = "hermes",
        timeout_s: float = 120.0,
        max_retries: int = 4,
        backoff_s: float = 0.5,
        max_concurrency: int = 64,
        min_interval_s: float = 0.0,
        extra_body: dict[str, Any] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if mode not in ("native", "text"):
            raise ValueError(f"mode must be 'native' or 'text', not {mode!r}")
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.name = f"openai:{model}"
        self.mode = mode
        self.tool_format = tool_format
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.min_interval_s = min_interval_s
        self.extra_body = extra_body or {}
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._sem = asyncio.Semaphore(max_concurrency)
        self._max_concurrency = max_concurrency
        self._transport = transport
        self._clients: list[httpx.AsyncClient] = []
        self._client_loop: Any = None
        self._next_start = 0.0
        self.requests = 0
        self.retries = 0

    def _http(self) -> int:
        """The index of the client for the next request. Connections are spread over small pools
        (httpcore scans its whole pool for every request, which is quadratic at hundreds of
        connections), and a request goes to the pool with the fewest requests in flight, so it
        finds a connection that was just freed instead of opening a new one. The clients belong to
        the running loop and are made again for a new one."""
        loop = asyncio.get_running_loop()
        if not self._clients or self._client_loop is not loop:
            self._clients = [
                httpx.AsyncClient(
                    base_url=self.base_url,
                    headers=self._headers,
                    timeout=self.timeout_s,
                    transport=self._transport,
                    limits=httpx.Limits(max_connections=POOL, max_keepalive_connections=POOL),
                    verify=_tls(),
                )
                for _ in range(max(1, math.ceil(self._max_concurrency / POOL)))
            ]
            self._in_flight = [0] * len(self._clients)
            self._client_loop = loop
        return min(range(len(self._clients)), key=self._in_flight.__getitem__)

    async def aclose(self) -> None:
        for c in self._clients:
            await c.aclose()
        self._clients = []

    def _body(
        self, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None, s: SamplingParams
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.model,
            "messages": [_wire(m) for m in messages],
            "max_tokens": s.max_new_tokens,
            "temperature": s.temperature,
            "top_p": s.top_p,
            "logprobs": True,
            **self.extra_body,
        }
        if s.seed is not None:
            body["seed"] = s.seed
        if tools:
            body["tools"] = tools
            if self.mode == "text":
                body["tool_choice"] = "none"  # the server shows the tools; we read the calls from the text
        return body

    async def _post(self, body: dict[str, Any], path: str = "/chat/completions") -> dict[str, Any]:
        resp = await self._send(path, body)
        try:
            return resp.json()
        except ValueError:
            raise ModelServerError("protocol", f"not JSON: {resp.text[:200]!r}") from None

    async def _send(self, path: str, body: dict[str, Any]) -> httpx.Response:
        """POST `body` to `path` under the base URL: the 200 answer, after retries (module doc)."""
        attempt = 0
        while True:
            if self.min_interval_s:
                now = time.monotonic()
                wait, self._next_start = (
                    max(0.0, self._next_start - now),
                    max(now, self._next_start) + self.min_interval_s,
                )
                await asyncio.sleep(wait)
            self.requests += 1
            c = self._http()
            self._in_flight[c] += 1
            try:
                resp = await self._clients[c].post(path, json=body)
            except httpx.TimeoutException:
                kind, msg, retry_after = (
                    "timeout",
                    f"no answer from {self.base_url} in {self.timeout_s:g} s",
                    None,
                )
            except httpx.ConnectError as e:
                raise ModelServerError("connect", f"cannot connect to {self.base_url}: {e}") from None
            except httpx.HTTPError as e:
                kind, msg, retry_after = "server", f"{type(e).__name__}: {e}", None
            else:
                if resp.status_code == 200:
                    return resp
                detail = _error_text(resp)
                if resp.status_code in _FINAL:
                    raise ModelServerError(_FINAL[resp.status_code], f"HTTP {resp.status_code}: {detail}")  # type: ignore[arg-type]
                if resp.status_code not in _RETRY:
                    raise ModelServerError("bad_request", f"HTTP {resp.status_code}: {detail}")
                kind, msg = _RETRY[resp.status_code], f"HTTP {resp.status_code}: {detail}"
                retry_after = _retry_after(resp)
            finally:
                self._in_flight[c] -= 1
            if attempt >= self.max_retries:
                raise ModelServerError(kind, f"{msg} (after {attempt} retries)")  # type: ignore[arg-type]
            attempt += 1
            self.retries += 1
            delay = retry_after if retry_after is not None else self.backoff_s * 2 ** (attempt - 1)
            await asyncio.sleep(delay * (1 + 0.25 * random.random()))

    async def generate(
        self,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]] | None = None,
        sampling: SamplingParams | None = None,
    ) -> Completion:
        s = sampling or SamplingParams()
        t0 = time.perf_counter()
        async with self._sem:
            data = await self._post(self._body(messages, tools, s))
        try:
            choice = data["choices"][0]
            msg = choice["message"]
        except (KeyError, IndexError, TypeError):
            raise ModelServerError("protocol", f"no choices in the answer: {str(data)[:200]}") from None
        text = msg.get("content") or ""
        calls: list[ParsedCall]
        native = msg.get("tool_calls") or []
        if self.mode == "native" and native:
            calls = parse_turn({"role": "assistant", "content": text, "tool_calls": native}).calls
        else:
            calls = parse_turn(text, self.tool_format).calls if text else []
        token_ids, logprobs = _sampled(choice)
        usage = data.get("usage") or {}
        out = Completion(
            text=text,
            tool_calls=calls,
            token_ids=token_ids,
            logprobs=logprobs,
            prompt_tokens=int(usage.get("prompt_tokens") or 0),
            finish_reason={"tool_calls": "stop"}.get(
                choice.get("finish_reason"), choice.get("finish_reason") or "stop"
            ),
            gen_ms=(time.perf_counter() - t0) * 1000,
            model=self.name,
            native_tool_calls=native if self.mode == "native" and native else None,
        )
        return out


@functools.lru_cache(maxsize=1)
def _tls() -> ssl.SSLContext:
    """One TLS context for every client (loading the CA bundle takes ~50 ms each time)."""
    return ssl.create_default_context()


def _sampled(choice: dict[str, Any]) -> tuple[list[int] | None, list[float] | None]:
    content = ((choice.get("logprobs") or {}).get("content")) or None
    if not content:
        return None, None
    logprobs = [float(t.get("logprob", 0.0)) for t in content]
    ids: list[int] | None = []
    for t in content:
        tok = t.get("token", "")
        if isinstance(tok, str) and tok.startswith("token_id:"):
            ids.append(int(tok.split(":", 1)[1]))  # type: ignore[union-attr]
        else:
            ids = None
            break
    return ids, logprobs


def _error_text(resp: httpx.Response) -> str:
    try:
        err = resp.json().get("error")
        if isinstance(err, dict):
            return str(err.get("message") or err)[:300]
        if err:
            return str(err)[:300]
    except (ValueError, AttributeError):
        pass
    return resp.text[:300] or resp.reason_phrase


def _retry_after(resp: httpx.Response) -> float | None:
    try:
        return min(30.0, float(resp.headers["retry-after"]))
    except (KeyError, ValueError):
        return None


def from_spec(arg: str) -> OpenAIChatModel:
    """`openai:URL#MODEL[?mode=text&api_key_env=VAR]` → a model (see `agentgym.models.registry`)."""
    import os
    from urllib.parse import parse_qs

    url, _, rest = arg.partition("#")
    model, _, query = rest.partition("?")
    if not url or not model:
        raise ValueError("an OpenAI-compatible model is openai:<base url>#<model>[?mode=text|native]")
    q = {k: v[-1] for k, v in parse_qs(query).items()}
    key = os.environ.get(q["api_key_env"]) if "api_key_env" in q else os.environ.get("OPENAI_API_KEY")
    return OpenAIChatModel(
        url, model, api_key=key, mode=q.get("mode", "native"), tool_format=q.get("format", "hermes")
    )  # type: ignore[arg-type]


_LOCAL_KEYS = ("token_ids", "logprobs")


def _wire(m: dict[str, Any]) -> dict[str, Any]:
    """A message as the server takes it: the sampled ids a policy keeps for local models stay home."""
    return {k: v for k, v in m.items() if k not in _LOCAL_KEYS} if any(k in m for k in _LOCAL_KEYS) else m
