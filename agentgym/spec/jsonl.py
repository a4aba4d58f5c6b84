"""Typed JSONL: read and write sequences of records, one JSON object per line.

`write_jsonl` writes (or appends) a batch and fsyncs it before returning; `read_jsonl` validates
each line into the given model and names the file and line on a bad one. Gzip (`.jsonl.gz`) is
read and written transparently.

`JsonlAppender` appends one record at a time with group commit, for stores that take a line per
finished episode (the trajectory store of `agentgym.runner`). Each `append` writes its whole line
to the file with one `write` before returning, so other readers see it at once and a crash of our
process — even SIGKILL — loses nothing appended. Making it survive a crash of the machine (power
loss, kernel panic) takes an fsync, and one per line costs too much at a thousand episodes in
flight; so a background flusher fsyncs the lines appended since its last fsync, once
`sync_interval_s` (50 ms) has passed since then or as soon as `sync_every` (64) lines wait,
whichever comes first, and `close()` always fsyncs what is left. What a machine crash can lose is
therefore the lines appended since the last completed fsync: at most about `sync_interval_s` plus
one fsync's duration worth of lines (and never more than `sync_every` plus those appended during
that fsync). A lost or torn last line is what a resumed run already handles: the trajectory store
drops a partial tail and runs those episodes again (`agentgym.runner._repair_tail`,
`finished_keys`).
"""

from __future__ import annotations

import gzip
import io
import math
import os
import threading
import time
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
    """Append records one at a time: each line written at once, fsynced in groups (module doc)."""

    def __init__(
        self, path: str | os.PathLike[str], *, sync_interval_s: float = 0.05, sync_every: int = 64
    ) -> None:
        if sync_interval_s <= 0 or sync_every < 1:
            raise ValueError("sync_interval_s must be > 0 and sync_every >= 1")
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.sync_interval_s = sync_interval_s
        self.sync_every = sync_every
        # Unbuffered, append-only: one write per line, no bytes waiting in our memory.
        self._f = open(self.path, "ab", buffering=0)  # noqa: SIM115  (held open across appends; closed by close())
        self._cond = threading.Condition()
        self._unsynced = 0  # lines written since the last fsync began
        self._syncing = False
        self._closed = False
        self._last_sync = -math.inf  # the first line after a quiet spell is fsynced at once
        self._flusher: threading.Thread | None = None
        self._error: OSError | None = None  # a failed background fsync, raised by the next append or close

    def append(self, record: BaseModel) -> None:
        """Write one record's line to the file (visible to readers when this returns)."""
        line = memoryview((record.model_dump_json() + "\n").encode())
        with self._cond:
            if self._closed:
                raise ValueError(f"{self.path}: append to a closed JsonlAppender")
            if self._error is not None:
                raise self._error
            while line:
                line = line[self._f.write(line) :]
            self._unsynced += 1
            if self._flusher is None:
                self._flusher = threading.Thread(target=self._flush_loop, name="jsonl-fsync", daemon=True)
                self._flusher.start()
            if self._unsynced in (1, self.sync_every):
                self._cond.notify_all()

    def _flush_loop(self) -> None:
        """The background flusher: fsync what waits, at most every `sync_interval_s` (or `sync_every` lines)."""
        cond = self._cond
        while True:
            with cond:
                while not self._closed and self._unsynced == 0:
                    cond.wait()
                due = self._last_sync + self.sync_interval_s
                while not self._closed and self._unsynced < self.sync_every:
                    left = due - time.monotonic()
                    if left <= 0:
                        break
                    cond.wait(left)
                if self._closed:
                    return
                self._unsynced, self._syncing = 0, True
            try:
                os.fsync(self._f.fileno())  # outside the lock: appends go on meanwhile
            except OSError as e:
                self._error = e
            with cond:
                self._syncing, self._last_sync = False, time.monotonic()
                cond.notify_all()
                if self._error is not None:
                    return

    def close(self) -> None:
        """Stop the flusher, fsync whatever it had not, close the file. Safe to call twice."""
        with self._cond:
            if self._closed:
                return
            self._closed = True
            self._cond.notify_all()
            while self._syncing:
                self._cond.wait()
        if self._flusher is not None:
            self._flusher.join()
        try:
            if self._error is not None:
                raise self._error
            if self._unsynced:
                os.fsync(self._f.fileno())
        finally:
            self._f.close()

    def __enter__(self) -> JsonlAppender:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
