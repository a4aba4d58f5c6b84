"""The shipped synthetic repository (`tools/synthetic/`): large enough, in sync with the taxonomy,
every schema valid, and every tool's example run once on the simulator."""

from __future__ import annotations

import json
import os
import random
from concurrent.futures import ProcessPoolExecutor

import pytest
from jsonschema import Draft202012Validator

from agentgym.jsonutil import dumps
from agentgym.paths import tools_dir
from agentgym.repository.store import FILE, iter_domain_dicts
from agentgym.repository.synth.build import build_domain
from agentgym.repository.synth.generate import check_domain
from agentgym.repository.synth.taxonomy import load_taxonomy
from agentgym.schema import check_schema
from agentgym.spec.world import DomainSpec

ROOT = tools_dir() / "synthetic"


@pytest.fixture(scope="module")
def shipped() -> list[dict]:
    return list(iter_domain_dicts(ROOT / FILE))


@pytest.fixture(scope="module")
def report() -> dict:
    return json.loads((ROOT / "report.json").read_text())


def test_size_meets_the_k2_scale(shipped, report):
    tools = sum(len(d["tools"]) for d in shipped)
    categories = {d["category"] for d in shipped}
    assert tools >= 20_000
    assert len(shipped) >= 500
    assert len(categories) >= 25
    assert (report["tools"], report["domains"]) == (tools, len(shipped))
    assert report["rejected"] == []


def test_in_sync_with_the_taxonomy(shipped, report):
    """Every taxonomy domain is shipped and nothing else; a seeded sample rebuilds byte for byte, so
    an edit to the taxonomy or the builder without `agentgym tools generate` fails here."""
    taxonomy = {bp.name: bp for c in load_taxonomy().categories for bp in c.domains}
    assert {d["name"] for d in shipped} == set(taxonomy)
    for d in random.Random(0).sample(shipped, 25):
        rebuilt = build_domain(taxonomy[d["name"]], report["seed"])
        assert dumps(rebuilt.model_dump(mode="json", exclude_defaults=True)) == dumps(d), d["name"]


def test_every_schema_is_valid_json_schema_with_a_valid_example(shipped):
    checked = 0
    for d in shipped:
        for t in d["tools"]:
            assert check_schema(t["input_schema"]) is None, t["name"]
            assert check_schema(t.get("output_schema") or {}) is None, t["name"]
            (example,) = t["input_schema"]["examples"][:1]
            Draft202012Validator(t["input_schema"]).validate(example)
            assert t["semantics"] is not None, t["name"]
            assert t["provenance"]["source"] == "synthetic"
            checked += 1
    assert checked >= 20_000


def _check_raw(raw: dict) -> tuple[int, list[str]]:
    domain = DomainSpec.model_validate(raw)
    return len(domain.tools), check_domain(domain)


@pytest.mark.slow
def test_every_tool_executes_on_the_simulator(shipped):
    """One call of every synthetic tool through the simulated backend (input validation, engine,
    output-schema validation) on a fresh copy of its domain's seed world; on every core."""
    with ProcessPoolExecutor(os.cpu_count() or 1) as pool:
        results = list(pool.map(_check_raw, shipped, chunksize=16))
    failures = [p for _, problems in results for p in problems]
    assert failures == []
    assert sum(n for n, _ in results) == sum(len(d["tools"]) for d in shipped) >= 20_000
