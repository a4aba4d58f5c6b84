"""The trainers' optimizers, by name (`OPTIMIZERS`; `make_optimizer(name, params, lr, weight_decay)`).

- **adamw** (default): torch's AdamW, fp32 moments, with torch's fused kernel where the parameters'
  device has one. The fused kernel updates every parameter in one pass per tensor, with no
  temporaries: on the CPU it steps SmolLM2-135M in about 0.11 s, against 0.6 s for the per-tensor
  loop and for `foreach` (`bench/RESULTS.md`).
- **adamw_bf16**: the same update rule with AdamW's two moments *and the gradients* stored in
  bfloat16 (DeepSeek-V3 keeps AdamW's moments in BF16): 6 bytes a parameter beside the fp32 weights
  instead of 12, i.e. 0.81 GB instead of 1.62 GB for SmolLM2-135M, whose weights, gradients and
  moments are most of a full fine-tune's memory.
  - *Gradients.* A post-accumulate hook on each parameter adds its fresh fp32 gradient into the
    parameter's bf16 gradient buffer the moment backward produces it, then drops it (`p.grad` is
    None after backward), so at most one parameter's fp32 gradient is alive at a time. A sparse
    gradient (a tied embedding, `train.sequences`) adds into its rows only. Micro-batches
    accumulate until a step consumes them. `clip_grad_norm(opt, max_norm)` reads the norm from the
    buffers and the step applies the clip coefficient, as `torch.nn.utils.clip_grad_norm_` does to
    `p.grad`.
  - *Step.* The parameters are worked through in chunks of `CHUNK` elements: the chunk's gradient
    and moments are widened into fp32 scratch, torch's fused AdamW kernel updates parameter and
    moments in fp32, and the moments go back to bf16.
  - *Rounding.* The moments, and a gradient summed over micro-batches, are rounded to bf16
    *stochastically* each time they are stored. Round-to-nearest would bias them where an update is
    small beside an ulp, and freeze the second moment outright: with beta2 = 0.999 a step changes it
    by 0.1 %, under half a bf16 ulp (0.2 %), so it could never decay (the first moment stalls the
    same way within about 1 % of a steady gradient). Stochastic rounding keeps them unbiased. Its
    random bits come from a fixed table (seeded, `NOISE_SEED`) read at an offset that moves with the
    step, the parameter, the chunk and the micro-batch: cheap (a fresh random draw per element costs
    more than the update), and deterministic, so a resumed run repeats exactly. A fresh gradient is
    stored once and never re-rounded, so it is rounded to nearest (a one-off relative error of at
    most 2^-9, in one pass instead of four).
  - *Native loops.* On the CPU each of the three jobs (adding a gradient into its buffer, the
    clip's norm, the step) is one C loop over memory (`agentgym.native`), split across
    torch's thread count: for SmolLM2 on two cores the step takes 0.18 s instead of 0.45 s and a
    second gradient 0.14 s instead of 0.23 s. The torch ops above are the reference, and the path
    on other devices or where no C compiler is found (after one warning); the two agree (tests).
  Weights stay fp32. Checkpoints load across the two optimizers (moments are cast on load).

Both take fp32 parameters; `adamw_bf16` also needs them contiguous and on a device with torch's
fused AdamW kernel (`FUSED_DEVICES`), else it raises at construction. Trainers clip through
`clip_grad_norm(opt, max_norm)`, which works for either.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch.utils.weak import WeakIdKeyDictionary

from agentgym import native

FUSED_DEVICES = frozenset({"cpu", "cuda", "xpu", "mps"})
"""Device types torch's fused AdamW runs on."""
CHUNK = 1 << 18
"""Elements per chunk of `adamw_bf16`'s work: the fp32 scratch (3 x 1 MB) stays in cache."""
NOISE_SEED = 0x5EED


def adamw(params: Iterable[torch.nn.Parameter], lr: float, weight_decay: float = 0.0) -> torch.optim.AdamW:
    """AdamW over the trainable `params`, fused when they all sit on a device type that has the kernel
    and are floating point."""
    params = [p for p in params if p.requires_grad]
    fused = bool(params) and all(p.device.type in FUSED_DEVICES and p.is_floating_point() for p in params)
    return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, fused=fused or None)


class AdamWBF16(torch.optim.Optimizer):
    """AdamW with bf16-stored gradients and moments, stochastically rounded (module doc). Same
    hyperparameters and defaults as `torch.optim.AdamW` (no amsgrad, no maximize). A step consumes
    the gradients it was given (those since the last step or `zero_grad`). One optimizer
    owns a parameter's gradients at a time: a newer `AdamWBF16` over the same parameter takes them
    over; once none is alive, gradients stay in `p.grad` as usual."""

    def __init__(
        self,
        params: Iterable[torch.nn.Parameter],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
    ) -> None:
        params = [p for p in params if p.requires_grad]
        for p in params:
            if p.dtype != torch.float32 or not p.is_contiguous() or p.device.type not in FUSED_DEVICES:
                raise ValueError(
                    "adamw_bf16 needs contiguous float32 parameters on one of "
                    f"{sorted(FUSED_DEVICES)}; got {p.dtype} on {p.device}"
                    + ("" if p.is_contiguous() else ", non-contiguous")
                )
        super().__init__(params, {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay})
        self._noise: dict[torch.device, torch.Tensor] = {}
        self._scratch: dict[torch.device, torch.Tensor] = {}
        self._index = {p: i for i, p in enumerate(params, start=1)}
        self._grads: dict[torch.Tensor, torch.Tensor] = {}
        """Parameter -> its bf16 gradient buffer (allocated on its first gradient, kept)."""
        self._filled: set[torch.Tensor] = set()
        """Parameters whose buffer holds a gradient since the last `zero_grad`."""
        self._takes = 0
        """Gradients taken since the last step (part of the rounding noise's offset)."""
        self._clock = 0
        """Steps taken (restored from the state on load): the rounding noise's offset moves with it
        without reading a device tensor."""
        self._coef = 1.0
        for p in params:
            _own(p, self)
        self.register_load_state_dict_post_hook(_after_load)

    def _buffers(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        if device not in self._noise:
            gen = torch.Generator().manual_seed(NOISE_SEED)
            noise = torch.randint(0, 1 << 16, (2 * CHUNK,), dtype=torch.int32, generator=gen)
            self._noise[device] = noise.to(device)
            self._scratch[device] = torch.empty(3, CHUNK, dtype=torch.float32, device=device)
        return self._noise[device], self._scratch[device]

    def _seed(self, p: torch.Tensor, salt: int) -> int:
        return self._clock * 7919 + self._index[p] * 104729 + salt

    @torch.no_grad()
    def _take(self, p: torch.Tensor) -> None:
        """Move `p.grad` (dense or sparse, fp32) into `p`'s bf16 buffer, adding to what it holds
        (a fresh gradient is rounded to nearest, a sum stochastically)."""
        g = p.grad
        if g is None:
            return
        p.grad = None
        fresh = p not in self._filled
        buf = self._grads.get(p)
        if buf is None:
            buf = self._grads[p] = torch.zeros_like(p, dtype=torch.bfloat16)
        self._filled.add(p)
        self._takes += 1
        seed = self._seed(p, self._takes * 31 + 17)
        if not g.is_sparse:
            self._add_dense(p, buf.view(-1), g, fresh, seed)
        elif fresh:
            g = g.coalesce()
            buf.zero_().index_copy_(0, g.indices()[0], g.values().to(torch.bfloat16))
        else:
            g = g.coalesce()
            rows = g.indices()[0]
            wide = buf.index_select(0, rows).float().add_(g.values())
            narrow = torch.empty_like(wide, dtype=torch.bfloat16)
            self._narrow(wide.view(-1), narrow.view(-1), seed)
            buf.index_copy_(0, rows, narrow)

    def _add_dense(
        self, p: torch.Tensor, flat: torch.Tensor, g: torch.Tensor, fresh: bool, seed: int
    ) -> None:
        """`flat` (a flat bf16 stretch of `p`'s buffer) := `g` (fp32, as many elements) rounded to
        nearest when `fresh`, else `flat + g` rounded stochastically (noise offsets from `seed`)."""
        g = g.detach().contiguous().view(-1)
        if (lib := self._native(p)) is not None:
            noise, _ = self._buffers(p.device)
            tail = (int(fresh), noise.data_ptr(), CHUNK, seed)
            native.parallel(lib.agb_accumulate, g.numel(), (flat.data_ptr(), g.data_ptr()), tail)
        elif fresh:
            flat.copy_(g)
        else:
            _, scratch = self._buffers(p.device)
            for a in range(0, g.numel(), CHUNK):
                b = min(a + CHUNK, g.numel())
                wide = scratch[0, : b - a]
                wide.copy_(flat[a:b]).add_(g[a:b])  # (fp32 += bf16 would convert into a temporary)
                self._narrow(wide, flat[a:b], seed + a)

    @torch.no_grad()
    def row_sink(self, p: torch.Tensor) -> Callable[[int, torch.Tensor], None]:
        """A sink for one gradient of `p` that backward delivers in blocks of rows (the tied head's,
        `train.sequences`) instead of as `p.grad`: `add(start, g)` adds the fp32 rows `g` into rows
        `[start, start + len(g))` of `p`'s buffer, as `_take` adds a dense gradient. Rows no block
        covers count as zero; blocks must not overlap."""
        fresh = p not in self._filled
        buf = self._grads.get(p)
        if buf is None:
            buf = self._grads[p] = torch.zeros_like(p, dtype=torch.bfloat16)
        elif fresh:
            buf.zero_()
        self._filled.add(p)
        self._takes += 1
        seed = self._seed(p, self._takes * 31 + 17)
        width = p[0].numel() if p.dim() else 1

        def add(start: int, g: torch.Tensor) -> None:
            a = start * width
            self._add_dense(p, buf.view(-1)[a : a + g.numel()], g, fresh, seed + a)

        return add

    @staticmethod
    def _native(p: torch.Tensor) -> Any:
        """The native loops (`agentgym.native`) for a CPU parameter, else None."""
        return native.kernels() if p.device.type == "cpu" else None

    def _narrow(self, wide: torch.Tensor, narrow: torch.Tensor, seed: int) -> None:
        """`narrow` (bf16) := `wide` (fp32, clobbered) stochastically rounded, chunk by chunk."""
        noise, _ = self._buffers(wide.device)
        for a in range(0, wide.numel(), CHUNK):
            b = min(a + CHUNK, wide.numel())
            off = (seed + a) % CHUNK
            round_stochastic(wide[a:b], noise[off : off + b - a], narrow[a:b])

    @torch.no_grad()
    def clip_grad_norm_(self, max_norm: float) -> float:
        """The total 2-norm of the held gradients; the next step scales them by
        `min(1, max_norm / (norm + 1e-6))`, as `torch.nn.utils.clip_grad_norm_` does."""
        totals: dict[torch.device, torch.Tensor] = {}
        for p in self._filled:
            total = totals.setdefault(p.device, torch.zeros((), device=p.device, dtype=torch.float64))
            flat = self._grads[p].view(-1)
            if (lib := self._native(p)) is not None:
                total += sum(native.parallel(lib.agb_sumsq, flat.numel(), (flat.data_ptr(),)))
                continue
            _, scratch = self._buffers(p.device)
            for a in range(0, flat.numel(), CHUNK):
                wide = scratch[0, : min(CHUNK, flat.numel() - a)]
                wide.copy_(flat[a : a + CHUNK])
                total += torch.dot(wide, wide)
        norm = math.sqrt(sum(float(t) for t in totals.values()))
        self._coef = min(1.0, max_norm / (norm + 1e-6)) if math.isfinite(norm) else float("nan")
        return norm

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forget the held gradients (the buffers stay allocated for the next backward)."""
        super().zero_grad(set_to_none)
        self._filled.clear()
        self._takes = 0
        self._coef = 1.0

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for p in group["params"]:
                if p.grad is not None:  # a gradient no hook took (a hook-less backward)
                    if p.grad.is_sparse:
                        raise RuntimeError("adamw_bf16 does not take sparse gradients outside backward")
                    self._take(p)
                if p not in self._filled:
                    continue
                state = self.state[p]
                if not state:
                    state["step"] = torch.zeros((), dtype=torch.float32, device=p.device)
                    state["exp_avg"] = torch.zeros_like(p, dtype=torch.bfloat16)
                    state["exp_avg_sq"] = torch.zeros_like(p, dtype=torch.bfloat16)
                state["step"] += 1
                noise, scratch = self._buffers(p.device)
                flat, grad = p.view(-1), self._grads[p].view(-1)
                moments = [state["exp_avg"].view(-1), state["exp_avg_sq"].view(-1)]
                seed = self._seed(p, 0)
                if (lib := self._native(p)) is not None:
                    t = float(state["step"])
                    ptrs = tuple(x.data_ptr() for x in (flat, grad, *moments))
                    hyper = (group["lr"], beta1, beta2, group["eps"], group["weight_decay"])
                    rates = (group["lr"] / (1 - beta1**t), math.sqrt(1 - beta2**t), self._coef)
                    tail = (*hyper, *rates, noise.data_ptr(), CHUNK, seed, seed + 65537)
                    native.parallel(lib.agb_step, p.numel(), ptrs, tail)
                    continue
                scale = None if self._coef == 1.0 else torch.tensor(1.0 / self._coef, device=p.device)
                for a in range(0, p.numel(), CHUNK):
                    b = min(a + CHUNK, p.numel())
                    m32, v32, g32 = scratch[0, : b - a], scratch[1, : b - a], scratch[2, : b - a]
                    m32.copy_(moments[0][a:b])
                    v32.copy_(moments[1][a:b])
                    g32.copy_(grad[a:b])
                    torch._fused_adamw_(
                        [flat[a:b]],
                        [g32],
                        [m32],
                        [v32],
                        [],
                        [state["step"]],
                        lr=group["lr"],
                        beta1=beta1,
                        beta2=beta2,
                        weight_decay=group["weight_decay"],
                        eps=group["eps"],
                        amsgrad=False,
                        maximize=False,
                        grad_scale=scale,  # the kernel divides the gradient by it: the clip
                    )
                    self._narrow(m32, moments[0][a:b], seed + a)
                    self._narrow(v32, moments[1][a:b], seed + a + 65537)
        self._clock += 1
        self._filled.clear()
        self._takes = 0
        self._coef = 1.0
        return loss


_OWNERS: WeakIdKeyDictionary = WeakIdKeyDictionary()
"""Parameter -> weak reference to the `AdamWBF16` that takes its gradients."""


def _own(p: torch.Tensor, opt: AdamWBF16) -> None:
    if p not in _OWNERS:  # one hook per parameter, whichever optimizer owns it
        p.register_post_accumulate_grad_hook(_to_owner)
    _OWNERS[p] = weakref.ref(opt)


def _to_owner(p: torch.Tensor) -> None:
    ref = _OWNERS.get(p)
    opt = ref() if ref is not None else None
    if opt is not None:
        opt._take(p)


def takes_rows(p: torch.Tensor) -> bool:
    """Whether an `AdamWBF16` takes `p`'s gradients (and so offers `row_sink`)."""
    ref = _OWNERS.get(p)
    return ref is not None and ref() is not None


def row_sink(p: torch.Tensor) -> Callable[[int, torch.Tensor], None] | None:
    """`AdamWBF16.row_sink(p)` of the optimizer that takes `p`'s gradients; None when none does."""
    ref = _OWNERS.get(p)
    opt = ref() if ref is not None else None
    return opt.row_sink(p) if opt is not None else None


def round_stochastic(x: torch.Tensor, noise: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """`out` (bf16) := `x` (fp32, clobbered) rounded up or down to a neighbouring bf16 value with
    probability in proportion to the distance, given `noise` uniform in [0, 2^16) (int32, as long as
    `x`). Adding the noise below bf16's last mantissa bit and keeping the top 16 bits (bf16 is fp32's
    top half) does exactly that for either sign, the bits being sign-magnitude. With the low bits
    cleared the value is a bf16 value, which the cast then copies exactly."""
    x.view(torch.int32).add_(noise).bitwise_and_(-(1 << 16))
    return out.copy_(x)


def clip_grad_norm(opt: torch.optim.Optimizer, max_norm: float) -> float:
    """Clip the gradients `opt` steps with to a total 2-norm of `max_norm`; the norm before clipping.
    `adamw_bf16` holds its gradients itself; any other optimizer's are its parameters' `.grad`."""
    own = getattr(opt, "clip_grad_norm_", None)
    if own is not None:
        return float(own(max_norm))
    params = [p for group in opt.param_groups for p in group["params"]]
    return float(torch.nn.utils.clip_grad_norm_(params, max_norm))


def _after_load(opt: AdamWBF16) -> None:
    """`Optimizer.load_state_dict` casts floating state to the parameter's dtype: narrow the moments
    back; and set the clock to the steps taken."""
    steps = [0]
    for state in opt.state.values():
        for key in ("exp_avg", "exp_avg_sq"):
            if key in state and state[key].dtype != torch.bfloat16:
                state[key] = state[key].to(torch.bfloat16)
        if "step" in state:
            steps.append(int(state["step"]))
    opt._clock = max(steps)


OPTIMIZERS: dict[str, Callable[..., torch.optim.Optimizer]] = {
    "adamw": adamw,
    "adamw_bf16": lambda params, lr, weight_decay=0.0: AdamWBF16(params, lr=lr, weight_decay=weight_decay),
}
"""Optimizer by name: `(params, lr, weight_decay) -> torch.optim.Optimizer` (module doc)."""


def make_optimizer(
    name: str, params: Iterable[torch.nn.Parameter], lr: float, weight_decay: float = 0.0
) -> torch.optim.Optimizer:
    """The optimizer `name` from `OPTIMIZERS` over the trainable `params`."""
    return OPTIMIZERS[check_optimizer(name)](params, lr, weight_decay)


def check_optimizer(name: str) -> str:
    """`name` if it is in `OPTIMIZERS`, else a ValueError that lists the known ones (for configs)."""
    if name not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r}; known: {', '.join(sorted(OPTIMIZERS))}")
    return name
