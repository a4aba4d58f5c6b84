"""TransformersChatModel: any local causal LM through Hugging Face transformers, on CPU or GPU.

The prompt is the model's own chat template with `tools` passed through; when that template
ignores tools (rendering with and without them gives the same text), the bundled ChatML-with-tools
template (`templates/chatml_tools.jinja`, hermes-style calls) is used instead, so tool schemas
always reach the model.

Prompts are token-exact (`agentgym.models.tokens`): the model's earlier turns, when their
messages carry the `token_ids` it sampled, are spliced in verbatim instead of re-tokenised, and
`sequence(messages, tools)` gives the trainer the same ids with the loss mask. Generation records
the sampled ids and their log-probabilities under the sampling distribution (temperature and
top-p applied), straight from `generate`.

`ChatPrompts` is the part that needs no weights (tokenizer, template choice, rendering, token-exact
sequences, end tokens); the model extends it, and a client of a remote engine uses it alone
(`agentgym.models.vllm_server`). `generate_ids` continues raw prompt ids (a completions endpoint).
Served models can carry peft LoRA adapters (`load_adapter` / `unload_adapter`); a request names
the adapter it wants, and the worker switches adapters only between batches.

Concurrent `generate` calls are batched: a worker thread takes up to `max_batch` waiting requests
with the same sampling settings (waiting at most `batch_wait_ms` for company), left-pads them and
runs one `generate`; each row is cut at its first end token. Requests for different adapters never
share a batch. Seeded requests run alone, so a seed reproduces its sample. The event loop never
blocks on the model. When a batch's prompts are identical (the G episodes of a GRPO group start
alike), the prompt runs once at batch 1 and its key/value cache is repeated across the rows
(`SHARED_PREFILL_MIN`), so prefill costs one prompt, not G.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import contextlib
import queue
import threading
import time
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from agentgym.models.base import Completion, SamplingParams
from agentgym.models.tokens import TokenSequence, assemble
from agentgym.parsing import parse_turn

TEMPLATES = Path(__file__).parent / "templates"
SHARED_PREFILL_MIN = 16
"""Identical prompts at least this long are prefilled once per batch, not once per row."""


def bundled_template(name: str = "chatml_tools") -> str:
    return (TEMPLATES / f"{name}.jinja").read_text(encoding="utf-8")


@dataclass(slots=True)
class _Request:
    ids: list[int]
    sampling: SamplingParams
    adapter: str | None = None
    """The LoRA adapter to generate with (None: the base weights)."""
    future: concurrent.futures.Future = field(default_factory=concurrent.futures.Future)

    @property
    def key(self) -> tuple:
        s = self.sampling
        seeded = id(self) if s.seed is not None else 0
        return (s.temperature, s.top_p, s.max_new_tokens, s.seed, seeded, self.adapter)


class ChatPrompts:
    """A tokenizer and the chat template it is prompted with: renders conversations and makes their
    token-exact sequences. Needs no weights, so a client of a remote engine builds exactly the ids a
    local model would (`agentgym.models.vllm_server`)."""

    def __init__(self, tokenizer: Any, *, eos_ids: set[int], chat_template: str | None = None) -> None:
        self.tokenizer = tokenizer
        self.chat_template = chat_template or self._pick_template()
        self._pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        self._eos = eos_ids

    @classmethod
    def from_pretrained(cls, path: str | Path, *, chat_template: str | None = None) -> ChatPrompts:
        """The tokenizer, template and end tokens of a local checkpoint (no weights are read)."""
        from transformers import AutoTokenizer, GenerationConfig

        p = Path(path)
        if not p.exists():
            raise FileNotFoundError(f"no tokenizer at {p} (agentgym loads local files only)")
        tok = AutoTokenizer.from_pretrained(p)
        gen = GenerationConfig.from_pretrained(p) if (p / "generation_config.json").exists() else None
        return cls(tok, eos_ids=_eos_ids(tok, gen), chat_template=chat_template)

    @property
    def eos_ids(self) -> frozenset[int]:
        """The ids that end a turn (the tokenizer's and the generation config's end tokens)."""
        return frozenset(self._eos)

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

    def render(
        self,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]] | None = None,
        add_generation_prompt: bool = True,
    ) -> str:
        """The template's text for `messages` (by default, the prompt the model will continue)."""
        return self.tokenizer.apply_chat_template(
            [_plain(m) for m in messages],
            tools=tools or None,
            tokenize=False,
            add_generation_prompt=add_generation_prompt,
            chat_template=self.chat_template,
        )

    def encode(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"] if text else []

    def decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=False)

    def sequence(
        self,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]] | None = None,
        add_generation_prompt: bool = False,
    ) -> TokenSequence:
        """The token-exact sequence of a conversation with its loss mask (`agentgym.models.tokens`)."""
        return assemble(
            messages,
            render=lambda ms, gen: self.render(ms, tools, gen),
            encode=self.encode,
            decode=self.decode,
            add_generation_prompt=add_generation_prompt,
        )


class TransformersChatModel(ChatPrompts):
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
        max_batch: int = 8,
        batch_wait_ms: float = 20.0,
    ) -> None:
        if max_batch < 1:
            raise ValueError(f"max_batch must be >= 1, got {max_batch}")
        self.model = model.eval()
        self.name = name
        self.tool_format = tool_format
        self.max_batch = max_batch
        self.batch_wait_ms = batch_wait_ms
        self._lock = threading.Lock()
        self._start_lock = threading.Lock()
        self._queue: queue.Queue[_Request] = queue.Queue()
        self._worker: threading.Thread | None = None
        self._closing = False
        # never leave torch running in a thread at interpreter exit (a weak reference: the hook
        # must not keep the model alive)
        atexit.register(_close_if_alive, weakref.ref(self))
        self.batches: list[int] = []
        """Size of every batch run so far (for benchmarks and tests)."""
        self._adapters: dict[str, str] = {}
        if threads:
            torch.set_num_threads(threads)
        super().__init__(
            tokenizer,
            eos_ids=_eos_ids(tokenizer, getattr(model, "generation_config", None)),
            chat_template=chat_template,
        )

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

    async def generate(
        self,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]] | None = None,
        sampling: SamplingParams | None = None,
    ) -> Completion:
        return await self.generate_ids(
            self.sequence(messages, tools, add_generation_prompt=True).ids, sampling
        )

    async def generate_ids(
        self, ids: list[int], sampling: SamplingParams | None = None, adapter: str | None = None
    ) -> Completion:
        """One turn continuing raw prompt ids (a completions endpoint), with a LoRA adapter loaded
        by `load_adapter` or the base weights (None)."""
        req = _Request(list(ids), sampling or SamplingParams(), adapter)
        self._ensure_worker()
        self._queue.put(req)
        return await asyncio.wrap_future(req.future)

    def generate_sync(
        self, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None, sampling: SamplingParams
    ) -> Completion:
        ids = self.sequence(messages, tools, add_generation_prompt=True).ids
        return self._run([_Request(ids, sampling)])[0]

    # -- LoRA adapters served on top of the base weights (`agentgym serve model`) ---------------

    @property
    def adapters(self) -> dict[str, str]:
        """Loaded adapters: name -> the folder each was read from."""
        return dict(self._adapters)

    def load_adapter(self, name: str, path: str | Path) -> None:
        """Load the peft LoRA adapter saved in `path` as `name`, between batches. The first one wraps
        the module in a `PeftModel`; requests pick an adapter by name (`generate_ids`)."""
        from peft import PeftModel

        with self._lock:
            if name in self._adapters:
                raise ValueError(f"the adapter {name!r} is already loaded")
            if not self._adapters and hasattr(self.model, "peft_config"):
                raise ValueError("this module already carries peft adapters (is it being trained?)")
            if self._adapters:
                self.model.load_adapter(str(path), adapter_name=name)
            else:
                self.model = PeftModel.from_pretrained(self.model, str(path), adapter_name=name).eval()
            self._adapters[name] = str(path)

    def unload_adapter(self, name: str) -> None:
        """Remove an adapter; after the last one the module is the plain base model again."""
        with self._lock:
            if name not in self._adapters:
                raise KeyError(f"no adapter {name!r} is loaded")
            del self._adapters[name]
            if self._adapters:
                self.model.delete_adapter(name)
            else:
                self.model = self.model.unload()

    def _use_adapter(self, name: str | None) -> None:
        """Make `name` (None: no adapter) the one the module runs with; under `_lock`."""
        if name is not None and name not in self._adapters:
            raise KeyError(f"no adapter {name!r} is loaded")
        if not self._adapters:
            return
        lora = self.model.base_model
        if name is None:
            lora.disable_adapter_layers()
        else:
            lora.enable_adapter_layers()
            self.model.set_adapter(name, inference_mode=True)

    # -- batching -------------------------------------------------------------------------------

    def _ensure_worker(self) -> None:
        with self._start_lock:
            if self._worker is None or not self._worker.is_alive():
                self._worker = threading.Thread(
                    target=_serve_loop,
                    args=(weakref.ref(self), self._queue),
                    name=f"generate:{self.name}",
                    daemon=True,
                )
                self._worker.start()

    def _serve_once(self, first: _Request, held: list[_Request]) -> list[_Request]:
        """Run one batch led by `first`; returns the requests left waiting."""
        batch, rest = [first], []
        for r in held:
            (batch if r.key == first.key and len(batch) < self.max_batch else rest).append(r)
        deadline = time.perf_counter() + self.batch_wait_ms / 1000
        while len(batch) < self.max_batch:
            try:
                r = self._queue.get(timeout=max(0.0, deadline - time.perf_counter()))
            except queue.Empty:
                break
            (batch if r.key == first.key else rest).append(r)
        # a caller that gave up (episode time-out, Ctrl-C) cancelled its future: skip it
        batch = [r for r in batch if not r.future.cancelled()]
        if not batch:
            return rest
        try:
            outs = self._run(batch)
        except BaseException as e:  # the callers get the error; the worker keeps serving
            for r in batch:
                _settle(r.future, exc=e)
            return rest
        for r, c in zip(batch, outs, strict=True):
            _settle(r.future, result=c)
        return rest

    def close(self) -> None:
        """Stop the batching worker (a generation in flight stops at its next token)."""
        self._closing = True
        w = self._worker
        if w is not None and w.is_alive() and w is not threading.current_thread():
            w.join(timeout=30)

    def _run(self, batch: list[_Request]) -> list[Completion]:
        """One `generate` over requests with the same sampling settings (left-padded)."""
        sampling = batch[0].sampling
        width = max(len(r.ids) for r in batch)
        input_ids = torch.full((len(batch), width), self._pad, dtype=torch.long)
        attention = torch.zeros((len(batch), width), dtype=torch.long)
        for row, r in enumerate(batch):
            input_ids[row, width - len(r.ids) :] = torch.tensor(r.ids, dtype=torch.long)
            attention[row, width - len(r.ids) :] = 1
        dev = self.model.device
        greedy = sampling.temperature == 0
        kwargs: dict[str, Any] = dict(
            max_new_tokens=sampling.max_new_tokens,
            do_sample=not greedy,
            output_scores=True,
            return_dict_in_generate=True,
            pad_token_id=self._pad,
        )
        if not greedy:
            kwargs.update(temperature=sampling.temperature, top_p=sampling.top_p, top_k=0)
        else:
            kwargs.update(temperature=None, top_p=None, top_k=None)
        with self._lock:
            self._use_adapter(batch[0].adapter)
            if sampling.seed is not None:
                torch.manual_seed(sampling.seed)
            t0 = time.perf_counter()
            with torch.inference_mode():
                input_ids, attention = input_ids.to(dev), attention.to(dev)
                cache = self._shared_prefill(batch, input_ids)
                if cache is not None:
                    kwargs["cache"] = cache
                out = self.model.generate(
                    input_ids=input_ids,
                    attention_mask=attention,
                    stopping_criteria=[_GiveUp(self, batch)],
                    **kwargs,
                )
                scores = self.model.compute_transition_scores(
                    out.sequences, out.scores, normalize_logits=True
                )
            gen_ms = (time.perf_counter() - t0) * 1000
            self.batches.append(len(batch))
        done = []
        for row, r in enumerate(batch):
            ids = out.sequences[row, width:].tolist()
            end = next((i + 1 for i, t in enumerate(ids) if t in self._eos), len(ids))
            ids = ids[:end]
            lps = scores[row].tolist()[: len(ids)]
            stopped = bool(ids) and ids[-1] in self._eos
            text = self.decode(ids[:-1] if stopped else ids)
            done.append(
                Completion(
                    text=text,
                    tool_calls=parse_turn(text, self.tool_format).calls,
                    token_ids=ids,
                    logprobs=lps,
                    prompt_tokens=len(r.ids),
                    finish_reason="stop" if stopped else "length",
                    gen_ms=gen_ms,
                    model=r.adapter or self.name,
                )
            )
        return done

    def _shared_prefill(self, batch: list[_Request], input_ids: torch.Tensor) -> Any:
        """The key/value cache of the batch's one prompt (all but its last token) at batch 1,
        repeated across the rows; None unless every row has the same prompt."""
        first = batch[0].ids
        if len(batch) < 2 or len(first) <= SHARED_PREFILL_MIN or any(r.ids != first for r in batch):
            return None
        from transformers import DynamicCache

        cache = DynamicCache(config=self.model.config)
        self.model(input_ids=input_ids[:1, :-1], cache=cache, use_cache=True, logits_to_keep=1)
        cache.batch_repeat_interleave(len(batch))
        return cache


def _serve_loop(ref: weakref.ref, q: queue.Queue) -> None:
    """The batching worker. It holds its model only weakly between batches, so a model nobody uses
    any more is freed and its worker ends."""
    held: list[_Request] = []
    while True:
        try:
            first = held.pop(0) if held else q.get(timeout=0.5)
        except queue.Empty:
            m = ref()
            if m is None or m._closing:
                return
            del m
            continue
        m = ref()
        if m is None or m._closing:
            for r in [first, *held]:
                _settle(r.future, exc=RuntimeError("the model was closed"))
            return
        held = m._serve_once(first, held)
        del m


def _close_if_alive(ref: weakref.ref) -> None:
    m = ref()
    if m is not None:
        m.close()


class _GiveUp:
    """Stops a generation early when the model is closing or every caller in the batch gave up."""

    def __init__(self, owner: TransformersChatModel, batch: list[_Request]) -> None:
        self.owner, self.batch = owner, batch

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor, **kw: Any) -> torch.Tensor:
        stop = self.owner._closing or all(r.future.cancelled() for r in self.batch)
        return torch.full((input_ids.shape[0],), stop, dtype=torch.bool, device=input_ids.device)


def _settle(fut: concurrent.futures.Future, result: Any = None, exc: BaseException | None = None) -> None:
    """Deliver a result unless the caller cancelled meanwhile."""
    if fut.done():
        return
    with contextlib.suppress(concurrent.futures.InvalidStateError):
        fut.set_exception(exc) if exc is not None else fut.set_result(result)


def _eos_ids(tokenizer: Any, generation_config: Any) -> set[int]:
    ids = set()
    e = getattr(generation_config, "eos_token_id", None) if generation_config is not None else None
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
