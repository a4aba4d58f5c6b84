"""Semantics inference for real tools, and the executable domains it makes."""

from __future__ import annotations

import pytest

from agentgym.repository.semantics import THRESHOLD, infer_domain, infer_tool, looks_read_only
from agentgym.spec.tool import Provenance, Taxonomy, ToolAnnotations, ToolSpec, qualified_name
from agentgym.spec.world import DomainSpec
from agentgym.world.domain import World
from agentgym.world.state import WorldState


def tool(name, props=None, required=(), ro=None, destructive=None, desc="does things"):
    return ToolSpec(
        name=qualified_name("srv", name),
        description=desc,
        input_schema={"type": "object", "properties": props or {}, "required": list(required)},
        annotations=ToolAnnotations(read_only_hint=ro, destructive_hint=destructive),
        provenance=Provenance(source="crawl", server="srv", original_name=name),
        taxonomy=Taxonomy(category="c", domain="d"),
    )


S = {"type": "string"}


@pytest.mark.parametrize(
    "t, op, entity, confident",
    [
        (tool("get_issue", {"issue_id": S}, ["issue_id"]), "get", "issue", True),
        (tool("getIssue", {"id": S}, ["id"], ro=True), "get", "issue", True),
        (tool("get_weather", {"city": S}, ["city"]), "get", "weather", False),  # not addressing a record
        (tool("list_pull_requests", {"state": S}), "list", "pull_request", True),
        (tool("get-invoices", {}), "list", "invoice", True),  # plural get is a list
        (tool("create_or_update_consumer", {"name": S}), "create", "consumer", True),
        (tool("save_json_doc_to_db", {"doc": S}), "create", "json_doc", True),
        (tool("crm_create_contact", {"email": S}), "create", "contact", True),  # server prefix skipped
        (tool("search_notes", {"q": S}), "search", "note", True),
        (tool("search_notes", {"folder": S}), "search", "note", False),  # no query argument
        (
            tool("delete_repo", {"repo_id": S}, ["repo_id"], ro=True),
            "delete",
            "repo",
            False,
        ),  # hint contradicts
        (tool("browser_click", {"selector": S}), None, None, False),
    ],
)
def test_infer_tool(t, op, entity, confident):
    inf = infer_tool(t)
    assert (inf.operation, inf.entity) == (op, entity)
    assert (inf.confidence >= THRESHOLD) == confident, inf.reasons


def test_looks_read_only():
    assert looks_read_only(tool("get_forecast")) and looks_read_only(tool("calculate_tax"))
    assert not looks_read_only(tool("send_email"))
    assert not looks_read_only(tool("get_forecast", ro=False))  # an explicit hint wins


def test_infer_domain_executes_confident_tools_and_leaves_the_rest():
    dom = DomainSpec(
        name="srv",
        category="c",
        entities=(),
        tools=(
            tool("create_ticket", {"title": S, "priority": {"type": "integer"}}, ["title"]),
            tool("get_ticket", {"ticket_id": S}, ["ticket_id"]),
            tool("list_tickets", {"priority": {"type": "integer"}, "limit": {"type": "integer"}}),
            tool("delete_ticket", {"ticket_id": S}, ["ticket_id"]),
            tool("get_user", {"user_id": S}, ["user_id"]),  # a lone read: not a collection here
            tool("get_exchange_rate", {"base": S}),  # an outside-world query
        ),
    )
    out, infs = infer_domain(dom)
    executable = {t.provenance.original_name for t in out.tools if t.semantics}
    assert executable == {"create_ticket", "get_ticket", "list_tickets", "delete_ticket"}
    assert [e.collection for e in out.entities] == ["srv.tickets"]
    assert all(0 < t.semantics.confidence < 1 for t in out.tools if t.semantics)
    w, s = World([out]), WorldState.from_snapshot(out.seed)
    assert len(list(s.iter("srv.tickets"))) == 3
    T = {t.provenance.original_name: t for t in out.tools}
    new = w.engine.run(T["create_ticket"], {"title": "Printer on fire", "priority": 1}, s)
    assert w.engine.run(T["get_ticket"], {"ticket_id": new["id"]}, s)["title"] == "Printer on fire"
    assert [r["id"] for r in w.engine.run(T["list_tickets"], {"priority": 1, "limit": 5}, s)["items"]] == [
        r["id"] for r in s.iter("srv.tickets") if r.get("priority") == 1
    ][:5]
    w.engine.run(T["delete_ticket"], {"ticket_id": new["id"]}, s)
    assert s.get("srv.tickets", new["id"]) is None
