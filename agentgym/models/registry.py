"""Model specs → ChatModel instances, by registry.

A spec is `embedded` (the default model), `hf:<path>` or a bare path to a local transformers
checkpoint, `vllm:<path>` for vLLM's offline engine (GPU, optional extra),
`vllm-server:<base url>#<tokenizer folder | embedded>[?model=<name>]` for a vLLM server driven with
token ids (token-exact, LoRA adapters), or `openai:<base url>#<model>[?mode=text]` for any
OpenAI-compatible server. New backends register a prefix in `BACKENDS`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from agentgym.models.base import ChatModel

BACKENDS: dict[str, Callable[[str], ChatModel]] = {}


def backend(prefix: str) -> Callable[[Callable[[str], ChatModel]], Callable[[str], ChatModel]]:
    def deco(f: Callable[[str], ChatModel]) -> Callable[[str], ChatModel]:
        BACKENDS[prefix] = f
        return f

    return deco


@backend("embedded")
def _embedded(arg: str) -> ChatModel:
    from agentgym.models import embedded

    return embedded.load()


@backend("openai")
def _openai(arg: str) -> ChatModel:
    from agentgym.models.openai_compat import from_spec

    return from_spec(arg)


@backend("vllm")
def _vllm(arg: str) -> ChatModel:
    from agentgym.models.vllm_engine import VLLMChatModel

    return VLLMChatModel.from_pretrained(arg)


@backend("vllm-server")
def _vllm_server(arg: str) -> ChatModel:
    from agentgym.models.vllm_server import from_spec

    return from_spec(arg)


@backend("hf")
def _hf(arg: str) -> ChatModel:
    from agentgym.models.transformers_model import TransformersChatModel

    return TransformersChatModel.from_pretrained(arg)


def load_model(spec: str = "embedded", **kw: Any) -> ChatModel:
    """The model a spec names (see module doc)."""
    prefix, _, arg = spec.partition(":")
    if prefix in BACKENDS:
        return BACKENDS[prefix](arg)
    if Path(spec).exists():
        return BACKENDS["hf"](spec)
    raise ValueError(
        f"unknown model {spec!r}: use 'embedded', 'hf:<path>', 'openai:<url>#<model>', "
        f"'vllm-server:<url>#<tokenizer>' or a local path; "
        f"registered backends: {sorted(BACKENDS)}"
    )
