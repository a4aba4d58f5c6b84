"""Tool-call parsing: a registry of formats (`FORMATS`) and `parse_turn`."""

from agentgym.parsing import formats as _formats  # noqa: F401  (registers the built-in formats)
from agentgym.parsing.base import (
    FORMATS,
    ParsedCall,
    ParsedTurn,
    parse_turn,
    register,
    render_calls,
    split_reasoning,
)

__all__ = ["FORMATS", "ParsedCall", "ParsedTurn", "parse_turn", "register", "render_calls", "split_reasoning"]
