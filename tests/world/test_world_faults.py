"""agentgym.world.faults (FaultInjector, FaultConfig) and agentgym.world.cache (ReplayCache)."""

from __future__ import annotations

import random
from collections import Counter

import pytest
from pydantic import ValidationError

from agentgym.world.cache import ReplayCache
from agentgym.world.engine import PageShape
from agentgym.world.faults import NO_FAULTS, Fault, FaultConfig, FaultInjector, FaultRates

MIXED = FaultRates(
    timeout=0.1, rate_limited=0.1, server_error=0.1, empty_result=0.2, partial_result=0.2, page_size=3
)
TOOLS = ["cal__list_events", "cal__get_event", "shop__search", "cal__create_event"]


def decisions(inj: FaultInjector, calls: list[tuple[str, bool]]) -> list[tuple]:
    out = []
    for tool, shapes in calls:
        f = inj.draw(tool, shapes)
        shape = None if f.shape is None else (f.shape.page_size, f.shape.partial, f.shape.empty)
        out.append((f.error, f.message, shape))
    return out


def call_sequence(n: int, seed: int = 1) -> list[tuple[str, bool]]:
    rng = random.Random(seed)
    return [(rng.choice(TOOLS), rng.random() < 0.5) for _ in range(n)]


# ---- rates and config ------------------------------------------------------------------------


def test_rates_default_zero_and_inactive() -> None:
    r = FaultRates()
    assert (r.timeout, r.rate_limited, r.server_error, r.empty_result, r.partial_result, r.page_size) == (
        0,
        0,
        0,
        0,
        0,
        None,
    )
    assert r.active is False
    assert FaultRates(page_size=2).active is True
    assert FaultRates(partial_result=0.01).active is True
    assert NO_FAULTS.rates_for("anything") == FaultRates()


@pytest.mark.parametrize(
    "kw",
    [
        {"timeout": 0.5, "server_error": 0.6},
        {"timeout": 0.4, "rate_limited": 0.4, "server_error": 0.3},
        {"empty_result": 0.6, "partial_result": 0.5},
        {"timeout": 1.1},
        {"rate_limited": -0.1},
        {"page_size": 0},
    ],
)
def test_invalid_rates_rejected(kw: dict) -> None:
    with pytest.raises(ValidationError):
        FaultRates(**kw)


def test_rates_summing_to_exactly_one_allowed() -> None:
    r = FaultRates(timeout=0.5, rate_limited=0.25, server_error=0.25, empty_result=0.5, partial_result=0.5)
    assert r.active


def test_per_tool_glob_first_match_wins() -> None:
    lists = FaultRates(empty_result=1.0)
    cal = FaultRates(timeout=1.0)
    default = FaultRates(server_error=0.5)
    cfg = FaultConfig(default=default, per_tool={"cal__list_*": lists, "cal__*": cal})
    assert cfg.rates_for("cal__list_events") == lists
    assert cfg.rates_for("cal__get_event") == cal
    assert cfg.rates_for("shop__list_items") == default
    assert cfg.rates_for("Cal__list_events") == default  # case-sensitive
    flipped = FaultConfig(default=default, per_tool={"cal__*": cal, "cal__list_*": lists})
    assert flipped.rates_for("cal__list_events") == cal
    qmark = FaultConfig(per_tool={"cal__get_?vent": cal})
    assert qmark.rates_for("cal__get_event") == cal
    assert qmark.rates_for("cal__get_events") == FaultRates()


def test_config_round_trips_and_hashes() -> None:
    cfg = FaultConfig(default=MIXED, per_tool={"a*": FaultRates(timeout=1.0)})
    back = FaultConfig.model_validate_json(cfg.model_dump_json())
    assert back == cfg
    assert hash(back) == hash(cfg)
    assert list(back.per_tool) == ["a*"]


# ---- injector ------------------------------------------------------------------------------


def test_same_seed_same_decisions() -> None:
    cfg = FaultConfig(default=MIXED)
    calls = call_sequence(500)
    a = decisions(FaultInjector(cfg, 42), calls)
    b = decisions(FaultInjector(cfg, 42), calls)
    assert a == b
    c = decisions(FaultInjector(cfg, 43), calls)
    assert a != c
    # the decisions are not trivial: several kinds occur
    kinds = {d[0] for d in a} | {("shape", d[2]) for d in a if d[2] is not None}
    assert {"timeout", "rate_limited", "server_error", None} <= kinds
    assert ("shape", (3, False, True)) in kinds and ("shape", (3, True, False)) in kinds


def test_seed_none_is_seed_zero() -> None:
    cfg = FaultConfig(default=MIXED)
    calls = call_sequence(200)
    assert decisions(FaultInjector(cfg, None), calls) == decisions(FaultInjector(cfg, 0), calls)


def test_no_faults_config_never_faults() -> None:
    assert NO_FAULTS.active is False
    inj = FaultInjector(NO_FAULTS, 7)
    for tool, shapes in call_sequence(300):
        f = inj.draw(tool, shapes)
        assert f.error is None and f.shape is None and f.message == ""


def test_config_active() -> None:
    assert FaultConfig(default=FaultRates(timeout=0.1)).active is True
    assert FaultConfig(per_tool={"x": FaultRates(page_size=2)}).active is True
    assert FaultConfig(per_tool={"x": FaultRates()}).active is False


def test_zero_rates_never_fault_but_consume_two_draws() -> None:
    # another tool has rates, so the injector draws; the zero-rate tool still takes its two numbers
    inj = FaultInjector(FaultConfig(per_tool={"other": FaultRates(timeout=0.5)}), 7)
    for _tool, shapes in call_sequence(300):
        f = inj.draw("zero_rate_tool", shapes)
        assert f.error is None and f.shape is None and f.message == ""
    ref = random.Random(7)
    for _ in range(600):
        ref.random()
    assert inj.rng.random() == ref.random()


def test_decisions_follow_the_two_draws() -> None:
    # u decides transient faults, v decides shaping; computed independently from the same seed
    rates = FaultRates(timeout=0.2, rate_limited=0.1, empty_result=0.3, partial_result=0.25)
    inj = FaultInjector(FaultConfig(default=rates), 99)
    ref = random.Random(99)
    for _ in range(400):
        u, v = ref.random(), ref.random()
        f = inj.draw("t", True)
        if u < 0.2:
            assert f.error == "timeout" and f.shape is None
        elif u < 0.3:
            assert f.error == "rate_limited"
        else:
            assert f.error is None
            assert f.shape is not None
            assert f.shape.empty is (v < 0.3)
            assert f.shape.partial is (0.3 <= v < 0.55)
            assert f.shape.page_size is None


def test_other_tool_rates_do_not_shift_draws() -> None:
    a_rates = FaultRates(timeout=0.2, server_error=0.1, empty_result=0.3, partial_result=0.3)
    without_b = FaultConfig(per_tool={"A": a_rates})
    with_b = FaultConfig(per_tool={"A": a_rates, "B": FaultRates(rate_limited=0.5, empty_result=0.5)})
    rng = random.Random(5)
    calls = [(rng.choice(["A", "B", "B"]), rng.random() < 0.7) for _ in range(600)]
    d1 = decisions(FaultInjector(without_b, 11), calls)
    d2 = decisions(FaultInjector(with_b, 11), calls)
    a_idx = [i for i, (t, _) in enumerate(calls) if t == "A"]
    b_idx = [i for i, (t, _) in enumerate(calls) if t == "B"]
    assert [d1[i] for i in a_idx] == [d2[i] for i in a_idx]
    # B really is faulted in one run and not in the other
    assert all(d1[i] == (None, "", None) for i in b_idx)
    assert any(d2[i][0] == "rate_limited" for i in b_idx)
    assert any(d1[i][0] is not None for i in a_idx)


def test_transient_fault_without_result_shaping() -> None:
    inj = FaultInjector(FaultConfig(default=FaultRates(timeout=1.0)), 3)
    f = inj.draw("cal__create_event", False)
    assert f.error == "timeout"
    assert "did not answer" in f.message and "no effect" in f.message
    assert (
        FaultInjector(FaultConfig(default=FaultRates(rate_limited=1.0)), 3)
        .draw("x", True)
        .message.startswith("rate limit exceeded")
    )
    assert (
        "500" in FaultInjector(FaultConfig(default=FaultRates(server_error=1.0)), 3).draw("x", False).message
    )


def test_shaping_only_when_results_shape() -> None:
    cfg = FaultConfig(default=FaultRates(empty_result=1.0, page_size=4))
    f = FaultInjector(cfg, 1).draw("list", True)
    assert f.error is None
    assert f.shape == PageShape(page_size=4, partial=False, empty=True)
    g = FaultInjector(cfg, 1).draw("create", False)
    assert g == Fault()
    p = FaultInjector(FaultConfig(default=FaultRates(partial_result=1.0)), 1).draw("list", True)
    assert p.shape == PageShape(page_size=None, partial=True, empty=False)


def test_transient_distribution_matches_rates() -> None:
    rates = FaultRates(timeout=0.1, rate_limited=0.2, server_error=0.05)
    inj = FaultInjector(FaultConfig(default=rates), 2024)
    n = 20_000
    counts = Counter(inj.draw("t", False).error for _ in range(n))
    assert set(counts) == {"timeout", "rate_limited", "server_error", None}
    for kind, p in (("timeout", 0.1), ("rate_limited", 0.2), ("server_error", 0.05), (None, 0.65)):
        assert abs(counts[kind] / n - p) < 0.015, (kind, counts[kind])


def test_shaping_distribution_matches_rates() -> None:
    inj = FaultInjector(FaultConfig(default=FaultRates(empty_result=0.3, partial_result=0.2)), 77)
    n = 20_000
    shapes = [inj.draw("t", True).shape for _ in range(n)]
    empty = sum(s.empty for s in shapes)
    partial = sum(s.partial for s in shapes)
    assert not any(s.empty and s.partial for s in shapes)
    assert abs(empty / n - 0.3) < 0.015
    assert abs(partial / n - 0.2) < 0.015


# ---- replay cache --------------------------------------------------------------------------


def test_cache_key_ignores_dict_key_order() -> None:
    k1 = ReplayCache.key("lin", "t", {"a": 1, "b": {"x": [1, {"p": 1, "q": 2}], "y": 2}})
    k2 = ReplayCache.key("lin", "t", {"b": {"y": 2, "x": [1, {"q": 2, "p": 1}]}, "a": 1})
    assert k1 == k2
    assert isinstance(k1, bytes)
    assert ReplayCache.key("lin2", "t", {"a": 1}) != ReplayCache.key("lin", "t", {"a": 1})
    assert ReplayCache.key("lin", "t2", {"a": 1}) != ReplayCache.key("lin", "t", {"a": 1})
    assert ReplayCache.key("lin", "t", {"a": 2}) != ReplayCache.key("lin", "t", {"a": 1})
    assert ReplayCache.key("lin", "t", {"a": [1, 2]}) != ReplayCache.key("lin", "t", {"a": [2, 1]})


def test_cache_hits_misses_and_lru_eviction() -> None:
    c = ReplayCache(max_entries=2)
    ka, kb, kc = (ReplayCache.key("l", t, {}) for t in "abc")
    assert c.get(ka) is None
    assert (c.hits, c.misses) == (0, 1)
    c.put(ka, {"r": "a"})
    c.put(kb, {"r": "b"})
    assert len(c) == 2
    assert c.get(ka) == {"r": "a"}  # a is now most recent
    assert (c.hits, c.misses) == (1, 1)
    c.put(kc, {"r": "c"})  # evicts b, the least recently used
    assert len(c) == 2
    assert c.get(kb) is None
    assert c.get(ka) == {"r": "a"}
    assert c.get(kc) == {"r": "c"}
    assert (c.hits, c.misses) == (3, 2)


def test_cache_put_refreshes_recency_and_value() -> None:
    c = ReplayCache(max_entries=2)
    c.put(b"a", 1)
    c.put(b"b", 2)
    c.put(b"a", 10)  # overwrite: a becomes most recent
    c.put(b"c", 3)  # evicts b
    assert len(c) == 2
    assert c.get(b"a") == 10
    assert c.get(b"b") is None
    assert c.get(b"c") == 3


def test_cache_default_size_and_zero_size() -> None:
    assert ReplayCache().max_entries == 50_000
    c = ReplayCache(max_entries=0)
    c.put(b"k", 1)
    assert len(c) == 0
    assert c.get(b"k") is None
    big = ReplayCache(max_entries=100)
    for i in range(250):
        big.put(str(i).encode(), i)
    assert len(big) == 100
    assert big.get(b"149") is None and big.get(b"150") == 150 and big.get(b"249") == 249
