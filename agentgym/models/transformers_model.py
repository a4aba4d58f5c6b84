"""TransformersChatModel: any local causal LM through Hugging Face transformers, on CPU or GPU.

The prompt is the model's own chat template with `tools` passed through; when that template
ignores tools (rendering with and without them gives the same text), the bundled ChatML-with-tools
template (`templates/chatml_tools.jinja`, hermes-style calls) is used instead, so tool schemas
always reach the model. Generation records the sampled token ids and their log-probabilities under
the sampling distribution (temperature and top-p applied), straight from `generate`. One
generation runs at a time per model (a lock), in a worker thread so the event loop stays free.
"""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from typing import Any

import torch

from agentgym.models.base import Completion, SamplingParams
from agentgym.parsing import parse_turn

TEMPLATES = Path(__file__).parent / "templates"


def bundled_template(name: str = "chatml_tools") -> str:
    return (TEMPLATES / f"{name}.jinja").read_text(encoding="utf-8")


class TransformersChatModel:
    """See module doc."""

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        name: str,
        tool_format: str = "hermes",
        chat_template: str | None = None,
        threads: int | None = None,
    ) -> None:
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.name = name
        self.tool_format = tool_format
        self._lock = threading.Lock()
        if threads:
            torch.set_num_threads(threads)
        self.chat_template = chat_template or self._pick_template()

    @classmethod
    def from_pretrained(
        cls,
        path: str | Path,
        *,
        name: str | None = None,
        dtype: torch.dtype = torch.float32,
        device: str | None = None,
        **kw: Any,
    ) -> TransformersChatModel:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        p = Path(path)
        if not p.exists():
            raise FileNotFoundError(
                f"no model at {p} (agentgym loads local models only; nothing is downloaded)"
            )
        tok = AutoTokenizer.from_pretrained(p)
        model = AutoModelForCausalLM.from_pretrained(p, dtype=dtype)
        if device:
            model = model.to(device)
        return cls(model, tok, name=name or p.name, **kw)

    def _pick_template(self) -> str | None:
        own = getattr(self.tokenizer, "chat_template", None)
        if not own:
            return bundled_template()
        probe = [{"role": "user", "content": "hi"}]
        tool = {
            "type": "function",
            "function": {
                "name": "probe_tool",
                "description": "d",
                "parameters": {"type": "object", "properties": {}},
            },
        }
        try:
            a = self.tokenizer.apply_chat_template(
                probe, tools=[tool], tokenize=False, add_generation_prompt=True
            )
            b = self.tokenizer.apply_chat_template(probe, tokenize=False, add_generation_prompt=True)
        except Exception:
            return bundled_template()
        return None if a != b else bundled_template()

    def render(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None) -> str:
        """The prompt text the model will continue."""
        return self.tokenizer.apply_chat_template(
            [_plain(m) for m in messages],
            tools=tools or None,
            tokenize=False,
            add_generation_prompt=True,
            chat_template=self.chat_template,
        )

    async def generate(
        self,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]] | None = None,
        sampling: SamplingParams | None = None,
    ) -> Completion:
        return await asyncio.to_thread(self.generate_sync, messages, tools, sampling or SamplingParams())

    def generate_sync(
        self, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None, sampling: SamplingParams
    ) -> Completion:
        prompt = self.render(messages, tools)
        enc = self.tokenizer(prompt, return_tensors="pt", add_special_tokens=False)
        enc = {k: v.to(self.model.device) for k, v in enc.items()}
        n_prompt = enc["input_ids"].shape[1]
        greedy = sampling.temperature == 0
        kwargs: dict[str, Any] = dict(
            max_new_tokens=sampling.max_new_tokens,
            do_sample=not greedy,
            output_scores=True,
            return_dict_in_generate=True,
            pad_token_id=self.tokenizer.pad_token_id or self.tokenizer.eos_token_id,
        )
        if not greedy:
            kwargs.update(temperature=sampling.temperature, top_p=sampling.top_p, top_k=0)
        else:
            kwargs.update(temperature=None, top_p=None, top_k=None)
        with self._lock:
            if sampling.seed is not None:
                torch.manual_seed(sampling.seed)
            t0 = time.perf_counter()
            with torch.inference_mode():
                out = self.model.generate(**enc, **kwargs)
                scores = self.model.compute_transition_scores(
                    out.sequences, out.scores, normalize_logits=True
                )
            gen_ms = (time.perf_counter() - t0) * 1000
        ids = out.sequences[0, n_prompt:].tolist()
        lps = scores[0].tolist()[: len(ids)]
        eos = _eos_ids(self.tokenizer, self.model)
        stopped = bool(ids) and ids[-1] in eos
        text = self.tokenizer.decode(ids[:-1] if stopped else ids, skip_special_tokens=False)
        return Completion(
            text=text,
            tool_calls=parse_turn(text, self.tool_format).calls,
            token_ids=ids,
            logprobs=lps,
            prompt_tokens=n_prompt,
            finish_reason="stop" if stopped else "length",
            gen_ms=gen_ms,
            model=self.name,
        )


def _eos_ids(tokenizer: Any, model: Any) -> set[int]:
    ids = set()
    cfg = getattr(model, "generation_config", None)
    e = getattr(cfg, "eos_token_id", None) if cfg is not None else None
    for v in e if isinstance(e, list) else [e]:
        if v is not None:
            ids.add(int(v))
    if tokenizer.eos_token_id is not None:
        ids.add(int(tokenizer.eos_token_id))
    return ids


def _plain(m: dict[str, Any]) -> dict[str, Any]:
    """A message as chat templates expect (no None fields; tool-call arguments as objects where JSON)."""
    out = {k: v for k, v in m.items() if v is not None and k not in ("token_ids", "logprobs")}
    out.setdefault("content", "")
    return out
