"""Models behind one protocol (`ChatModel`): the embedded default and local transformers models.

Importing this package sets HF_HUB_OFFLINE=1 (unless set): agentgym loads local weights only and
must never reach for a model hub.
"""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from agentgym.models.base import ChatModel, Completion, SamplingParams
from agentgym.models.registry import BACKENDS, load_model

__all__ = ["BACKENDS", "ChatModel", "Completion", "SamplingParams", "load_model"]
