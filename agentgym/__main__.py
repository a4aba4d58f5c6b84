"""`python -m agentgym` is the `agentgym` command."""

from agentgym.cli.main import app

app()
