"""A small, well-behaved MCP server for the tests (stdio, or streamable HTTP with `--http PORT`).

Tools: `add` (structured output, read-only), `create_note` / `list_notes` (state kept in the process),
`env` (one environment variable, to see what the sandbox lets through), `crash` (the process exits
in the middle of the request), `sleep`, `spawn` (leaves children that outlive the request) and
`probe` (a TCP connection to 127.0.0.1, to see whether the network is there). One resource, one
resource template, one prompt.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys

from mcp.server.mcpserver import MCPServer
from mcp_types import ToolAnnotations
from pydantic import BaseModel

app = MCPServer("toy", version="1.2.3", instructions="A toy server for agentgym's tests.")
NOTES: list[dict[str, str]] = []


class Sum(BaseModel):
    total: int


@app.tool(annotations=ToolAnnotations(title="Add numbers", read_only_hint=True))
def add(a: int, b: int) -> Sum:
    """Add two integers."""
    return Sum(total=a + b)


@app.tool()
def create_note(title: str, body: str = "") -> dict[str, str]:
    """Create a note with a title and an optional body."""
    note = {"id": f"note_{len(NOTES) + 1}", "title": title, "body": body}
    NOTES.append(note)
    return note


@app.tool(annotations=ToolAnnotations(read_only_hint=True))
def list_notes() -> list[dict[str, str]]:
    """List every note."""
    return NOTES


@app.tool()
def env(name: str) -> str:
    """The value of an environment variable of the server process ('' when unset)."""
    return os.environ.get(name, "")


@app.tool()
def crash() -> str:
    """Exit the process in the middle of the request."""
    sys.stderr.write("toy: crashing now\n")
    sys.stderr.flush()
    os._exit(3)


@app.tool()
async def sleep(seconds: float) -> str:
    """Wait, then answer."""
    await asyncio.sleep(seconds)
    return "awake"


@app.tool()
def spawn(children: int = 2) -> list[int]:
    """Start child processes that sleep for a long time; their pids."""
    procs = [subprocess.Popen(["sleep", "300"]) for _ in range(children)]
    return [p.pid for p in procs]


@app.tool()
def probe(port: int) -> str:
    """Try a TCP connection to 127.0.0.1:port."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            return "connected"
    except OSError as e:
        return f"failed: {e}"


@app.resource("toy://readme", description="What this server is.")
def readme() -> str:
    return "a toy server"


@app.resource("toy://notes/{note_id}", description="One note by id.")
def note(note_id: str) -> str:
    return next((n["body"] for n in NOTES if n["id"] == note_id), "")


@app.prompt(description="Ask for a summary of a topic.")
def summarise(topic: str) -> str:
    return f"Summarise {topic}."


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--http":
        app.run("streamable-http", host="127.0.0.1", port=int(sys.argv[2]))
    else:
        app.run()
