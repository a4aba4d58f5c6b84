"""An agent's simulated tools as a real MCP server, so any MCP client can be benchmarked on them.

`server(suite, agent_id, task_id=None)` builds an `mcp` low-level `Server` that lists the agent's
tools (name, description, input and output schema, annotations) and runs each call through the
same path an episode does: argument validation against the input schema, then the simulated
backend on the world state. Each client session gets its own world (the task's initial state, or
the suite world's seed), so two clients never see each other's writes. A result is returned as
JSON text plus `structured_content`; a failed call is an `is_error` result whose text is the same
typed error an episode observation carries. `serve_stdio` / `serve_http` run it (`agentgym serve
mcp --agent ID [--http PORT]`).
"""

from __future__ import annotations

import weakref
from typing import Any

import mcp_types as types
from mcp.server.lowlevel import Server

from agentgym.backends.base import Episode
from agentgym.backends.defaults import default_backends
from agentgym.jsonutil import dumps_str
from agentgym.schema import validator
from agentgym.suites.suite import TaskSuite
from agentgym.world.state import WorldState


def server(suite: TaskSuite, agent_id: str, task_id: str | None = None) -> Server[Any]:
    if agent_id not in suite.agents:
        raise KeyError(f"no agent {agent_id!r} in suite {suite.name!r}")
    agent = suite.agents[agent_id]
    tools = {name: suite.world.tools[name] for name in agent.tools}
    snapshot = suite.tasks[task_id].initial_state if task_id else suite.world.seed
    backends = default_backends(suite.world)
    routes = {name: next(b for b in backends if b.handles(t)) for name, t in tools.items()}
    episodes: weakref.WeakKeyDictionary[Any, Episode] = weakref.WeakKeyDictionary()

    async def episode_of(ctx: Any) -> Episode:
        # the SDK builds a ServerSession per request; the connection under it is what lasts
        key = getattr(ctx.session, "_connection", ctx.session)
        ep = episodes.get(key)
        if ep is None:
            ep = episodes[key] = Episode.new(WorldState.from_snapshot(snapshot), 0)
            for b in set(routes.values()):
                await b.start_episode(ep)
        return ep

    async def list_tools(ctx: Any, params: types.PaginatedRequestParams | None) -> types.ListToolsResult:
        return types.ListToolsResult(
            tools=[
                types.Tool(
                    name=t.name,
                    title=t.title,
                    description=t.description,
                    input_schema=t.input_schema,
                    output_schema=t.output_schema
                    if (t.output_schema or {}).get("type") == "object"
                    else None,
                    annotations=types.ToolAnnotations(**t.annotations.model_dump(exclude_none=True)),
                )
                for t in tools.values()
            ]
        )

    async def call_tool(ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
        tool = tools.get(params.name)
        if tool is None:
            return _error(dumps_str({"error": "unknown_tool", "message": f"no tool named {params.name!r}"}))
        args = dict(params.arguments or {})
        reason = validator(tool.input_schema).check(args)
        if reason is not None:
            return _error(
                dumps_str(
                    {"error": "invalid_arguments", "message": f"arguments do not match the schema: {reason}"}
                )
            )
        result = await routes[tool.name].call(tool, args, await episode_of(ctx))
        if not result.ok:
            return _error(result.content)
        structured = result.structured if isinstance(result.structured, dict) else None
        return types.CallToolResult(
            content=[types.TextContent(type="text", text=result.content)], structured_content=structured
        )

    return Server(
        f"agentgym-{agent_id}"[:64],
        version="0.1.0",
        instructions=agent.system_prompt,
        on_list_tools=list_tools,
        on_call_tool=call_tool,
    )


def _error(text: str) -> types.CallToolResult:
    return types.CallToolResult(content=[types.TextContent(type="text", text=text)], is_error=True)


async def serve_stdio(app: Server[Any]) -> None:
    from mcp.server.stdio import stdio_server

    async with stdio_server() as (read, write):
        await app.run(read, write, app.create_initialization_options())


def serve_http(app: Server[Any], host: str, port: int) -> None:
    import contextlib

    import uvicorn
    from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
    from starlette.applications import Starlette
    from starlette.routing import Mount

    manager = StreamableHTTPSessionManager(app)

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette):  # type: ignore[no-untyped-def]
        async with manager.run():
            yield

    web = Starlette(routes=[Mount("/mcp", app=manager.handle_request)], lifespan=lifespan)
    uvicorn.run(web, host=host, port=port, log_level="warning")
