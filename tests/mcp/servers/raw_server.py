"""An MCP server written without the SDK: newline-delimited JSON-RPC by hand (stdio), so it can send
what the SDK would never let a server send. Its tools/list answer holds two valid tools, one whose
input schema is an array (`array_schema`) and one whose schema has no `type` and a property given as
a bare type name (`shorthand`). Every other request is answered with 'method not found'.
"""

from __future__ import annotations

import json
import sys

TOOLS = [
    {"name": "good", "description": "A valid tool.", "inputSchema": {"type": "object", "properties": {}}},
    {"name": "array_schema", "description": "Its input schema is an array.", "inputSchema": {"type": "array"}},
    {"name": "shorthand", "description": "Look up the weather of a city.",
     "inputSchema": {"properties": {"city": "string"}, "required": ["city"]}},
    {"name": "paged_only", "description": "Another valid tool.",
     "inputSchema": {"type": "object", "properties": {"n": {"type": "integer"}}}},
]  # fmt: skip


def send(message: dict) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


for line in sys.stdin:
    request = json.loads(line)
    if "id" not in request:
        continue  # a notification
    if request["method"] == "initialize":
        result = {"protocolVersion": request["params"]["protocolVersion"], "capabilities": {"tools": {}},
                  "serverInfo": {"name": "raw", "version": "0.1"}}  # fmt: skip
        send({"jsonrpc": "2.0", "id": request["id"], "result": result})
    elif request["method"] == "tools/list":
        send({"jsonrpc": "2.0", "id": request["id"], "result": {"tools": TOOLS}})
    else:
        send(
            {"jsonrpc": "2.0", "id": request["id"], "error": {"code": -32601, "message": "Method not found"}}
        )
