"""`JsonlAppender`'s group commit: every line is in the file when `append` returns, fsyncs are shared
by many lines (a background flusher, at most every `sync_interval_s` or `sync_every` lines), and
`close()` always fsyncs what is left."""

from __future__ import annotations

import os
import threading
import time

import pytest

from agentgym.spec import AgentSpec, JsonlAppender, read_jsonl


def agent(i: int) -> AgentSpec:
    return AgentSpec(id=f"agent_{i}", name=f"Agent {i}", system_prompt="You help.", tools=("weather__get",))


@pytest.fixture
def fsyncs(monkeypatch) -> list[tuple[float, int]]:
    """Every os.fsync call as (time, fd); the real fsync still runs."""
    calls: list[tuple[float, int]] = []
    real = os.fsync
    lock = threading.Lock()

    def counting(fd: int) -> None:
        with lock:
            calls.append((time.monotonic(), fd))
        real(fd)

    monkeypatch.setattr(os, "fsync", counting)
    return calls


def test_many_appends_share_few_fsyncs_and_every_line_is_there_at_once(tmp_path, fsyncs) -> None:
    p = tmp_path / "traj.jsonl"
    n = 2000
    t0 = time.monotonic()
    with JsonlAppender(p, sync_interval_s=0.05, sync_every=64) as app:
        for i in range(n):
            app.append(agent(i))
            if i % 500 == 0:  # written, not buffered: a reader sees the line right away
                assert p.read_bytes().count(b"\n") == i + 1
    elapsed = time.monotonic() - t0
    assert [a.id for a in read_jsonl(p, AgentSpec)] == [f"agent_{i}" for i in range(n)]
    # At most one fsync per 64 lines or per 50 ms (each window), plus the one at close.
    assert len(fsyncs) <= n / 64 + elapsed / 0.05 + 2
    assert len(fsyncs) < n / 10  # an fsync per line would be 2000


def test_close_fsyncs_what_the_flusher_had_not(tmp_path, fsyncs) -> None:
    p = tmp_path / "traj.jsonl"
    app = JsonlAppender(p, sync_interval_s=60, sync_every=1000)  # the flusher would wait a minute
    app.append(agent(0))  # the first line after a quiet spell is fsynced at once
    deadline = time.monotonic() + 5
    while not fsyncs and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(fsyncs) == 1
    for i in range(1, 5):
        app.append(agent(i))
    time.sleep(0.1)
    assert len(fsyncs) == 1  # within the interval: nothing fsynced yet
    app.close()
    assert len(fsyncs) == 2
    assert len(list(read_jsonl(p, AgentSpec))) == 5
    app.close()  # twice is fine
    assert len(fsyncs) == 2
    with pytest.raises(ValueError, match="closed"):
        app.append(agent(9))


def test_the_flusher_fsyncs_a_waiting_line_within_the_interval(tmp_path, fsyncs) -> None:
    p = tmp_path / "traj.jsonl"

    def wait_for(count: int) -> None:
        deadline = time.monotonic() + 5
        while len(fsyncs) < count and time.monotonic() < deadline:
            time.sleep(0.002)

    with JsonlAppender(p, sync_interval_s=0.05, sync_every=1000) as app:
        app.append(agent(0))
        wait_for(1)
        app.append(agent(1))  # right after an fsync: it waits for the next window, not for close
        wait_for(2)
        assert len(fsyncs) == 2, "the second line was not fsynced without a close"
        assert fsyncs[1][0] - fsyncs[0][0] >= 0.045  # never closer together than the interval
    assert len(fsyncs) == 2  # nothing was left to fsync at close


def test_sync_every_lines_do_not_wait_for_the_interval(tmp_path, fsyncs) -> None:
    p = tmp_path / "traj.jsonl"
    with JsonlAppender(p, sync_interval_s=60, sync_every=10) as app:
        for i in range(31):
            app.append(agent(i))
            time.sleep(0.002)  # let the flusher keep up
        deadline = time.monotonic() + 5
        while len(fsyncs) < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(fsyncs) >= 3  # the first line, then a group of 10 lines at a time, not a minute


def test_bad_settings_are_refused(tmp_path) -> None:
    with pytest.raises(ValueError):
        JsonlAppender(tmp_path / "x.jsonl", sync_interval_s=0)
    with pytest.raises(ValueError):
        JsonlAppender(tmp_path / "x.jsonl", sync_every=0)
