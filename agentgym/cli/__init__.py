"""The `agentgym` command line."""
