"""The tool repository: real MCP tools (crawl dumps, live servers) and synthetic tools, as data."""

from agentgym.repository.store import SOURCES, ToolRepository, save_domains

__all__ = ["SOURCES", "ToolRepository", "save_domains"]
