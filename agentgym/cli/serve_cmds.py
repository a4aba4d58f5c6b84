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
