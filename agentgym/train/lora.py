"""LoRA adapters (peft) on a causal LM: `with_lora(module, settings)` wraps it; only the adapter trains.

`LoraSettings` (rank, alpha, dropout, target modules) is the config shape GRPO and SFT share.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class LoraSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    r: int = Field(default=16, ge=1)
    alpha: int = Field(default=32, ge=1)
    dropout: float = Field(default=0.0, ge=0, lt=1)
    target_modules: list[str] = Field(default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj"])


def with_lora(module: Any, settings: LoraSettings) -> Any:
    """`module` wrapped in a fresh LoRA adapter (base weights frozen)."""
    from peft import LoraConfig, get_peft_model

    return get_peft_model(
        module,
        LoraConfig(
            r=settings.r,
            lora_alpha=settings.alpha,
            lora_dropout=settings.dropout,
            target_modules=settings.target_modules,
            task_type="CAUSAL_LM",
        ),
    )
