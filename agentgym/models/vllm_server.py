"""VLLMServerModel: generation through a vLLM OpenAI-compatible server, token-exact, as a `ChatModel`.

The prompt is built here, never on the server: `ChatPrompts` (the model's own tokenizer and the
chat template `TransformersChatModel` would pick) assembles the token-exact ids of the
conversation (`agentgym.models.tokens`: earlier sampled turns spliced in verbatim), and
`POST /v1/completions` gets them as `prompt` (a list of ids) with `return_tokens_as_token_ids`, so
the sampled ids come back as `token_id:<n>` strings and their log-probabilities as
`logprobs.token_logprobs`. The text is decoded here from those ids; nothing is re-tokenised. The
end tokens go as `stop_token_ids`; a turn that ends on one keeps it in `token_ids`, as the local
backends do. For log-probabilities under the sampling distribution (temperature and top-p applied,
as the local backends record them), start vLLM with `--logprobs-mode processed_logprobs`.

LoRA adapters (a vLLM started with `--enable-lora` and `VLLM_ALLOW_RUNTIME_LORA_UPDATING=True`):
`await load_lora(name, path)` posts `/v1/load_lora_adapter`, `await unload_lora(name)`
`/v1/unload_lora_adapter`; `adapter` is the name requests are sent to (vLLM selects a loaded
adapter by the request's `model`), None for the base model. `agentgym.train.sync` drives these
after each optimizer step. `agentgym serve model` implements the same endpoints over a local model.

HTTP is `OpenAIChatModel`'s: many requests in flight (`max_concurrency`), retries with backoff,
time-outs, and every failure one `ModelServerError` (`connect` when nothing listens, `not_found`
for an unknown model or adapter, `bad_request` with the server's message, ...).

Spec: `vllm-server:<base url>#<tokenizer folder | embedded>[?model=<served name>]`; without
`model`, the base model is read from `GET /v1/models` on the first request.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx

from agentgym.models.base import Completion, SamplingParams
from agentgym.models.openai_compat import ModelServerError, OpenAIChatModel
from agentgym.models.transformers_model import ChatPrompts
from agentgym.parsing import parse_turn

TOKEN_PREFIX = "token_id:"


class VLLMServerModel(OpenAIChatModel):
    """See module doc."""

    def __init__(
        self,
        base_url: str,
        prompts: ChatPrompts,
        *,
        model: str | None = None,
        tool_format: str | None = None,
        **http: Any,
    ) -> None:
        """`prompts` is the tokenizer and template to build ids with (a `TransformersChatModel` —
        the trainer's own — is one); `model` the server's name for the base model (None: ask it);
        `tool_format` defaults to the prompts' own; `http` goes to `OpenAIChatModel` (timeout_s,
        max_retries, max_concurrency, transport, ...)."""
        fmt = tool_format or getattr(prompts, "tool_format", "hermes")
        super().__init__(base_url, model or "", mode="text", tool_format=fmt, **http)
        self.prompts = prompts
        self.adapter: str | None = None
        """The LoRA adapter requests go to (the request's `model`); None: the base model."""
        self.name = f"vllm-server:{model}" if model else f"vllm-server:{self.base_url}"

    # -- generation -----------------------------------------------------------------------------

    async def generate(
        self,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]] | None = None,
        sampling: SamplingParams | None = None,
    ) -> Completion:
        s = sampling or SamplingParams()
        ids = self.prompts.sequence(messages, tools, add_generation_prompt=True).ids
        t0 = time.perf_counter()
        async with self._sem:
            body = {
                "model": self.adapter or await self.base_model(),
                "prompt": ids,
                "max_tokens": s.max_new_tokens,
                "temperature": s.temperature,
                "top_p": s.top_p,
                "logprobs": 1,
                "return_tokens_as_token_ids": True,
                "skip_special_tokens": False,
                "stop_token_ids": sorted(self.prompts.eos_ids),
                **self.extra_body,
            }
            if s.seed is not None:
                body["seed"] = s.seed
            data = await self._post(body, "/completions")
        token_ids, logprobs, finish = _sampled(data)
        stopped = bool(token_ids) and token_ids[-1] in self.prompts.eos_ids
        text = self.prompts.decode(token_ids[:-1] if stopped else token_ids)
        return Completion(
            text=text,
            tool_calls=parse_turn(text, self.tool_format).calls,
            token_ids=token_ids,
            logprobs=logprobs,
            prompt_tokens=len(ids),
            finish_reason="stop" if stopped else (finish or "length"),
            gen_ms=(time.perf_counter() - t0) * 1000,
            model=self.adapter or self.model,
        )

    async def base_model(self) -> str:
        """The server's name for the base model: given, or the one model `GET /v1/models` lists
        without a parent (vLLM lists each loaded adapter with its base as `parent`)."""
        if self.model:
            return self.model
        c = self._http()
        try:
            resp = await self._clients[c].get("/models")
        except httpx.ConnectError as e:
            raise ModelServerError("connect", f"cannot connect to {self.base_url}: {e}") from None
        except httpx.TimeoutException:
            raise ModelServerError("timeout", f"GET /models: no answer in {self.timeout_s:g} s") from None
        except httpx.HTTPError as e:
            raise ModelServerError("server", f"GET /models: {type(e).__name__}: {e}") from None
        if resp.status_code != 200:
            raise ModelServerError("bad_request", f"GET /models: HTTP {resp.status_code}: {resp.text[:200]}")
        try:
            bases = [m["id"] for m in resp.json()["data"] if not m.get("parent")]
        except (ValueError, KeyError, TypeError):
            raise ModelServerError(
                "protocol", f"GET /models: not a model list: {resp.text[:200]!r}"
            ) from None
        if len(bases) != 1:
            raise ModelServerError(
                "protocol", f"{self.base_url} serves {len(bases)} base models {bases}; name one (?model=)"
            )
        self.model = bases[0]
        return self.model

    # -- LoRA adapters --------------------------------------------------------------------------

    async def load_lora(self, name: str, path: str | Path) -> None:
        """Load the peft adapter saved in `path` (a folder the server can read) as `name`."""
        await self._send("/load_lora_adapter", {"lora_name": name, "lora_path": str(Path(path).resolve())})

    async def unload_lora(self, name: str) -> None:
        """Unload an adapter; requests go to the base model again if it was the current one."""
        await self._send("/unload_lora_adapter", {"lora_name": name})
        if self.adapter == name:
            self.adapter = None


def _sampled(data: dict[str, Any]) -> tuple[list[int], list[float], str | None]:
    """The sampled ids, their log-probabilities and the finish reason of a completions answer."""
    try:
        choice = data["choices"][0]
        lp = choice["logprobs"]
        tokens, logprobs = lp["tokens"], lp["token_logprobs"]
    except (KeyError, IndexError, TypeError):
        raise ModelServerError(
            "protocol", f"no choices with logprobs in the answer: {str(data)[:200]}"
        ) from None
    if len(tokens) != len(logprobs) or any(v is None for v in logprobs):
        raise ModelServerError("protocol", "tokens and token_logprobs do not pair up")
    bad = [t for t in tokens if not (isinstance(t, str) and t.startswith(TOKEN_PREFIX))]
    if bad:
        raise ModelServerError(
            "protocol",
            f"tokens are not {TOKEN_PREFIX}<id> (does the server honour return_tokens_as_token_ids?): {bad[:3]}",
        )
    return (
        [int(t[len(TOKEN_PREFIX) :]) for t in tokens],
        [float(v) for v in logprobs],
        choice.get("finish_reason"),
    )


def from_spec(arg: str) -> VLLMServerModel:
    """`vllm-server:URL#TOKENIZER[?model=NAME]` → a model (see module doc)."""
    from urllib.parse import parse_qs

    url, _, rest = arg.partition("#")
    tokenizer, _, query = rest.partition("?")
    if not url or not tokenizer:
        raise ValueError(
            "a vLLM server model is vllm-server:<base url>#<tokenizer folder | embedded>[?model=<name>]"
        )
    q = {k: v[-1] for k, v in parse_qs(query).items()}
    if tokenizer == "embedded":
        from agentgym.models import embedded

        tokenizer = str(embedded.prepare(log=lambda *_: None))
    return VLLMServerModel(url, ChatPrompts.from_pretrained(tokenizer), model=q.get("model"))
