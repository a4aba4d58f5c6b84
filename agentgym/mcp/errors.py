"""The one error a real MCP server can cause: `MCPServerError(kind, message, stderr_tail)`.

Every way a server fails — it cannot be installed, cannot be started, does not answer in time,
dies, speaks something that is not MCP, or answers a request with an error — reaches the caller as
this exception with a `kind` from `ERROR_KINDS`, a one-line human message and the last lines the
server wrote to stderr. Code that drives servers (the scraper, the episode backend) branches on
`kind`, never on message text or on the SDK's own exception types.
"""

from __future__ import annotations

from typing import Literal, get_args

ErrorKind = Literal[
    "install_failed", "start_failed", "timeout", "crashed", "protocol_error", "request_failed"
]
"""install_failed: the package could not be installed or has no usable executable;
start_failed: the process could not be spawned (or the URL not reached);
timeout: no answer within the limit (start, initialise or a request);
crashed: the process exited or closed its output;
protocol_error: it wrote something that is not MCP JSON-RPC, or an invalid MCP result;
request_failed: it answered a request with a JSON-RPC error."""

ERROR_KINDS: tuple[str, ...] = get_args(ErrorKind)


class MCPServerError(Exception):
    """A real MCP server failed; see the module doc for the kinds."""

    def __init__(self, kind: ErrorKind, message: str, stderr_tail: str = "") -> None:
        if kind not in ERROR_KINDS:
            raise ValueError(f"unknown MCP server error kind {kind!r}")
        super().__init__(f"{kind}: {message}")
        self.kind: ErrorKind = kind
        self.message = message
        self.stderr_tail = stderr_tail

    def __reduce__(self):  # picklable across processes despite the keyword-free signature
        return (type(self), (self.kind, self.message, self.stderr_tail))
