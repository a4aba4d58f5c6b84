"""Repository statistics and diversity metrics, checked against numbers worked out by hand."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from agentgym.cli.repo_cmds import search_cmd, stats_cmd
from agentgym.repository.diversity import (
    distinct_n,
    diversity,
    entropy_bits,
    jaccard,
    mean_cosine_distance,
    naming_style,
    near_duplicate_flags,
    text_tokens,
    verb_first,
)
from agentgym.repository.stats import nesting_depth, parameter_type, repository_stats, required_count
from agentgym.repository.store import ToolRepository, save_domains
from agentgym.spec.tool import Provenance, Taxonomy, ToolAnnotations, ToolSemantics, ToolSpec
from agentgym.spec.world import DomainSpec, EntitySpec

S, INT = {"type": "string"}, {"type": "integer"}


def tool(server, name, source, category, domain, props=None, required=(), semantics=None, ro=None, desc=None):
    return ToolSpec(
        name=f"{server}__{name}", description=desc or f"{name.replace('_', ' ')} in {domain}",
        input_schema={"type": "object", "properties": props or {}, "required": list(required)},
        annotations=ToolAnnotations(read_only_hint=ro),
        provenance=Provenance(source=source, server=server, original_name=name),
        taxonomy=Taxonomy(category=category, domain=domain), semantics=semantics,
    )  # fmt: skip


def tiny_repo(root):
    """Five tools: crawl 2 (Dev/git), live 1 (Dev/ci), synthetic 2 (Commerce/shop, executable)."""
    nested = {"type": "object", "properties": {"lang": S, "tags": {"type": "array", "items": S}}}
    crawl = DomainSpec(name="alpha", category="Dev", entities=(), tools=(
        tool("alpha", "get_repo", "crawl", "Dev", "git", {"owner": S, "repo": S}, ["owner", "repo"], ro=True),
        tool("alpha", "search_code", "crawl", "Dev", "git", {"query": S, "filters": nested}, ["query"]),
    ))  # fmt: skip
    live = DomainSpec(name="beta", category="Dev", entities=(), tools=(
        tool("beta", "runPipeline", "live", "Dev", "ci", {"id": {"type": ["string", "null"]}}),
    ))  # fmt: skip
    orders = EntitySpec(collection="shop.orders", id_prefix="ord",
                        record_schema={"type": "object", "properties": {"id": S}})  # fmt: skip
    synth = DomainSpec(name="shop", category="Commerce", entities=(orders,), tools=(
        tool("shop", "create_order", "synthetic", "Commerce", "shop", {"item": S, "qty": INT}, ["item", "qty"],
             ToolSemantics(operation="create", collection="shop.orders")),
        tool("shop", "list_orders", "synthetic", "Commerce", "shop", {},
             semantics=ToolSemantics(operation="list", collection="shop.orders")),
    ))  # fmt: skip
    save_domains("crawl", [crawl], root)
    save_domains("live", [live], root)
    save_domains("synthetic", [synth], root)
    return ToolRepository.load(root=root)


def test_stats_of_a_tiny_repository(tmp_path):
    s = repository_stats(tiny_repo(tmp_path))
    assert s["total"] == 5
    assert s["by_source"] == {"starter": 0, "crawl": 2, "live": 1, "synthetic": 2}
    assert (s["real"], s["synthetic"]) == (3, 2)
    assert s["servers"] == {"starter": 0, "crawl": 1, "live": 1, "synthetic": 1}
    assert (s["categories"], s["domains"]) == (2, 3)
    assert s["by_category"]["Dev"] == {"tools": 3, "domains": 2, "crawl": 2, "live": 1}
    assert s["by_category"]["Commerce"] == {"tools": 2, "domains": 1, "synthetic": 2}
    assert list(s["by_category"]) == ["Dev", "Commerce"]  # largest first
    every = s["schema"]["all"]
    # parameters 2, 2, 1, 2, 0; required 2, 1, 0, 2, 0; depth 1, 3, 1, 1, 1
    assert every["parameters"]["mean"] == pytest.approx(1.4) and every["parameters"]["max"] == 2
    assert every["parameters"]["histogram"]["2"] == 3 and every["parameters"]["histogram"]["0"] == 1
    assert every["required"]["mean"] == pytest.approx(1.0)
    assert every["depth"]["max"] == 3 and every["depth"]["histogram"]["1"] == 4
    assert every["types"] == {"string": 5, "object": 1, "integer": 1}
    assert s["schema"]["crawl"]["parameters"]["mean"] == 2.0 and "starter" not in s["schema"]
    sem = s["semantics"]
    assert (sem["known"], sem["unknown"], sem["share_known"]) == (2, 3, 0.4)
    assert sem["by_source"]["synthetic"]["share_known"] == 1.0 and sem["by_source"]["crawl"]["known"] == 0
    assert sem["operations"] == {"create": 1, "list": 1}
    assert s["annotations"]["any_hint"] == 1 and s["annotations"]["read_only_hint"] == 1
    assert s["annotations"]["by_source"]["crawl"] == {"any_hint": 1, "share": 0.5}
    json.dumps(s)  # JSON-ready


def test_stats_of_an_empty_repository(tmp_path):
    s = repository_stats(ToolRepository.load(root=tmp_path))
    assert s["total"] == 0 and s["by_source"]["synthetic"] == 0 and s["categories"] == 0
    assert s["semantics"]["share_known"] == 0.0


@pytest.mark.parametrize("schema, depth", [
    ({"type": "object", "properties": {}}, 1),
    ({"type": "object", "properties": {"a": S, "b": INT}}, 1),
    ({"type": "object", "properties": {"tags": {"type": "array", "items": S}}}, 2),
    ({"type": "object", "properties": {"o": {"type": "object", "properties": {"x": S}}}}, 2),
    ({"type": "object", "properties": {"rows": {"type": "array", "items": {"type": "object", "properties": {"x": S}}}}}, 3),
    ({"type": "object", "properties": {"v": {"anyOf": [S, {"type": "array", "items": S}]}}}, 2),
    ({"type": "object", "properties": {"r": {"$ref": "#/definitions/x"}}}, 1),
])  # fmt: skip
def test_nesting_depth(schema, depth):
    assert nesting_depth(schema) == depth


@pytest.mark.parametrize("prop, kind", [
    (S, "string"), ({"type": ["integer", "null"]}, "integer"), ({"type": ["string", "number"]}, "union"),
    ({"anyOf": [S, {"type": "null"}]}, "string"), ({"oneOf": [S, INT]}, "union"), ({"enum": ["a", "b"]}, "enum"),
    ({"properties": {"x": S}}, "object"), ({}, "any"), ("garbage", "any"),
])  # fmt: skip
def test_parameter_type(prop, kind):
    assert parameter_type(prop) == kind


def test_required_count_ignores_undeclared_names():
    assert required_count({"properties": {"a": S}, "required": ["a", "ghost"]}) == 1
    assert required_count({"properties": {}, "required": "a"}) == 0


# ---- diversity ------------------------------------------------------------------------------------


def raw(name, desc="", props=None, category="c", domain="d"):
    return {"name": f"srv__{name}", "description": desc, "input_schema": {"properties": props or {}},
            "taxonomy": {"category": category, "domain": domain}}  # fmt: skip


def test_distinct_n_by_hand():
    assert distinct_n([["a", "b", "a", "b"]], 1) == 0.5  # {a, b} of 4
    assert distinct_n([["a", "b", "a", "b"]], 2) == pytest.approx(0.6667, abs=1e-4)  # {ab, ba} of 3
    assert distinct_n([["a", "b", "a", "b"]], 3) == 1.0  # {aba, bab} of 2
    assert distinct_n([["a"], ["a"]], 2) == 0.0  # no bigram at all


def test_identical_names_are_not_diverse():
    same = diversity([raw("get_user", "Get a user.") for _ in range(10)])
    names = (
        "get_user",
        "list_orders",
        "sendMessage",
        "delete-file",
        "search_web",
        "create_invoice",
        "ping",
        "RunQuery",
    )
    varied = diversity([raw(n, f"{n} things") for n in names])
    assert same["distinct_n"]["name"]["1"] == 0.1  # 2 distinct words of 20
    assert same["name_uniqueness"] == 0.1
    assert same["near_duplicates"]["share"] == 1.0 and same["near_duplicates"]["exact_share"] == 1.0
    assert varied["distinct_n"]["name"]["1"] > 0.8 and varied["name_uniqueness"] == 1.0
    assert varied["near_duplicates"]["share"] == 0.0


def test_name_uniqueness_strips_the_namespace_and_ignores_case_style():
    tools = [raw("get_user"), {**raw("x"), "name": "other__getUser"}, raw("get-user"), raw("list_users")]
    assert diversity(tools)["name_uniqueness"] == 0.5  # get_user = getUser = get-user; list_users


def test_jaccard_cases():
    assert jaccard("abcde", "abcdf") == pytest.approx(4 / 6)
    assert jaccard([], []) == 1.0 and jaccard(["a"], []) == 0.0 and jaccard("ab", "ab") == 1.0


def test_near_duplicates_at_the_threshold():
    base = [f"w{i}" for i in range(10)]
    one_off = [*base[:9], "x"]  # 9 shared of 11: 0.818
    two_off = [*base[:8], "y", "z"]  # 8 shared of 12 with base and with one_off: 0.667
    other = [f"v{i}" for i in range(10)]
    flags = near_duplicate_flags([" ".join(base), " ".join(one_off), " ".join(two_off), " ".join(other)])
    assert flags.tolist() == [True, True, False, False]
    # case and punctuation do not matter
    assert near_duplicate_flags(["A B, c!", "c b a", "d"]).tolist() == [True, True, False]


def test_near_duplicates_match_brute_force():
    rng = random.Random(1)
    vocab = [f"t{i}" for i in range(60)]
    texts = []
    for _ in range(150):
        words = rng.sample(vocab, rng.randint(4, 14))
        texts.append(" ".join(words))
        if rng.random() < 0.3:  # a planted near copy: one word swapped or dropped
            w = list(words)
            w[rng.randrange(len(w))] = rng.choice(vocab)
            texts.append(" ".join(w))
    sets = [set(text_tokens(t)) for t in texts]
    brute = [any(jaccard(a, b) >= 0.8 for j, b in enumerate(sets) if j != i) for i, a in enumerate(sets)]
    assert sum(brute) > 20
    assert near_duplicate_flags(texts).tolist() == brute


@pytest.mark.parametrize("name, style, verb", [
    ("get_user", "snake_case", True), ("sendMessage", "camelCase", True), ("SendMessage", "PascalCase", True),
    ("delete-file", "kebab-case", True), ("search", "lowercase", True), ("GET_USER", "UPPER_CASE", True),
    ("user_get", "snake_case", False), ("browser_navigate", "snake_case", False), ("Get_user-x", "mixed", True),
])  # fmt: skip
def test_naming_style_and_verb_first(name, style, verb):
    assert naming_style(name) == style
    assert verb_first(name) == verb


def test_parameter_type_entropy_and_coverage():
    tools = [raw("a", props={"x": S}, category="A", domain="a1"), raw("b", props={"y": INT}, category="A", domain="a2"),
             raw("c", props={"z": S, "w": INT}, category="B", domain="b1")]  # fmt: skip
    d = diversity(tools)
    assert d["parameter_types"]["mix"] == {"string": 2, "integer": 2}
    assert d["parameter_types"]["entropy_bits"] == 1.0 and d["parameter_types"]["normalized_entropy"] == 1.0
    assert d["coverage"] == {"A": {"tools": 2, "domains": 2}, "B": {"tools": 1, "domains": 1}}
    assert entropy_bits({"a": 1, "b": 1, "c": 1, "d": 1}) == 2.0 and entropy_bits({}) == 0.0


def test_embedding_distance():
    assert mean_cosine_distance(np.eye(4)) == 1.0
    assert mean_cosine_distance(np.ones((5, 3))) == pytest.approx(0.0, abs=1e-9)
    d = diversity([raw("a"), raw("b")], embeddings=np.array([[1.0, 0.0], [-1.0, 0.0]]))
    assert d["embedding"] == {"mean_cosine_distance": 2.0, "sample": 2}
    assert diversity([raw("a")])["embedding"] is None
    with pytest.raises(ValueError):
        diversity([raw("a")], embeddings=np.zeros((2, 3)))


def test_diversity_is_deterministic(tmp_path):
    tools = [t for _, t in tiny_repo(tmp_path).raw_tools()]
    assert diversity(tools) == diversity(list(tools))


# ---- the command line -----------------------------------------------------------------------------


def cli():
    app = typer.Typer()
    app.command("stats")(stats_cmd)
    app.command("search")(search_cmd)
    return app


def test_stats_json_cli(tmp_path, monkeypatch):
    tiny_repo(tmp_path / "tools")
    monkeypatch.setenv("AGENTGYM_DATA", str(tmp_path))
    res = CliRunner().invoke(cli(), ["stats", "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)  # the whole of stdout is one JSON object
    assert out["total"] == 5 and out["categories"] == 2 and out["domains"] == 3
    assert out["by_source"] == {"starter": 0, "crawl": 2, "live": 1, "synthetic": 2}
    res = CliRunner().invoke(cli(), ["stats", "--json", "--diversity"])
    assert set(json.loads(res.stdout)["diversity"]) == {"real", "synthetic"}


def test_stats_tables_cli(tmp_path, monkeypatch):
    tiny_repo(tmp_path / "tools")
    monkeypatch.setenv("AGENTGYM_DATA", str(tmp_path))
    res = CliRunner().invoke(cli(), ["stats", "--diversity"])
    assert res.exit_code == 0, res.output
    for text in ("5 tools", "by category", "Commerce", "schema complexity", "distinct-1"):
        assert text in res.stdout
