"""Servers that misbehave before any MCP is spoken (stdio). `python bad_server.py MODE`:

- `silent`: reads stdin and never answers; ignores SIGTERM and the end of its input, so only
  SIGKILL stops it.
- `garbage`: answers the first line it reads with text that is not JSON-RPC, then waits.
- `exit`: writes a reason to stderr and exits with code 7 at once.
"""

from __future__ import annotations

import signal
import sys
import time

MODE = sys.argv[1]

if MODE == "silent":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    for _ in sys.stdin:
        pass
    while True:
        time.sleep(1)
elif MODE == "garbage":
    sys.stdin.readline()
    sys.stdout.write("Hello! I am not an MCP server.\n")
    sys.stdout.flush()
    while True:
        time.sleep(1)
elif MODE == "exit":
    sys.stderr.write("bad_server: missing configuration, giving up\n")
    sys.exit(7)
