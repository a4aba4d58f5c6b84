"""The in-container runner: one command, bounded in time and output, reported as one JSON line.

Baked into the sandbox image at `/opt/agentgym/run.py` (its source is part of the image recipe,
so changing it rebuilds the image). Reads a JSON request (its first argument, else stdin) —
`argv`, `timeout_s`, `max_output`, optional `stdin` and `cwd` — starts the command in its own process group, reads stdout and
stderr concurrently keeping at most `max_output` bytes of each, kills the whole group when the
wall-clock timeout passes or the output cap is exceeded, and prints `{"exit_code", "stdout",
"stderr", "timed_out", "truncated", "duration_s"}`. Standard library only, Python 3.9+, because
it runs on the image's python3, not the host's.
"""

import json
import os
import signal
import subprocess
import sys
import threading
import time


def _reader(stream, keep, cap, over):
    total = 0
    while True:
        chunk = stream.read(65536)
        if not chunk:
            return
        total += len(chunk)
        room = cap - sum(len(c) for c in keep)
        if room > 0:
            keep.append(chunk[:room])
        if total > cap:
            over.set()


def _kill_group(pgid, patience=5.0):
    """SIGKILL the group until no member is left (a fork bomb forks while it is being killed)."""
    end = time.monotonic() + patience
    while time.monotonic() < end:
        try:
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            return
        except OSError:
            return
        time.sleep(0.005)


def main():
    req = json.loads(sys.argv[1] if len(sys.argv) > 1 else sys.stdin.read())
    cap, timeout = int(req.get("max_output", 65536)), float(req.get("timeout_s", 10))
    t0 = time.monotonic()
    try:
        proc = subprocess.Popen(
            req["argv"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=req.get("cwd") or None,
            start_new_session=True,
        )
    except OSError as e:
        print(
            json.dumps(
                {
                    "exit_code": 127,
                    "stdout": "",
                    "stderr": str(e),
                    "timed_out": False,
                    "truncated": False,
                    "duration_s": 0.0,
                }
            )
        )
        return
    out, err, over = [], [], threading.Event()
    threads = [
        threading.Thread(target=_reader, args=(s, k, cap, over), daemon=True)
        for s, k in ((proc.stdout, out), (proc.stderr, err))
    ]
    for t in threads:
        t.start()
    try:
        proc.stdin.write((req.get("stdin") or "").encode())
        proc.stdin.close()
    except OSError:
        pass
    timed_out = False
    while proc.poll() is None:
        if over.is_set() or time.monotonic() - t0 > timeout:
            timed_out = not over.is_set()
            _kill_group(proc.pid)
            break
        time.sleep(0.002)
    code = proc.wait()
    _kill_group(proc.pid)
    for t in threads:
        t.join(timeout=1)
    print(
        json.dumps(
            {
                "exit_code": code,
                "stdout": b"".join(out).decode("utf-8", "replace"),
                "stderr": b"".join(err).decode("utf-8", "replace"),
                "timed_out": timed_out,
                "truncated": over.is_set(),
                "duration_s": round(time.monotonic() - t0, 4),
            }
        )
    )


if __name__ == "__main__":
    main()
