"""CLI: `agentgym sandbox build | run -- CMD ... | gc`.

`build` makes the sandbox image when its recipe's tag is missing (`--force` rebuilds). `run` starts
a fresh sandbox with the default limits, runs one command, prints its output and exits with the
command's status — non-zero with a clear message when a limit or the timeout stopped it. `gc`
removes every agentgym sandbox container (of any process, dead or alive).
"""

from __future__ import annotations

import asyncio
import sys
from typing import Annotated

import typer

from agentgym.cli.runs import console

sandbox_app = typer.Typer(
    help="Docker sandboxes: build the image, run a command, remove leftovers.", no_args_is_help=True
)


def _fail(e: Exception) -> typer.Exit:
    console.print(f"[red]error:[/] {e}")
    return typer.Exit(2)


@sandbox_app.command("build")
def build(force: Annotated[bool, typer.Option(help="Rebuild even if the image exists.")] = False) -> None:
    """Build the sandbox image (debootstrap + docker import), cached by recipe."""
    from agentgym.sandbox.errors import SandboxError
    from agentgym.sandbox.image import build_image

    try:
        tag, seconds, built = build_image(force=force, log=lambda s: console.print(f"[dim]{s}[/]"))
    except SandboxError as e:
        raise _fail(e) from None
    console.print(f"[green]{tag}[/] " + (f"built in {seconds:.1f}s" if built else "is up to date"))


@sandbox_app.command("run", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def run(
    ctx: typer.Context,
    timeout: Annotated[float, typer.Option(help="Wall-clock limit, seconds.")] = 10.0,
    memory_mb: Annotated[int, typer.Option(help="Memory limit, MB.")] = 256,
    network: Annotated[bool, typer.Option(help="Give the sandbox the host network (off: none).")] = False,
) -> None:
    """Run one command in a fresh sandbox: `agentgym sandbox run -- python3 -c 'print(1)'`."""
    from agentgym.sandbox.docker_sandbox import DockerSandbox, SandboxConfig
    from agentgym.sandbox.errors import SandboxError
    from agentgym.sandbox.image import build_image

    argv = list(ctx.args)
    if not argv:
        console.print("[red]error:[/] give the command after --, e.g. agentgym sandbox run -- ls /")
        raise typer.Exit(2)

    async def go():
        async with DockerSandbox(
            SandboxConfig(timeout_s=timeout, memory_mb=memory_mb, network=network)
        ) as sb:
            return await sb.exec(argv)

    try:
        build_image()
        r = asyncio.run(go())
    except SandboxError as e:
        raise _fail(e) from None
    sys.stdout.write(r.stdout)
    sys.stderr.write(r.stderr)
    if r.error:
        typer.echo(f"sandbox: {r.error}", err=True)
        raise typer.Exit(r.exit_code or 1)
    raise typer.Exit(r.exit_code)


@sandbox_app.command("gc")
def gc() -> None:
    """Remove every agentgym sandbox container."""
    from agentgym.sandbox.docker_sandbox import reap
    from agentgym.sandbox.errors import SandboxError

    try:
        removed = reap(everything=True)
    except SandboxError as e:
        raise _fail(e) from None
    console.print(f"removed {len(removed)} sandbox container(s)")
