"""Decode-step linear layers on the CPU: `y = x Wᵀ (+ b)` for a handful of rows, one pass over `W`.

A decode step multiplies every weight matrix by one row per sequence in the batch (1-8 rows). Each
step reads all the weights: bandwidth-bound work. torch's fp32 `linear` on the CPU is MKL's sgemm.
At one row it reads SmolLM2-135M's 0.54 GB at the machine's bandwidth (23 ms on two cores here). At
2-8 rows it takes 26-52 ms. `agentgym.native`'s `few_rows` loop takes 23-30 ms at every count
(`bench/RESULTS.md`).

`few_row_linears(module)` is a context manager. Inside it, every fp32 `torch.nn.Linear` of `module`
on the CPU sends an input of at most `MAX_ROWS` rows, with gradients off, to that loop. Anything
else goes to `F.linear` as before: more rows (a prefill, a training pass), gradients on, other
dtypes or devices. LoRA layers (`peft`) keep working: their base layer and adapters are
`nn.Linear`s too. Outputs equal `F.linear`'s up to float rounding (the sums run in another order;
tested). Where the loop is not available (no compiler, no AVX-512, another OpenMP runtime:
`agentgym.native`), the context manager changes nothing.

The layers are patched on the instance (`forward`) for the context's duration and restored on exit;
the modules found are cached per module (weakly).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
import torch.nn.functional as F
from torch.utils.weak import WeakIdKeyDictionary

from agentgym import native

MAX_ROWS = 8
"""The loop's largest row count; above it sgemm is the better kernel anyway."""

_LINEARS: WeakIdKeyDictionary = WeakIdKeyDictionary()


def linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """`F.linear(x, weight, bias)`, by the native loop when it applies (module doc)."""
    lib = native.few_rows()
    k = x.shape[-1]
    rows = x.numel() // k if k else 0
    if (
        lib is None
        or not 1 <= rows <= MAX_ROWS
        or torch.is_grad_enabled()
        or x.dtype != torch.float32
        or weight.dtype != torch.float32
        or x.device.type != "cpu"
        or weight.device.type != "cpu"
        or not weight.is_contiguous()
        or (bias is not None and (bias.dtype != torch.float32 or not bias.is_contiguous()))
    ):
        return F.linear(x, weight, bias)
    n = weight.shape[0]
    flat = x.reshape(rows, k).contiguous()
    out = torch.empty((rows, n), dtype=torch.float32)
    lib.agl_linear(
        flat.data_ptr(),
        weight.data_ptr(),
        None if bias is None else bias.data_ptr(),
        out.data_ptr(),
        rows,
        k,
        n,
        torch.get_num_threads(),
    )
    return out.view(*x.shape[:-1], n)


def _forward(layer: torch.nn.Linear) -> Any:
    def forward(x: torch.Tensor) -> torch.Tensor:
        return linear(x, layer.weight, layer.bias)

    return forward


@contextmanager
def few_row_linears(module: torch.nn.Module) -> Iterator[None]:
    """Inside, `module`'s fp32 CPU `nn.Linear`s run few-row inputs on the native loop (module doc)."""
    if native.few_rows() is None:
        yield
        return
    layers = _LINEARS.get(module)
    if layers is None:
        layers = [
            (m, _forward(m))
            for m in module.modules()
            if type(m) is torch.nn.Linear
            and m.weight.dtype == torch.float32
            and m.weight.device.type == "cpu"
        ]
        _LINEARS[module] = layers
    patched = []
    for m, fwd in layers:
        if "forward" not in m.__dict__:  # not already inside an outer context
            m.forward = fwd
            patched.append(m)
    try:
        yield
    finally:
        for m in patched:
            del m.forward
