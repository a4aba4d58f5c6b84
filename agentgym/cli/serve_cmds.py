"""CLI: `agentgym serve model` — an OpenAI-compatible chat-completions server over a ChatModel."""

from __future__ import annotations

from typing import Annotated

import typer

from agentgym.cli.runs import console

serve_app = typer.Typer(help="Serve models (and, later, environments) over HTTP.", no_args_is_help=True)


@serve_app.command("model")
def serve_model(
    model: Annotated[str, typer.Option(help="embedded | hf:<path> | <path>.")] = "embedded",
    host: Annotated[str, typer.Option(help="Bind address (loopback by default).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    name: Annotated[
        str | None, typer.Option(help="Model name the server answers to (default: the model's).")
    ] = None,
) -> None:
    """Serve a model at http://HOST:PORT/v1 (chat completions, native tool calls, logprobs)."""
    from agentgym.models import load_model
    from agentgym.models.serve import serve

    try:
        m = load_model(model)
    except (ValueError, FileNotFoundError, RuntimeError) as e:
        console.print(f"[red]error:[/] {e}")
        raise typer.Exit(2) from None
    typer.echo(f"serving {name or m.name} at http://{host}:{port}/v1", err=True)
    serve(m, host, port, name)


@serve_app.command("env")
def serve_env(
    suite: Annotated[str, typer.Option(help="Suite name or path.")] = "starter",
    host: Annotated[str, typer.Option(help="Bind address (loopback by default).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8100,
    max_sessions: Annotated[int, typer.Option(help="Most sessions open at once (more get HTTP 429).")] = 256,
    idle_s: Annotated[float, typer.Option(help="Close a session idle this long.")] = 600.0,
) -> None:
    """Serve a suite's episodes over HTTP: POST /reset, /step, /close (session ids); GET /trajectory, /health."""
    import uvicorn

    from agentgym.cli.runs import load_suite_or_exit
    from agentgym.env.server import app

    s = load_suite_or_exit(suite)
    typer.echo(f"serving suite {s.name} ({len(s)} tasks) at http://{host}:{port}", err=True)
    uvicorn.run(app(s, max_sessions=max_sessions, idle_s=idle_s), host=host, port=port, log_level="warning")


@serve_app.command("mcp")
def serve_mcp(
    agent: Annotated[str, typer.Option(help="The agent whose tools are served.")],
    suite: Annotated[str, typer.Option(help="Suite name or path.")] = "starter",
    task: Annotated[
        str | None, typer.Option(help="Start each session in this task's world (default: the seed).")
    ] = None,
    http: Annotated[
        int | None, typer.Option(help="Serve streamable HTTP on 127.0.0.1:PORT/mcp instead of stdio.")
    ] = None,
) -> None:
    """Serve an agent's simulated tools as a real MCP server (stdio by default)."""
    import anyio

    from agentgym.cli.runs import load_suite_or_exit
    from agentgym.mcp.serve import serve_http, serve_stdio, server

    s = load_suite_or_exit(suite)
    try:
        app = server(s, agent, task)
    except KeyError as e:
        typer.echo(f"error: {e.args[0]}", err=True)
        raise typer.Exit(2) from None
    if task is not None and task not in s.tasks:
        typer.echo(f"error: no task {task!r} in suite {s.name!r}", err=True)
        raise typer.Exit(2)
    if http is not None:
        serve_http(app, "127.0.0.1", http)
    else:
        anyio.run(serve_stdio, app)
