"""The LLM world model for tools without known semantics: validation, patches, caching, faults."""

from __future__ import annotations

import asyncio
import json

import pytest

from agentgym.backends.base import Episode
from agentgym.backends.world_model import WorldModelBackend
from agentgym.spec.tool import Provenance, Taxonomy, ToolAnnotations, ToolSpec
from agentgym.world.cache import ReplayCache
from agentgym.world.faults import FaultConfig, FaultRates
from agentgym.world.state import WorldState


def tool(name, ro=None, output=None):
    return ToolSpec(
        name=f"wx__{name}",
        description="Weather and alerts.",
        output_schema=output,
        input_schema={"type": "object", "properties": {"city": {"type": "string"}}},
        annotations=ToolAnnotations(read_only_hint=ro),
        provenance=Provenance(source="crawl", server="wx", original_name=name),
        taxonomy=Taxonomy(category="Weather", domain="wx"),
    )


FORECAST = tool(
    "get_forecast",
    output={"type": "object", "required": ["temp_c"], "properties": {"temp_c": {"type": "number"}}},
)
SUBSCRIBE = tool("subscribe_alerts", ro=False)


def episode(cache=None, faults=None):
    return Episode.new(WorldState("2026-03-02T09:00:00Z", {}, "root"), 7, faults or FaultConfig(), cache)


def reply(result, patch=()):
    return json.dumps({"result": result, "state_patch": list(patch)})


def run(backend, t, args, ep):
    return asyncio.run(backend.call(t, args, ep))


def test_valid_result_is_returned_and_history_reaches_the_next_prompt(scripted):
    m = scripted([reply({"temp_c": 21.5})])
    b, ep = WorldModelBackend(m), episode()
    r = run(b, FORECAST, {"city": "Oslo"}, ep)
    assert r.ok and r.structured == {"temp_c": 21.5}
    run(b, FORECAST, {"city": "Lima"}, ep)
    assert 'wx__get_forecast({"city":"Oslo"})' in m.prompts[1] and "READ-ONLY" in m.prompts[1]


def test_schema_violations_are_retried_then_a_typed_error(scripted):
    m = scripted([reply({"temp": "warm"}), reply({"temp_c": 3})])
    r = run(WorldModelBackend(m), FORECAST, {"city": "Oslo"}, episode())
    assert r.ok and "rejected" in m.prompts[1]
    m2 = scripted(["not json at all"])
    ep = episode()
    r = run(WorldModelBackend(m2, retries=1), FORECAST, {"city": "Oslo"}, ep)
    assert (
        r.error == "invalid_output"
        and len(m2.prompts) == 2
        and ep.extras["world_model"]["invalid_output"] == 1
    )


def test_read_only_tools_may_not_patch_and_writes_stay_in_namespace(scripted):
    put = {"op": "put", "collection": "wx.subscriptions", "record": {"id": "sub_1", "city": "Oslo"}}
    ep = episode()
    run(WorldModelBackend(scripted([reply({"temp_c": 1}, [put])])), FORECAST, {"city": "Oslo"}, ep)
    assert ep.state.get("wx.subscriptions", "sub_1") is None
    assert ep.extras["world_model"]["patches_refused_read_only"] == 1
    foreign = {"op": "put", "collection": "bank.accounts", "record": {"id": "a1", "balance": 1e9}}
    r = run(
        WorldModelBackend(scripted([reply({"ok": True}, [put, foreign])])), SUBSCRIBE, {"city": "Oslo"}, ep
    )
    assert r.ok and ep.state.get("wx.subscriptions", "sub_1") == {"id": "sub_1", "city": "Oslo"}
    assert ep.state.get("bank.accounts", "a1") is None and ep.extras["world_model"]["patch_ops_refused"] == 1
    assert ep.state.log[-1][:2] == ("wx.subscriptions", "sub_1")


def test_replay_cache_makes_reruns_exact_without_the_model(scripted):
    put = {"op": "put", "collection": "wx.subscriptions", "record": {"id": "sub_1", "city": "Oslo"}}
    cache = ReplayCache()
    m = scripted([reply({"ok": True}, [put])])
    a = episode(cache)
    run(WorldModelBackend(m), SUBSCRIBE, {"city": "Oslo"}, a)
    b = episode(cache)
    r = run(WorldModelBackend(scripted(["the model must not be asked"])), SUBSCRIBE, {"city": "Oslo"}, b)
    assert r.cached and r.structured == {"ok": True} and b.state.lineage == a.state.lineage
    assert b.state.get("wx.subscriptions", "sub_1") is not None


def test_faults_apply_to_the_world_model_too(scripted):
    ep = episode(faults=FaultConfig(default=FaultRates(server_error=1.0)))
    r = run(WorldModelBackend(scripted([reply(1)])), FORECAST, {"city": "Oslo"}, ep)
    assert r.error == "server_error" and r.injected


@pytest.mark.slow
def test_embedded_model_as_world_model():
    from agentgym.models import SamplingParams, load_model

    b = WorldModelBackend(load_model("embedded"), sampling=SamplingParams(max_new_tokens=96))
    ep = episode()
    r = run(b, FORECAST, {"city": "Oslo"}, ep)
    # the 135M model rarely answers in schema: either a valid result or a typed error, never a crash
    assert (r.ok and r.structured["temp_c"] is not None) or r.error == "invalid_output"
    assert ep.extras["world_model"]["model_calls"] >= 1
