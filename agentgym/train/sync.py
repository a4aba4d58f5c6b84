"""Weight sync: after each optimizer step, the generator samples from the policy just trained.

The trainer builds one strategy by name (`make_sync(name, out=..., generator=...)`, registry
`SYNCS`) and calls it as `sync(module, version) -> None` after every optimizer step, with the
module it trains and the policy version that step made. When the call returns, every later
generation request samples from that version.

- `none`: the generator shares the trained module in process (a `TransformersChatModel` over it),
  so it already has the new weights; nothing moves.
- `vllm_lora`: the module is a peft LoRA model, the generator a `VLLMServerModel`. The adapter is
  written to `<out>/adapters/v<version>` (into a temporary folder, then renamed: the server never
  reads a half-written adapter), loaded into the server as `policy-v<version>`
  (`/v1/load_lora_adapter`), made the generator's `adapter`, and then the previous version is
  unloaded. The two newest folders stay on disk, older ones are deleted: vLLM reads a registered
  adapter's files again whenever it brings it back into its LoRA cache, so a folder must outlive
  the adapter's registration. After a restart the server may still hold the version being
  synced; it is then unloaded and loaded afresh.

- `int8`: the generator is a `TransformersChatModel` over `agentgym.models.int8.int8_sampler` of
  the trained module (`generator: local_int8`); its int8 weights are requantized from the new float
  weights in place, under the generator's lock.

Full weights into vLLM (`vllm_weights`) are not here: vLLM's HTTP weight-update endpoints
(`/init_weight_transfer_engine`, `/update_weights`, dev mode only) move tensors over NCCL or CUDA
IPC from a GPU trainer, not from saved files, and it documents no endpoint that reloads weights
from a checkpoint folder.

A sync never trains and never skips silently: a module or generator that cannot take the
strategy is a `TypeError` when it is built or called; a server error is the generator's
`ModelServerError`.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from agentgym.asyncio_bridge import run_blocking
from agentgym.models.openai_compat import ModelServerError

WeightSync = Callable[[Any, int], None]
"""`sync(trained module, policy version) -> None`."""

SYNCS: dict[str, Callable[..., WeightSync]] = {}


def strategy(name: str) -> Callable[[Callable[..., WeightSync]], Callable[..., WeightSync]]:
    def deco(f: Callable[..., WeightSync]) -> Callable[..., WeightSync]:
        SYNCS[name] = f
        return f

    return deco


def make_sync(name: str, *, out: str | Path, generator: Any) -> WeightSync:
    """The strategy `name` for a run writing under `out`, feeding `generator` (see module doc)."""
    if name not in SYNCS:
        raise ValueError(f"unknown weight sync {name!r}; known: {sorted(SYNCS)}")
    return SYNCS[name](out=Path(out), generator=generator)


@strategy("none")
def _none(*, out: Path, generator: Any) -> WeightSync:
    def sync(module: Any, version: int) -> None:
        return None

    return sync


@strategy("vllm_lora")
def _vllm_lora(*, out: Path, generator: Any) -> WeightSync:
    return LoraSync(out / "adapters", generator)


@strategy("int8")
def _int8(*, out: Path, generator: Any) -> WeightSync:
    from agentgym.models.int8 import Int8Linear, refresh

    model = getattr(generator, "model", None)
    if model is None or not any(isinstance(m, Int8Linear) for m in model.modules()):
        raise TypeError(f"sync: int8 needs a generator over an int8 sampler, not {type(generator).__name__}")

    def sync(module: Any, version: int) -> None:
        with generator._lock:
            refresh(model)

    return sync


class LoraSync:
    """`vllm_lora` (module doc)."""

    prefix = "policy-v"
    keep_on_disk = 2

    def __init__(self, root: Path, generator: Any) -> None:
        if not all(hasattr(generator, a) for a in ("load_lora", "unload_lora", "adapter")):
            raise TypeError(
                f"vllm_lora needs a generator with LoRA endpoints (a VLLMServerModel), not {type(generator).__name__}"
            )
        self.root = root
        self.generator = generator
        self.loaded: str | None = None
        """The adapter name this sync last loaded (the generator's current one)."""

    def __call__(self, module: Any, version: int) -> None:
        if not hasattr(module, "peft_config"):
            raise TypeError("vllm_lora syncs a peft LoRA module: train with `lora:` set, or use sync: none")
        path = self.save(module, version)
        run_blocking(self._swap(f"{self.prefix}{version}", path))
        self._prune()

    def save(self, module: Any, version: int) -> Path:
        """Write the active adapter to `<root>/v<version>` atomically; returns the folder."""
        self.root.mkdir(parents=True, exist_ok=True)
        final, tmp = self.root / f"v{version}", self.root / f".v{version}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        active = module.active_adapter
        module.save_pretrained(tmp, selected_adapters=[active])
        saved = tmp if active == "default" else tmp / active  # peft nests non-default adapters
        shutil.rmtree(final, ignore_errors=True)
        saved.rename(final)
        shutil.rmtree(tmp, ignore_errors=True)
        return final

    async def _swap(self, name: str, path: Path) -> None:
        g = self.generator
        try:
            await g.load_lora(name, path)
        except ModelServerError as e:
            if e.kind != "bad_request" or "already" not in e.message:
                raise
            await g.unload_lora(name)  # left over from before a restart
            await g.load_lora(name, path)
        previous, self.loaded = self.loaded, name
        g.adapter = name
        if previous is not None and previous != name:
            await g.unload_lora(previous)

    def _prune(self) -> None:
        versions = sorted(
            (int(p.name[1:]), p) for p in self.root.glob("v*") if p.is_dir() and p.name[1:].isdigit()
        )
        for _, p in versions[: -self.keep_on_disk]:
            shutil.rmtree(p, ignore_errors=True)
