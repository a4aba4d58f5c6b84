"""The embedding model (really loaded, offline) and the repository map it draws."""

from __future__ import annotations

import csv
import json
import os
import struct
import subprocess
import sys
from collections import Counter

import numpy as np
import pytest

from agentgym.repository.embed import TextEmbedder, model_path, tool_text
from agentgym.repository.map import palette, stratified_sample, tool_map
from agentgym.repository.store import ToolRepository, save_domains
from agentgym.spec.tool import Provenance, Taxonomy, ToolSpec
from agentgym.spec.world import DomainSpec

S = {"type": "string"}


def test_stratified_sample_is_proportional_seeded_and_covers_small_groups():
    items = [("big", i) for i in range(90)] + [("mid", i) for i in range(9)] + [("tiny", 0)]
    pick = stratified_sample(items, lambda it: it[0], 20, seed=3)
    counts = Counter(k for k, _ in pick)
    assert len(pick) == 20 and counts["tiny"] == 1 and counts["big"] >= 17 and counts["mid"] >= 1
    assert pick == stratified_sample(items, lambda it: it[0], 20, seed=3)
    assert pick != stratified_sample(items, lambda it: it[0], 20, seed=4)
    assert pick == sorted(pick, key=items.index)  # original order kept
    assert stratified_sample(items, lambda it: it[0], 500, seed=0) == items


def test_palette_has_distinct_colours():
    assert len(set(palette(30))) == 30


def test_tool_text():
    assert tool_text({"name": "cal__createEvent", "description": "Create an\n event."}) == (
        "cal create event: Create an event."
    )


@pytest.mark.slow
def test_model_loads_offline_and_embeds_meaningfully(tmp_path):
    # a fresh process with the hub switched off and an empty hub cache: the files must come from the package
    code = (
        "import json; from agentgym.repository.embed import TextEmbedder\n"
        "e = TextEmbedder(cache=__import__('pathlib').Path(r'%s'))\n"
        "v = e.embed(['Create a calendar event for a meeting', 'Schedule a new meeting in the calendar',"
        " 'Get the current price of bitcoin'])\n"
        "print(json.dumps({'shape': list(v.shape), 'sim': (v @ v.T).tolist()}))"
    ) % (tmp_path / "emb.sqlite")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    res = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    out = json.loads(res.stdout.strip().splitlines()[-1])
    sim = np.array(out["sim"])
    assert out["shape"] == [3, 384]
    assert np.allclose(np.diag(sim), 1.0, atol=1e-5)  # unit vectors
    assert sim[0, 1] > 0.5 and sim[0, 1] > sim[0, 2] + 0.3 and sim[1, 2] < 0.3
    assert (model_path() / "model.safetensors").is_file()


def small_repo(root, per_domain=6):
    """Four real and three synthetic domains over four categories."""
    topics = {
        ("weather_srv", "crawl", "Weather"): "weather forecast temperature rain wind city",
        ("crypto_srv", "crawl", "Finance"): "bitcoin price wallet token exchange trade",
        ("git_srv", "live", "Development"): "git repository commit branch pull request code",
        ("notes_srv", "crawl", "Productivity"): "note folder tag pin archive text",
        ("shop_syn", "synthetic", "Commerce"): "order product cart checkout shipment refund",
        ("clinic_syn", "synthetic", "Health"): "patient appointment doctor prescription visit clinic",
        ("tasks_syn", "synthetic", "Productivity"): "task project deadline assignee board sprint",
    }
    by_source: dict[str, list[DomainSpec]] = {}
    for (server, source, category), words in topics.items():
        w = words.split()
        tools = tuple(
            ToolSpec(name=f"{server}__{verb}_{w[i % len(w)]}",
                     description=f"{verb.title()} the {w[i % len(w)]} and {w[(i + 1) % len(w)]} of the {w[0]} service.",
                     input_schema={"type": "object", "properties": {f"{w[i % len(w)]}_id": S}},
                     provenance=Provenance(source=source, server=server, original_name=f"{verb}_{w[i % len(w)]}"),
                     taxonomy=Taxonomy(category=category, domain=server))
            for i, verb in enumerate(("get", "list", "create", "update", "delete", "search")[:per_domain])
        )  # fmt: skip
        by_source.setdefault(source, []).append(
            DomainSpec(name=server, category=category, entities=(), tools=tools)
        )
    for source, domains in by_source.items():
        save_domains(source, domains, root)
    return ToolRepository.load(root=root)


@pytest.mark.slow
def test_map_png_and_csv(tmp_path):
    repo = small_repo(tmp_path / "tools")  # 24 real and 18 synthetic tools
    embedder = TextEmbedder(cache=tmp_path / "emb.sqlite")
    seen = []
    m = tool_map(repo, tmp_path / "out" / "map.png", n_per_source=15, seed=0,
                 progress=lambda stage, done, total: seen.append((stage, done, total)), embedder=embedder)  # fmt: skip
    assert (m.real, m.synthetic, m.real_total, m.synthetic_total, m.categories) == (15, 15, 24, 18, 6)
    png = m.png.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and png[12:16] == b"IHDR"
    assert struct.unpack(">II", png[16:24]) == (1600, 1100)
    with open(m.csv) as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 30 and set(rows[0]) == {"name", "source", "group", "category", "x", "y"}
    assert Counter(r["group"] for r in rows) == {"real": 15, "synthetic": 15}
    assert all(np.isfinite(float(r["x"])) and np.isfinite(float(r["y"])) for r in rows)
    assert ("embed", 30, 30) in seen and ("project", 1, 1) in seen
    # the same seed gives the same map; the embeddings now come from the cache
    again = tool_map(repo, tmp_path / "again.png", n_per_source=15, seed=0, embedder=embedder)
    assert again.csv.read_text() == m.csv.read_text()
