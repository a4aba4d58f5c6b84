"""The optimizers registry: `adamw_bf16` against torch's fp32 AdamW (trajectory, second-moment decay),
its stochastic rounding, exact resume, half-size state, and clear errors on bad input; its native
CPU loops against its torch path."""

from __future__ import annotations

import itertools

import pytest
import torch

from agentgym import native
from agentgym.train import optim
from agentgym.train.grpo import GRPOConfig
from agentgym.train.optim import OPTIMIZERS, AdamWBF16, make_optimizer, round_stochastic
from agentgym.train.sft import SFTConfig


@pytest.fixture
def small_chunks(monkeypatch):
    """Chunks of 1000 elements, so a 3000-element parameter crosses chunk edges."""
    monkeypatch.setattr(optim, "CHUNK", 1000)


@pytest.fixture(params=["native", "torch"])
def path(request, monkeypatch):
    """Run the test on `adamw_bf16`'s native CPU loops and on its torch path."""
    if request.param == "native":
        assert native.kernels() is not None, "the native loops did not build (see the warning)"
    else:
        monkeypatch.setattr(native, "kernels", lambda: None)
    return request.param


def _regression(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(256, 60, generator=g)
    w_true = torch.randn(60, 50, generator=g)
    y = x @ w_true + 0.1 * torch.randn(256, 50, generator=g)
    return x, y


def _train(name: str, steps: int, lr: float = 1e-2, state=None):
    x, y = _regression()
    w = torch.nn.Parameter(torch.zeros(60, 50))
    b = torch.nn.Parameter(torch.zeros(50))
    opt = make_optimizer(name, [w, b], lr, weight_decay=0.01)
    if state is not None:
        w.data.copy_(state["w"])
        b.data.copy_(state["b"])
        opt.load_state_dict(state["opt"])
    losses = []
    for _ in range(steps):
        loss = ((x @ w + b - y) ** 2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    return w.detach().clone(), b.detach().clone(), opt, losses


def test_registry_names():
    assert set(OPTIMIZERS) == {"adamw", "adamw_bf16"}


def test_bf16_follows_fp32_adamw(small_chunks, path):
    w32, _, _, l32 = _train("adamw", 300)
    w16, _, opt, l16 = _train("adamw_bf16", 300)
    moved = float((w32 - 0).norm())
    assert float((w16 - w32).norm()) / moved < 0.02
    assert l16[-1] < 0.05 * l16[0]
    assert abs(l16[-1] - l32[-1]) / l32[-1] < 0.1
    state = opt.state[opt.param_groups[0]["params"][0]]
    assert state["exp_avg"].dtype == state["exp_avg_sq"].dtype == torch.bfloat16
    assert state["exp_avg"].shape == (60, 50)


def test_second_moment_decays_like_fp32(path):
    """beta2 = 0.999 moves v by 0.1 % a step, under half a bf16 ulp: round-to-nearest would keep v
    at its peak forever. Stochastic rounding must let it decay as fp32 does (0.999^2000 = 0.135)."""
    n = 4096
    p32, p16 = torch.nn.Parameter(torch.zeros(n)), torch.nn.Parameter(torch.zeros(n))
    o32 = torch.optim.AdamW([p32], lr=1e-4, weight_decay=0.0)
    o16 = AdamWBF16([p16], lr=1e-4, weight_decay=0.0)
    for step in range(2010):
        g = torch.full((n,), 1.0 if step < 10 else 1e-3)
        p32.grad, p16.grad = g.clone(), g.clone()
        o32.step()
        o16.step()
    v32 = o32.state[p32]["exp_avg_sq"]
    v16 = o16.state[p16]["exp_avg_sq"].float()
    assert float(v32.mean()) < 0.2 * 0.00995  # it did decay from its peak
    assert float(v16.mean()) == pytest.approx(float(v32.mean()), rel=0.05)
    # stochastic rounding is unbiased: per element it adds noise, on average nothing
    drift = (p16 - p32).detach()
    assert abs(float(drift.mean())) < 0.01 * abs(float(p32.detach().mean()))
    assert float(drift.abs().mean()) < 0.05 * float(p32.detach().abs().mean())


def test_round_stochastic_is_unbiased_and_bf16_exact():
    x = torch.full((1 << 16,), 1.0 + 2.0**-10)  # a quarter of the way from 1 to the next bf16 (1 + 2^-7)
    noise = torch.randint(0, 1 << 16, x.shape, dtype=torch.int32, generator=torch.Generator().manual_seed(1))

    def rounded(v: torch.Tensor) -> torch.Tensor:
        return round_stochastic(v.clone(), noise[: len(v)], torch.empty(len(v), dtype=torch.bfloat16)).float()

    r = rounded(x)
    assert set(r.unique().tolist()) == {1.0, 1.0 + 2.0**-7}
    assert float(r.mean()) == pytest.approx(1.0 + 2.0**-10, rel=2e-4)
    assert torch.equal(rounded(-x), -r)
    assert torch.equal(rounded(torch.zeros(8)), torch.zeros(8))
    exact = torch.tensor([1.5, -2.0, 3.0e-5]).to(torch.bfloat16).float()  # bf16 values stay as they are
    assert torch.equal(rounded(exact), exact)


def test_resume_repeats_exactly(small_chunks, path):
    w_full, b_full, _, _ = _train("adamw_bf16", 40)
    w, b, opt, _ = _train("adamw_bf16", 25)
    saved = {"w": w, "b": b, "opt": opt.state_dict()}
    w_res, b_res, opt_res, _ = _train("adamw_bf16", 15, state=saved)
    assert torch.equal(w_res, w_full) and torch.equal(b_res, b_full)
    assert opt_res.state[opt_res.param_groups[0]["params"][0]]["exp_avg"].dtype == torch.bfloat16


def test_loads_an_fp32_adamw_checkpoint():
    _, _, opt, _ = _train("adamw", 5)
    w, b = torch.nn.Parameter(torch.zeros(60, 50)), torch.nn.Parameter(torch.zeros(50))
    o16 = AdamWBF16([w, b], lr=1e-2)
    o16.load_state_dict(opt.state_dict())
    assert all(s["exp_avg_sq"].dtype == torch.bfloat16 for s in o16.state.values())


def test_state_is_half_the_fp32_state():
    p32, p16 = torch.nn.Parameter(torch.zeros(1000)), torch.nn.Parameter(torch.zeros(1000))
    o32, o16 = make_optimizer("adamw", [p32], 1e-3), make_optimizer("adamw_bf16", [p16], 1e-3)
    for p, o in ((p32, o32), (p16, o16)):
        p.grad = torch.ones(1000)
        o.step()

    def nbytes(o):
        return sum(
            t.numel() * t.element_size() for s in o.state.values() for k, t in s.items() if k != "step"
        )

    assert nbytes(o16) * 2 == nbytes(o32)


def test_bad_input_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown optimizer 'sgd'; known: adamw, adamw_bf16"):
        GRPOConfig(optimizer="sgd")
    with pytest.raises(ValueError, match="unknown optimizer"):
        SFTConfig(optimizer="adam8")
    with pytest.raises(ValueError, match="float32"):
        AdamWBF16([torch.nn.Parameter(torch.zeros(4, dtype=torch.bfloat16))])
    with pytest.raises(ValueError, match="non-contiguous"):
        AdamWBF16([torch.nn.Parameter(torch.zeros(4, 4).t())])
    assert GRPOConfig(optimizer="adamw_bf16").optimizer == "adamw_bf16"


class _Tied(torch.nn.Module):
    """A tied embedding/head around one hidden layer: the embedding's gradient is sparse, the head's
    dense, both on one parameter (as `train.sequences` makes SmolLM2's)."""

    def __init__(self) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(3)
        self.embed = torch.nn.Embedding(300, 40, sparse=True)
        self.embed.weight.data = torch.randn(300, 40, generator=g) * 0.1
        self.mid = torch.nn.Linear(40, 40)
        self.mid.weight.data = torch.randn(40, 40, generator=g) * 0.15
        self.mid.bias.data = torch.randn(40, generator=g) * 0.1

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        logits = torch.tanh(self.mid(self.embed(ids))) @ self.embed.weight.T
        return torch.nn.functional.cross_entropy(logits.view(-1, 300), ids.roll(1, dims=1).reshape(-1))


def _tied_batches(n: int) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(5)
    return [torch.randint(0, 300, (4, 12), generator=g) for _ in range(n)]


def test_gradients_are_held_in_bf16_and_clipped_like_torch(small_chunks, path):
    """Backward leaves `p.grad` None (the hook moved it into a bf16 buffer, sparse rows included);
    the clipped norm and the step follow fp32 AdamW with torch's clipping."""
    ref, ours = _Tied(), _Tied()
    o32 = torch.optim.AdamW(ref.parameters(), lr=1e-2, weight_decay=0.0)
    o16 = AdamWBF16(ours.parameters(), lr=1e-2, weight_decay=0.0)
    for ids in _tied_batches(30):
        o32.zero_grad()
        ref(ids).backward()
        n32 = float(torch.nn.utils.clip_grad_norm_(ref.parameters(), 0.5))
        o32.step()
        o16.zero_grad()
        exact = _norm(ours, ids)  # fp32 gradients at the same parameters
        ours(ids).backward()
        assert all(p.grad is None for p in ours.parameters())
        assert optim.clip_grad_norm(o16, 0.5) == pytest.approx(exact, rel=1e-2)
        assert exact == pytest.approx(n32, rel=0.1)
        o16.step()
    held = o16._grads[ours.embed.weight]
    assert held.dtype == torch.bfloat16 and held.shape == (300, 40)
    with torch.no_grad():
        for a, b in zip(ref.parameters(), ours.parameters(), strict=True):
            assert float((a - b).norm()) < 0.02 * float(a.norm())


def test_micro_batches_accumulate(path):
    """Two backwards then one step equal (up to bf16 rounding) one backward of the summed loss."""
    one, two = _Tied(), _Tied()
    o1, o2 = AdamWBF16(one.parameters(), lr=1e-2), AdamWBF16(two.parameters(), lr=1e-2)
    start = [p.detach().clone() for p in one.parameters()]
    a, b = _tied_batches(2)
    (one(a) + one(b)).backward()
    two(a).backward()
    two(b).backward()
    assert optim.clip_grad_norm(o2, 1e9) == pytest.approx(optim.clip_grad_norm(o1, 1e9), rel=1e-2)
    o1.step()
    o2.step()
    with torch.no_grad():
        for p, q, p0 in zip(one.parameters(), two.parameters(), start, strict=True):
            assert float((p - q).norm()) < 0.05 * float((p - p0).norm())
    two(a).backward()  # the step consumed the gradients: nothing carries over
    assert optim.clip_grad_norm(o2, 1e9) == pytest.approx(_norm(two, a), rel=1e-2)


def _norm(module: torch.nn.Module, ids: torch.Tensor) -> float:
    """The fp32 gradient norm of `module`'s loss on `ids`, on a hook-free copy."""
    clone = _Tied()
    clone.load_state_dict(module.state_dict())
    clone.embed.sparse = False
    clone(ids).backward()
    return float(torch.nn.utils.clip_grad_norm_(clone.parameters(), 1e9))


def test_the_newest_optimizer_owns_the_gradients():
    m = _Tied()
    first = AdamWBF16(m.parameters())
    second = AdamWBF16(m.parameters())
    m(_tied_batches(1)[0]).backward()
    assert not first._filled and len(second._filled) == 3
    del first, second
    import gc

    gc.collect()
    m.embed.sparse = False
    m(_tied_batches(1)[0]).backward()  # no optimizer alive: plain `.grad` again
    assert all(p.grad is not None for p in m.parameters())


def _bits(t: torch.Tensor) -> torch.Tensor:
    return t.view(torch.int16).to(torch.int32)


def test_native_loops_match_the_torch_path(small_chunks, monkeypatch):
    """Same gradients, sums, clip and steps through both paths: held gradients bit for bit (the
    same roundings and noise offsets); moments 99 % identical and within a few bf16 steps (their
    fp32 values differ by float rounding, which can flip a stochastic rounding, and the flip
    carries into later steps); weights within 0.1 % of the distance moved."""
    assert native.kernels() is not None
    g = torch.Generator().manual_seed(3)
    start = torch.randn(5003, generator=g)
    grads = [[torch.randn(5003, generator=g) * 10.0**-k for k in range(3)] for _ in range(4)]
    runs = {}
    for name in ("native", "torch"):
        if name == "torch":
            monkeypatch.setattr(native, "kernels", lambda: None)
        p = torch.nn.Parameter(start.clone())
        opt = AdamWBF16([p], lr=1e-2, weight_decay=0.1)
        held, norms = [], []
        for step in grads:
            for gr in step:  # a fresh gradient, then two sums
                p.grad = gr.clone()
                opt._take(p)
            held.append(opt._grads[p].clone())
            norms.append(optim.clip_grad_norm(opt, 5.0))
            opt.step()
        runs[name] = (p.detach().clone(), held, norms, opt.state[p])
    (p_n, held_n, norms_n, st_n), (p_t, held_t, norms_t, st_t) = runs["native"], runs["torch"]
    assert all(torch.equal(a, b) for a, b in zip(held_n, held_t, strict=True))
    assert norms_n == pytest.approx(norms_t, rel=1e-5)
    for key in ("exp_avg", "exp_avg_sq"):
        diff = (_bits(st_n[key]) - _bits(st_t[key])).abs()
        assert int(diff.max()) <= 4 and float((diff == 0).float().mean()) > 0.99
    moved = float((p_t - start).norm())
    assert moved > 0.01 and float((p_n - p_t).norm()) < 1e-3 * moved


def test_native_ranges_split_anywhere():
    """Threads take arbitrary ranges: the loops over [0, n) in pieces equal one pass."""
    lib = native.kernels()
    assert lib is not None
    n, chunk = 10_007, 1000
    g = torch.Generator().manual_seed(5)
    noise = torch.randint(0, 1 << 16, (2 * chunk,), dtype=torch.int32, generator=g)
    grad = torch.randn(n, generator=g)
    start = torch.randn(n, generator=g).to(torch.bfloat16)
    outs = []
    for cuts in ([0, n], [0, 1, 999, 1000, 4321, n]):
        buf = start.clone()
        p, m, v = torch.randn(n, generator=torch.Generator().manual_seed(6)), buf.clone(), buf.abs()
        for a, b in itertools.pairwise(cuts):
            lib.agb_accumulate(buf.data_ptr(), grad.data_ptr(), a, b, 0, noise.data_ptr(), chunk, 77)
            lib.agb_step(
                p.data_ptr(),
                buf.data_ptr(),
                m.data_ptr(),
                v.data_ptr(),
                a,
                b,
                1e-3,
                0.9,
                0.999,
                1e-8,
                0.01,
                1e-2,
                0.05,
                0.5,
                noise.data_ptr(),
                chunk,
                11,
                12,
            )
        total = sum(lib.agb_sumsq(buf.data_ptr(), a, b) for a, b in itertools.pairwise(cuts))
        outs.append((buf, p, m, v, total))
    for x, y in zip(outs[0][:4], outs[1][:4], strict=True):
        assert torch.equal(x, y)
    assert outs[0][4] == pytest.approx(outs[1][4], rel=1e-6)  # fp32 lanes, other block edges
    assert outs[0][4] == pytest.approx(float((outs[0][0].double() ** 2).sum()), rel=1e-6)


def test_without_a_compiler_the_torch_path_runs_after_one_warning(monkeypatch, caplog):
    monkeypatch.setenv("CC", "/nonexistent/cc")
    native.kernels.cache_clear()
    try:
        assert native.kernels() is None
        assert "could not build its native loops" in caplog.text and "torch path" in caplog.text
        p = torch.nn.Parameter(torch.ones(10))
        opt = AdamWBF16([p], lr=0.1)
        p.grad = torch.ones(10)
        opt.step()
        assert float(p.detach().max()) < 1.0
    finally:
        native.kernels.cache_clear()


def test_a_sparse_gradient_adds_into_a_dense_one(path):
    """The shared-prefix backward's second pass gives a tied embedding a sparse gradient on top of
    the first pass's dense one."""
    p = torch.nn.Parameter(torch.zeros(50, 8))
    opt = AdamWBF16([p], lr=0.1)
    dense = torch.randn(50, 8, generator=torch.Generator().manual_seed(0))
    rows = torch.tensor([[3, 7, 3]])
    sparse = torch.sparse_coo_tensor(rows, torch.ones(3, 8), (50, 8), check_invariants=True)
    p.grad = dense.clone()
    opt._take(p)
    p.grad = sparse
    opt._take(p)
    want = dense + sparse.to_dense()
    assert torch.allclose(opt._grads[p].float(), want, rtol=2**-7, atol=1e-6)
