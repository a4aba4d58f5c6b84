"""The decode step's few-row linear (`agentgym.models.few_rows`, `agentgym/native/few_rows.c`)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from test_kv_cache import three_greedy_rows

from agentgym import native
from agentgym.models import few_rows
from agentgym.models.embedded import prepare
from agentgym.models.few_rows import MAX_ROWS, few_row_linears, linear
from agentgym.models.transformers_model import TransformersChatModel


def _avx512() -> bool:
    try:
        return " avx512f " in Path("/proc/cpuinfo").read_text().split("\n\n")[0] + " "
    except OSError:
        return False


needs_loop = pytest.mark.skipif(not _avx512(), reason="the loop runs only with AVX-512")


@needs_loop
def test_the_loop_builds_here_on_torchs_openmp_runtime():
    lib = native.few_rows()
    assert lib is not None, "the few-row loop did not build or was refused (see the warning)"
    assert lib.agl_omp_symbol() == native._torch_omp_symbol()


@needs_loop
@pytest.mark.parametrize("rows", range(1, MAX_ROWS + 1))
@pytest.mark.parametrize(
    ("n", "k"), [(49152 // 8, 576), (192, 576), (576, 1536), (7, 5), (101, 33), (64, 16)]
)
def test_equals_torch_linear(rows, n, k):
    g = torch.Generator().manual_seed(rows * 1000 + n + k)
    x, w, b = torch.randn(rows, k, generator=g), torch.randn(n, k, generator=g), torch.randn(n, generator=g)
    with torch.no_grad():
        for bias in (None, b):
            got, want = linear(x, w, bias), F.linear(x, w, bias)
            assert got.shape == want.shape
            torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5 * k**0.5)
    # leading dimensions are kept, and one thread gives the same sums as two
    with torch.no_grad():
        y3 = linear(x[:, None, :], w)
        torch.set_num_threads(1)
        try:
            y1 = linear(x, w)
        finally:
            torch.set_num_threads(2)
    assert y3.shape == (rows, 1, n)
    assert torch.equal(y3[:, 0], y1)


def test_everything_else_goes_to_torch(monkeypatch):
    """Gradients on, too many rows, another dtype, a strided weight: `F.linear`'s exact output."""
    calls = []
    lib = native.few_rows()
    if lib is not None:

        class Spy:
            def __getattr__(self, name):
                calls.append(name)
                return getattr(lib, name)

        monkeypatch.setattr(native, "few_rows", lambda: Spy())
    x, w = torch.randn(4, 32), torch.randn(96, 32)
    cases = [
        (x.requires_grad_(), w, True),
        (torch.randn(MAX_ROWS + 1, 32), w, False),
        (x.detach().bfloat16(), w.bfloat16(), False),
        (x.detach(), torch.randn(32, 96).t(), False),
    ]
    for xi, wi, grad in cases:
        with torch.set_grad_enabled(grad):
            assert torch.equal(linear(xi, wi), F.linear(xi, wi))
    assert calls == []
    y = linear(x, w)  # grad mode on, x requires grad: still torch's, and differentiable
    y.sum().backward()
    assert x.grad is not None


@needs_loop
def test_the_context_patches_linears_and_restores_them():
    net = torch.nn.Sequential(torch.nn.Linear(40, 300), torch.nn.GELU(), torch.nn.Linear(300, 70, bias=False))
    x = torch.randn(3, 40)
    with torch.no_grad():
        want = net(x)
        with few_row_linears(net):
            assert all("forward" in m.__dict__ for m in net if isinstance(m, torch.nn.Linear))
            got = net(x)
            with few_row_linears(net):  # nested: the outer context restores
                pass
            assert all("forward" in m.__dict__ for m in net if isinstance(m, torch.nn.Linear))
        assert all("forward" not in m.__dict__ for m in net)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def test_without_the_loop_the_context_changes_nothing(monkeypatch):
    monkeypatch.setattr(native, "few_rows", lambda: None)
    net = torch.nn.Linear(8, 8)
    with few_row_linears(net):
        assert "forward" not in net.__dict__


@pytest.mark.slow
@needs_loop
def test_decoding_the_embedded_model_matches_torchs_linear(monkeypatch):
    """SmolLM2, greedy rows of different lengths (the batch shrinks from 3 rows to 1): the same tokens
    and log-probabilities with the loop as with `F.linear`."""
    model = TransformersChatModel.from_pretrained(prepare(log=lambda *a: None), name="fr", prefix_cache_mb=0)
    try:
        used = []
        real = few_rows.linear

        def counting(*a, **kw):
            used.append(a[0].shape)
            return real(*a, **kw)

        monkeypatch.setattr(few_rows, "linear", counting)
        ours = three_greedy_rows(model)
        assert used, "the decode steps did not go through the few-row linear"
        monkeypatch.setattr(native, "few_rows", lambda: None)
        theirs = three_greedy_rows(model)
    finally:
        model.close()
    for (ids_a, lp_a), (ids_b, lp_b) in zip(ours, theirs, strict=True):
        assert ids_a == ids_b
        assert lp_a == pytest.approx(lp_b, abs=1e-4)
