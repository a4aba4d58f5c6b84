"""The in-container runner: one command, bounded in time and output, reported as one JSON line.

Baked into the sandbox image at `/opt/agentgym/run.py` (its source is part of the image recipe,
so changing it rebuilds the image). `run.py --serve` is the container's main process: it reads one
JSON request a line on stdin and answers one JSON line on stdout — `exec` (below), `write`,
`read` and `list` of files — so a command costs no process start beyond its own. An `exec`
request — `argv`, `timeout_s`, `max_output`, optional `stdin` and `cwd` — starts the command in
its own process group, reads stdout and stderr concurrently keeping at most `max_output` bytes of
each, kills the whole group when the wall-clock timeout passes or the output cap is exceeded, and
answers `{"exit_code", "stdout", "stderr", "timed_out", "truncated", "duration_s"}`.
(`run.py REQUEST` runs one request and exits.) Standard library only, Python 3.9+: it runs on the
image's python3, not the host's.
"""

import base64
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


def _kill_group(proc, patience=5.0):
    """SIGKILL the process group until no member is left (a fork bomb forks while it is being
    killed); the leader is reaped as we go, so its zombie does not keep the group alive."""
    end = time.monotonic() + patience
    while time.monotonic() < end:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except OSError:
            return
        proc.poll()
        time.sleep(0.002)


def run(req):
    """One command (see module doc) → its result dict."""
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
        return {
            "exit_code": 127,
            "stdout": "",
            "stderr": str(e),
            "timed_out": False,
            "truncated": False,
            "duration_s": 0.0,
        }
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
            _kill_group(proc)
            break
        time.sleep(0.001)
    code = proc.wait()
    _kill_group(proc)
    for t in threads:
        t.join(timeout=1)
    return {
        "exit_code": code,
        "stdout": b"".join(out).decode("utf-8", "replace"),
        "stderr": b"".join(err).decode("utf-8", "replace"),
        "timed_out": timed_out,
        "truncated": over.is_set(),
        "duration_s": round(time.monotonic() - t0, 4),
    }


def _write(req):
    path = req["path"]
    folder = os.path.dirname(path)
    if folder:
        os.makedirs(folder, exist_ok=True)
    with open(path, "wb") as f:
        f.write(base64.b64decode(req["data"]))
    return {"ok": True}


def _read(req):
    with open(req["path"], "rb") as f:
        return {"data": base64.b64encode(f.read(int(req.get("max_bytes", 1 << 20)))).decode()}


def _list(req):
    root = req["path"]
    if not os.path.isdir(root):
        raise FileNotFoundError(f"no folder {root}")
    files = sorted(os.path.relpath(os.path.join(d, f), root) for d, _, fs in os.walk(root) for f in fs)
    return {"files": files[:1000]}


OPS = {"exec": run, "write": _write, "read": _read, "list": _list}


def serve():
    """One JSON request a line on stdin, one JSON answer a line on stdout, until stdin closes."""
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            req = json.loads(line)
            answer = OPS[req.get("op", "exec")](req)
        except Exception as e:  # every failure is an answer, never a dead server
            answer = {"error": f"{type(e).__name__}: {e}"}
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()


def main():
    if sys.argv[1:] == ["--serve"]:
        serve()
        return
    req = json.loads(sys.argv[1] if len(sys.argv) > 1 else sys.stdin.read())
    print(json.dumps(run(req)))


if __name__ == "__main__":
    main()
