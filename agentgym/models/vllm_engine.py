"""VLLMChatModel: vLLM's offline engine (`vllm.LLM`) behind the ChatModel protocol (GPU, optional).

Same prompts as `TransformersChatModel` — its chat template choice, and token-exact prompts from
`agentgym.models.tokens` (sampled ids spliced in, never re-tokenised) — but the engine gets the
ids as `TokensPrompt`s and does its own continuous batching: every waiting request goes to one
`LLM.generate` call with its own `SamplingParams`. Per token, the sampled id and its log-probability
come straight from vLLM's `CompletionOutput` (`token_ids`, `logprobs`); the engine is built with
`logprobs_mode="processed_logprobs"`, so the log-probabilities are under the sampling distribution
(temperature and top-p applied), as the transformers backend records them.

Spec: `vllm:<local checkpoint path>`. vLLM is an optional extra (`pip install agentgym[vllm]`) and
needs a GPU; without it `load_model("vllm:...")` is a clear error. Weight sync for training
(`load_weights`) and LoRA adapters (`lora=` per model) are the trainer's business (issue 8).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from agentgym.models.base import Completion
from agentgym.models.transformers_model import TransformersChatModel, _Request
from agentgym.parsing import parse_turn


class VLLMUnavailable(RuntimeError):
    """vLLM is not installed (or cannot start here)."""


class VLLMChatModel(TransformersChatModel):
    """See module doc."""

    def __init__(self, llm: Any, tokenizer: Any, *, name: str, max_batch: int = 256, **kw: Any) -> None:
        self.llm = llm
        super().__init__(_NoModel(), tokenizer, name=name, max_batch=max_batch, **kw)

    @classmethod
    def from_pretrained(cls, path: str | Path, *, name: str | None = None, **engine: Any) -> VLLMChatModel:
        try:
            import vllm
        except ImportError as e:
            raise VLLMUnavailable(
                "the vllm backend needs vLLM and a GPU: pip install 'agentgym[vllm]'"
            ) from e
        from transformers import AutoTokenizer

        p = Path(path)
        if not p.exists():
            raise FileNotFoundError(f"no model at {p} (agentgym loads local models only)")
        engine.setdefault("logprobs_mode", "processed_logprobs")
        llm = vllm.LLM(model=str(p), **engine)
        return cls(llm, AutoTokenizer.from_pretrained(p), name=name or p.name)

    def _run(self, batch: list[_Request]) -> list[Completion]:
        from vllm import SamplingParams as VSampling
        from vllm.inputs import TokensPrompt

        prompts = [TokensPrompt(prompt_token_ids=r.ids) for r in batch]
        params = [
            VSampling(
                temperature=r.sampling.temperature,
                top_p=r.sampling.top_p,
                max_tokens=r.sampling.max_new_tokens,
                seed=r.sampling.seed,
                logprobs=0,  # the sampled token's own log-probability
                skip_special_tokens=False,
            )
            for r in batch
        ]
        outs = self.llm.generate(prompts, params, use_tqdm=False)
        self.batches.append(len(batch))
        return [self._completion(r, o) for r, o in zip(batch, outs, strict=True)]

    def _decode(self, pending: list[_Request], deliver: Any, more: Any = None) -> None:
        """One `LLM.generate` over the waiting requests: vLLM batches continuously inside it."""
        batch = [r for r in pending if not r.future.cancelled()]
        if not batch:
            return
        try:
            outs = self._run(batch)
        except BaseException as e:
            for r in batch:
                deliver(r, exc=e)
            return
        for r, c in zip(batch, outs, strict=True):
            deliver(r, c)

    def _completion(self, r: _Request, out: Any) -> Completion:
        o = out.outputs[0]
        ids = list(o.token_ids)
        lps = [float(step[t].logprob) for t, step in zip(ids, o.logprobs or [], strict=False)]
        stopped = bool(ids) and ids[-1] in self._eos
        text = self.decode(ids[:-1] if stopped else ids)
        metrics = getattr(out, "metrics", None)
        gen_ms = 0.0
        if (
            metrics is not None
            and getattr(metrics, "finished_time", None)
            and getattr(metrics, "arrival_time", None)
        ):
            gen_ms = (metrics.finished_time - metrics.arrival_time) * 1000
        return Completion(
            text=text,
            tool_calls=parse_turn(text, self.tool_format).calls,
            token_ids=ids,
            logprobs=lps if len(lps) == len(ids) else None,
            prompt_tokens=len(r.ids),
            finish_reason="stop" if stopped else (o.finish_reason or "length"),
            gen_ms=gen_ms,
            model=self.name,
        )


class _NoModel:
    """Stands in for the torch module the transformers backend holds; vLLM owns the weights."""

    generation_config = None
    device = "cpu"

    def eval(self) -> _NoModel:
        return self
