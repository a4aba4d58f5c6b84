"""Typed JSONL: read and write sequences of records, one JSON object per line.

`write_jsonl` appends with an fsync per flush so a crash loses nothing already written;
`read_jsonl` validates each line into the given model and names the file and line on a bad one.
Gzip (`.jsonl.gz`) is read and written transparently.
"""

from __future__ import annotations

import gzip
import io
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, TypeVar

from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)


class JsonlError(ValueError):
    """A line of a JSONL file is not a valid record."""


def _open(path: Path, mode: str) -> IO[str]:
    if path.suffix == ".gz":
        if mode == "r":
            return gzip.open(path, "rt", encoding="utf-8")  # type: ignore[return-value]
        # mtime=0: the same records give the same bytes, so regenerated files diff cleanly in git
        return io.TextIOWrapper(gzip.GzipFile(path, mode + "b", mtime=0), encoding="utf-8")
    return open(path, mode, encoding="utf-8")


def read_jsonl(path: str | os.PathLike[str], model: type[M]) -> Iterator[M]:
    """Yield records of `model` from `path`; blank lines are skipped."""
    p = Path(path)
    with _open(p, "r") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                yield model.model_validate_json(line)
            except ValidationError as e:
                raise JsonlError(f"{p}:{lineno}: not a valid {model.__name__}: {e}") from e


def write_jsonl(path: str | os.PathLike[str], records: Iterable[BaseModel], *, append: bool = False) -> int:
    """Write records to `path` (append when asked); returns how many were written."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    with _open(p, "a" if append else "w") as f:
        for r in records:
            f.write(r.model_dump_json(exclude_defaults=False) + "\n")
            n += 1
        f.flush()
        if p.suffix != ".gz":
            os.fsync(f.fileno())
    return n


class JsonlAppender:
    """Append records one at a time, each durable (flushed and fsynced) before `append` returns."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._f = open(self.path, "a", encoding="utf-8")  # noqa: SIM115  (held open across appends; closed by close())

    def append(self, record: BaseModel) -> None:
        self._f.write(record.model_dump_json() + "\n")
        self._f.flush()
        os.fsync(self._f.fileno())

    def close(self) -> None:
        self._f.close()

    def __enter__(self) -> JsonlAppender:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
