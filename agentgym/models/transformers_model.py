"""TransformersChatModel: any local causal LM through Hugging Face transformers, on CPU or GPU.

The prompt is the model's own chat template with `tools` passed through; when that template
ignores tools (rendering with and without them gives the same text), the bundled ChatML-with-tools
template (`templates/chatml_tools.jinja`, hermes-style calls) is used instead, so tool schemas
always reach the model.

Prompts are token-exact (`agentgym.models.tokens`): the model's earlier turns, when their
messages carry the `token_ids` it sampled, are spliced in verbatim instead of re-tokenised, and
`sequence(messages, tools)` gives the trainer the same ids with the loss mask. Generation records
the sampled ids and their log-probabilities under the sampling distribution (temperature and
top-p applied, as transformers' `generate` applies them).

`ChatPrompts` is the part that needs no weights (tokenizer, template choice, rendering, token-exact
sequences, end tokens); the model extends it, and a client of a remote engine uses it alone
(`agentgym.models.vllm_server`). `generate_ids` continues raw prompt ids (a completions endpoint).
Served models can carry peft LoRA adapters (`load_adapter` / `unload_adapter`); a request names
the adapter it wants, and the worker switches adapters only between batches.

Concurrent `generate` calls are batched continuously (`agentgym.models.decoding`): a worker
thread runs up to `max_batch` rows with the same sampling settings (waiting at most
`batch_wait_ms` for company when a batch starts); a row leaves the batch at its first end token or
its `max_new_tokens`, and its caller gets the result at once, while requests that arrive meanwhile
join between two tokens. Requests for different adapters never share a batch. Seeded requests run
alone, so a seed reproduces its sample. A caller that gives up (time-out, Ctrl-C) is dropped at the
next token. The event loop never blocks on the model.

Prefill is paid once per token, not once per turn: the keys and values of every sequence a batch
produced are kept in a byte-bounded prefix store (`agentgym.models.prefix_cache`, `prefix_cache_mb`,
0 turns it off), so an episode's next turn prefills only the environment's new tokens; a prompt
with nothing stored is prefilled once per distinct prompt at batch 1, so a GRPO group's G identical
prompts cost one. The store empties itself when the weights change (an optimizer step, a sync, an
adapter switch), so cached keys never come from an older policy.
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
from agentgym.models.decoding import DecodeBatch, Row
from agentgym.models.prefix_cache import PrefixStore, weights_version
from agentgym.models.tokens import TokenSequence, assemble
from agentgym.parsing import parse_turn

TEMPLATES = Path(__file__).parent / "templates"
SHARED_PREFILL_MIN = 16
"""Prompts longer than this with nothing stored are prefilled at batch 1, once per distinct prompt."""
PREFIX_CACHE_MB = 256
"""Default budget of the prefix store (about 5,700 tokens of SmolLM2-135M's keys and values)."""


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
        return (s.temperature, s.top_p, s.seed, seeded, self.adapter)  # max_new_tokens is per row


@dataclass(slots=True)
class _Call:
    """A function to run on the worker thread between batches (`TransformersChatModel.call`)."""

    fn: Any
    future: concurrent.futures.Future = field(default_factory=concurrent.futures.Future)

    @property
    def key(self) -> tuple:
        return (id(self),)  # never joins a batch


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
        prefix_cache_mb: float = PREFIX_CACHE_MB,
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
        self.prefix_store = PrefixStore(int(prefix_cache_mb * 2**20)) if prefix_cache_mb > 0 else None
        """Key/value caches of recent sequences (`agentgym.models.prefix_cache`); None when off."""
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

    def call(self, fn: Any) -> Any:
        """Run `fn()` on the generation worker thread, between batches, and return its result.

        Heavy torch work done next to generation belongs here (the GRPO trainer's update): on a
        CPU each thread that runs parallel torch ops gets its own OpenMP team, and with more OpenMP
        threads than cores libgomp throttles its spin-waiting, which slowed every later decode step
        of the worker by 1.6-2x (measured, `bench/RESULTS.md`). One thread, one team."""
        if threading.current_thread() is self._worker:
            return fn()
        job = _Call(fn)
        self._ensure_worker()
        self._queue.put(job)  # type: ignore[arg-type]
        return job.future.result()

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
        """Run one continuous batch led by `first` until it drains; requests with the same key join
        it whenever they arrive. Returns the requests left waiting (other keys)."""
        pending, rest = [first], []
        for r in held:
            (pending if r.key == first.key else rest).append(r)
        deadline = time.perf_counter() + self.batch_wait_ms / 1000
        while len(pending) < self.max_batch:  # wait for company only when a batch starts
            try:
                r = self._queue.get(timeout=max(0.0, deadline - time.perf_counter()))
            except queue.Empty:
                break
            (pending if r.key == first.key else rest).append(r)

        def more() -> list[_Request]:
            if first.sampling.seed is not None:  # a seeded request runs alone: its sample reproduces
                return []
            got = []
            while True:
                try:
                    r = self._queue.get_nowait()
                except queue.Empty:
                    return got
                (got if r.key == first.key else rest).append(r)

        self._decode(pending, _settle_request, more)
        return rest

    def close(self) -> None:
        """Stop the batching worker (a generation in flight stops at its next token)."""
        self._closing = True
        w = self._worker
        if w is not None and w.is_alive() and w is not threading.current_thread():
            w.join(timeout=30)

    def _run(self, batch: list[_Request]) -> list[Completion]:
        """Generate for `batch` (same key) in the calling thread; the first error is raised."""
        got: dict[int, Completion | BaseException] = {}
        self._decode(list(batch), lambda r, c=None, exc=None: got.setdefault(id(r), exc or c))
        out = [got[id(r)] for r in batch]
        for x in out:
            if isinstance(x, BaseException):
                raise x
        return out  # type: ignore[return-value]

    def _decode(self, pending: list[_Request], deliver: Any, more: Any = None) -> None:
        """The continuous-batching loop (`agentgym.models.decoding`): admits `pending` (and whatever
        `more()` returns between tokens) up to `max_batch` rows, and delivers each row's completion
        the moment it finishes. A row whose caller gave up is dropped; on close every row fails; an
        error in a step fails the rows in flight and the loop goes on with the rest."""
        first = pending[0]
        sampling = first.sampling
        with self._lock, torch.inference_mode():
            self._begin_batch()
            self._use_adapter(first.adapter)
            if sampling.seed is not None:
                torch.manual_seed(sampling.seed)
            batch = self._new_batch(sampling)
            while pending or batch.rows:
                if pending and len(batch) < self.max_batch and self.prefix_store is not None:
                    self.prefix_store.scope((first.adapter, weights_version(self.model)))
                joined = False
                while pending and len(batch) < self.max_batch:
                    r = pending.pop(0)
                    if r.future.cancelled():
                        continue
                    try:
                        batch.admit(r)
                        joined = True
                    except BaseException as e:
                        deliver(r, exc=e)
                if joined:
                    self.batches.append(len(batch))
                if self._closing:
                    for r in [*(row.request for row in batch.rows), *pending]:
                        deliver(r, exc=RuntimeError("the model was closed"))
                    return
                gone = [row for row in batch.rows if row.request.future.cancelled()]
                if gone:
                    batch.drop(gone)
                if not batch.rows:
                    continue
                try:
                    finished = batch.step()
                except BaseException as e:  # the callers in flight get the error; the loop goes on
                    for row in batch.rows:
                        deliver(row.request, exc=e)
                    batch = self._new_batch(sampling)
                    continue
                for row in finished:
                    deliver(row.request, self._row_completion(row))
                if more is not None:
                    pending.extend(more())

    def _begin_batch(self) -> None:
        """Called under the generation lock when a batch starts (it runs until it drains): a subclass
        that swaps weights between batches does it here."""

    def _new_batch(self, sampling: SamplingParams) -> DecodeBatch:
        return DecodeBatch(
            self.model,
            eos=self._eos,
            store=self.prefix_store,
            temperature=sampling.temperature,
            top_p=sampling.top_p,
            min_prefill=SHARED_PREFILL_MIN,
        )

    def _row_completion(self, row: Row) -> Completion:
        r, ids = row.request, row.tokens
        text = self.decode(ids[:-1] if row.stopped else ids)
        return Completion(
            text=text,
            tool_calls=parse_turn(text, self.tool_format).calls,
            token_ids=list(ids),
            logprobs=list(row.logprobs),
            prompt_tokens=len(r.ids),
            finish_reason="stop" if row.stopped else "length",
            gen_ms=(time.perf_counter() - row.started) * 1000,
            model=r.adapter or self.name,
        )


def _serve_loop(ref: weakref.ref, q: queue.Queue) -> None:
    """The batching worker. It holds its model only weakly between batches, and nothing of a finished
    job, so a model nobody uses any more is freed and its worker ends."""
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
        if isinstance(first, _Call):
            if first.future.set_running_or_notify_cancel():
                try:
                    first.future.set_result(first.fn())
                except BaseException as e:
                    first.future.set_exception(e)
        else:
            held = m._serve_once(first, held)
        # nothing of this job may outlive it here: a `_Call`'s function holds its caller (a GRPO
        # trainer, which holds this model), and kept while the loop waits it would keep the model,
        # its optimizer state and this thread alive for good
        del m, first


def _close_if_alive(ref: weakref.ref) -> None:
    m = ref()
    if m is not None:
        m.close()


def _settle_request(r: _Request, result: Any = None, exc: BaseException | None = None) -> None:
    _settle(r.future, result, exc)


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
