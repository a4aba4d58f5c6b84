"""An int8 sampling copy of a float causal LM, for fast decoding on the CPU.

Decoding a small model on a CPU is bound by reading its weights once per token: SmolLM2-135M is
540 MB in fp32, and a decode step at batch 4 costs about 100 ms on two cores, most of it streaming
weights through `mm`. `int8_sampler(model)` returns a module that reads a quarter of that:

- every `nn.Linear` (the vocabulary head included) becomes an `Int8Linear`: int8 weights with one
  float scale per output channel; activations are quantized per token on the fly (W8A8), and the
  product runs in `torch._int_mm` (oneDNN's int8 kernel, VNNI where the CPU has it);
- every other parameter and buffer (embeddings, norms, rotary tables) is the float model's own
  tensor, shared, not copied, so the copy costs only the int8 weights (about 135 MB here);
- `refresh(sampler)` requantizes every `Int8Linear` from the float weights it came from, in place
  (a fraction of a second for 135M parameters): call it after each optimizer step.

The copy is a different policy from the float model (by the quantization error), so rollouts it
samples are slightly off-policy. The GRPO trainer samples with it under `generator: local_int8`,
records its log-probabilities, and corrects the mismatch with truncated importance sampling
(`is_cap`), as for a vLLM sampler. Full fine-tuning on the CPU only: a peft model (whose weights
are split into base and adapter) is refused.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn

REFRESH_BLOCK = 1 << 16
"""Weights requantized per block of this many elements (256 KB of fp32: an L2-sized working set)."""


class Int8Linear(nn.Module):
    """`nn.Linear` with int8 weights (per-output-channel scales) and per-token int8 activations."""

    def __init__(self, source: nn.Linear) -> None:
        super().__init__()
        self.in_features, self.out_features = source.in_features, source.out_features
        self._source = (source.weight, source.bias)  # a tuple: not registered, not saved, not moved
        self.bias = source.bias
        self.register_buffer(
            "qweight", torch.empty_like(source.weight, dtype=torch.int8, device="cpu"), persistent=False
        )
        self.register_buffer(
            "scale", torch.empty(self.out_features, dtype=torch.float32, device="cpu"), persistent=False
        )
        self.refresh()

    @torch.no_grad()
    def refresh(self) -> None:
        w = self._source[0].detach().to("cpu", torch.float32)
        lo, hi = torch.aminmax(w, dim=1)
        scale = torch.maximum(hi, -lo).clamp_(min=1e-8).div_(127.0)
        inv = scale.reciprocal()[:, None]
        # in row blocks that stay in cache: scale, round and cast touch main memory once
        rows = max(1, REFRESH_BLOCK // w.shape[1])
        buf = torch.empty((min(rows, w.shape[0]), w.shape[1]))
        for i in range(0, w.shape[0], rows):
            b = buf[: min(rows, w.shape[0] - i)]
            torch.mul(w[i : i + rows], inv[i : i + rows], out=b)
            self.qweight[i : i + rows].copy_(b.round_())
        self.scale.copy_(scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        x2 = x.reshape(-1, shape[-1]).to(torch.float32)
        xs = x2.abs().amax(dim=-1, keepdim=True).clamp(min=1e-8) / 127.0
        xq = torch.round(x2 / xs).to(torch.int8)
        y = torch._int_mm(xq, self.qweight.t()).to(torch.float32) * xs * self.scale
        if self.bias is not None:
            y = y + self.bias
        return y.reshape(*shape[:-1], self.out_features).to(x.dtype)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, int8"


def int8_sampler(model: nn.Module) -> nn.Module:
    """The int8 sampling copy of `model` (module doc); `model` itself is left as it is."""
    if hasattr(model, "peft_config"):
        raise TypeError("int8_sampler quantizes a plain model; merge or drop the LoRA adapter first")
    if any(p.device.type != "cpu" for p in model.parameters()):
        raise ValueError("int8_sampler runs on the CPU: the model's weights are elsewhere")
    shared: dict[int, Any] = {id(t): t for t in [*model.parameters(), *model.buffers()]}
    sampler = copy.deepcopy(model, shared)
    for parent in list(sampler.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, nn.Linear):
                setattr(parent, name, Int8Linear(child))
    return sampler.eval()  # (no requires_grad_: the shared parameters are the trainer's)


def refresh(sampler: nn.Module) -> None:
    """Requantize every `Int8Linear` of `sampler` from the float weights it shares (module doc)."""
    for m in sampler.modules():
        if isinstance(m, Int8Linear):
            m.refresh()
