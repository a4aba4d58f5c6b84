"""An MCP server on the SDK's low-level API, for what a decorated server cannot send (stdio).

`python lowlevel_server.py MODE`:
- `paged`: tools over three pages, among them an input schema that is no valid JSON Schema
  (`broken`), one that needs repairs (`loose`), a name listed twice (`dup`), an invalid output schema
  (`odd_output`); resources it lists, resource templates it refuses (method not found).
- `crash_on_list`: exits while answering tools/list.
- `repeat_cursor`: every tools/list page points to the same cursor again.
"""

from __future__ import annotations

import os
import sys

import anyio
import mcp_types as types
from mcp.server.lowlevel import Server
from mcp.server.stdio import stdio_server

MODE = sys.argv[1] if len(sys.argv) > 1 else "paged"

PAGES = {
    None: ([
        types.Tool(name="echo", description="Echo the text back.",
                   input_schema={"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]},
                   annotations=types.ToolAnnotations(read_only_hint=True, idempotent_hint=True)),
        types.Tool(name="broken", description="Its schema is not valid JSON Schema.",
                   input_schema={"type": "object", "minProperties": "many"}),
    ], "page-2"),
    "page-2": ([
        types.Tool(name="loose", description="A schema that needs repairs.",
                   input_schema={"type": "object", "properties": {"city": {"type": "str"}, "days": {"type": "int"}},
                                 "required": ["city", "x"]}),
        types.Tool(name="dup", description="Listed twice: first copy.", input_schema={"type": "object"}),
    ], "page-3"),
    "page-3": ([
        types.Tool(name="dup", description="Listed twice: second copy.", input_schema={"type": "object"}),
        types.Tool(name="odd_output", description="Its output schema is not valid.",
                   input_schema={"type": "object", "properties": {}},
                   output_schema={"type": "object", "minProperties": "many"},
                   annotations=types.ToolAnnotations(destructive_hint=True)),
    ], None),
}  # fmt: skip


async def list_tools(ctx, params: types.PaginatedRequestParams | None) -> types.ListToolsResult:
    if MODE == "crash_on_list":
        os._exit(4)
    if MODE == "repeat_cursor":
        return types.ListToolsResult(tools=PAGES[None][0], next_cursor="again")
    tools, cursor = PAGES[params.cursor if params is not None else None]
    return types.ListToolsResult(tools=tools, next_cursor=cursor)


async def call_tool(ctx, params: types.CallToolRequestParams) -> types.CallToolResult:
    text = str((params.arguments or {}).get("text", ""))
    return types.CallToolResult(content=[types.TextContent(type="text", text=text)])


async def list_resources(ctx, params: types.PaginatedRequestParams | None) -> types.ListResourcesResult:
    return types.ListResourcesResult(
        resources=[types.Resource(uri="low://a", name="a", description="Resource a.", mime_type="text/plain")]
    )


server = Server("lowlevel", version="0.0.1", on_list_tools=list_tools, on_call_tool=call_tool,
                on_list_resources=list_resources)  # fmt: skip


async def main() -> None:
    async with stdio_server() as (read, write):
        await server.run(read, write, server.create_initialization_options())


if __name__ == "__main__":
    anyio.run(main)
