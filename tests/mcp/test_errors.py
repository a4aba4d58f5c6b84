"""`MCPServerError`: one exception, a fixed set of kinds, picklable across processes."""

from __future__ import annotations

import pickle

import pytest

from agentgym.mcp import ERROR_KINDS, MCPServerError


def test_the_kinds_are_the_documented_six():
    assert ERROR_KINDS == (
        "install_failed",
        "start_failed",
        "timeout",
        "crashed",
        "protocol_error",
        "request_failed",
    )


def test_an_unknown_kind_is_refused():
    with pytest.raises(ValueError, match="unknown MCP server error kind"):
        MCPServerError("exploded", "boom")  # type: ignore[arg-type]


def test_kind_message_and_stderr_survive_pickling():
    err = MCPServerError("crashed", "the server exited with code 3", "Traceback ...")
    back = pickle.loads(pickle.dumps(err))
    assert (back.kind, back.message, back.stderr_tail) == (
        "crashed",
        "the server exited with code 3",
        "Traceback ...",
    )
    assert str(back) == "crashed: the server exited with code 3"
