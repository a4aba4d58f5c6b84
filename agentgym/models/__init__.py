"""Models behind one protocol (`ChatModel`): the embedded default and local transformers models."""

from agentgym.models.base import ChatModel, Completion, SamplingParams
from agentgym.models.registry import BACKENDS, load_model

__all__ = ["BACKENDS", "ChatModel", "Completion", "SamplingParams", "load_model"]
