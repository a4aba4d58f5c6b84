"""`agentgym tools scrape`: specs from arguments and a file, a row per server, JSON on request,
saving into `<out>/live/`, and an exit code that fails only when every server failed."""

from __future__ import annotations

import json

from local_servers import local
from typer.testing import CliRunner

from agentgym.cli.main import app
from agentgym.cli.scrape_cmd import read_specs, render_report_md

runner = CliRunner()


def said(res) -> str:
    """The command's output with rich's line wrapping undone."""
    return " ".join(res.output.split())


def test_scrape_is_a_tools_command():
    assert "scrape" in runner.invoke(app, ["tools", "--help"]).output


def test_read_specs_skips_comments_and_repeats(tmp_path):
    f = tmp_path / "servers.txt"
    f.write_text("# a comment\n\nnpm:pkg-a\n  pypi:pkg-b --flag  \nnpm:pkg-a\n#npm:off\n")
    assert read_specs(["npm:first"], f) == ["npm:first", "npm:pkg-a", "pypi:pkg-b --flag"]


def test_no_spec_at_all_is_a_usage_error():
    res = runner.invoke(app, ["tools", "scrape"])
    assert res.exit_code == 2 and "no server spec" in said(res)


def test_a_missing_file_is_a_usage_error(tmp_path):
    res = runner.invoke(app, ["tools", "scrape", "--file", str(tmp_path / "nope.txt")])
    assert res.exit_code == 2 and "is not a file" in said(res)


def test_every_server_failing_exits_nonzero_and_says_so(tmp_path):
    res = runner.invoke(app, ["tools", "scrape", "agentgym-no-such-command-3c2a", local("bad_server.py", "exit"),
                              "--out", str(tmp_path)])  # fmt: skip
    assert res.exit_code == 1, res.output
    assert "every server failed" in said(res) and "start_failed" in said(res) and "crashed" in said(res)
    assert not (tmp_path / "live").exists()  # nothing scraped, nothing written


def test_a_partial_failure_exits_zero_with_json_and_a_report(tmp_path):
    specs = [local("toy_server.py"), local("bad_server.py", "exit")]
    res = runner.invoke(app, ["tools", "scrape", *specs, "--out", str(tmp_path), "--json", "--timeout", "20"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    toy, bad = data["servers"]
    assert toy["spec"] == specs[0] and toy["status"] == "excluded" and not toy["permissive"]
    assert len(toy["tools"]) == 8 and toy["tools"][0]["provenance"]["source"] == "live"
    assert bad["status"] == "failed" and bad["error"]["kind"] == "crashed"
    live = tmp_path / "live"
    assert data["saved"] == str(live / "domains.jsonl.gz") and (live / "domains.jsonl.gz").exists()
    report = json.loads((live / "report.json").read_text())
    assert [s["status"] for s in report["servers"]] == ["excluded", "failed"]
    text = (live / "REPORT.md").read_text()
    assert "licence unspecified" in text and "crashed" in text and report["command"] in text


def test_no_save_writes_nothing(tmp_path):
    res = runner.invoke(app, ["tools", "scrape", local("raw_server.py"), "--no-save", "--out", str(tmp_path)])
    assert res.exit_code == 0, res.output
    assert "1 of 1 servers scraped" in said(res) and not (tmp_path / "live").exists()


def test_render_report_md_lists_shipped_excluded_and_failed():
    def server(spec, status, **kw):
        base = {"spec": spec, "status": status, "package_version": "1.0", "server_name": spec, "server_version": "1",
                "license": "MIT", "license_raw": "MIT", "permissive": True, "tool_count": 2, "executable": 1,
                "resources": [], "resource_templates": [], "prompts": [], "category": "Memory Management",
                "timings": {"total_s": 1.25}, "error": None, "warnings": [], "skipped_tools": [], "domain": spec,
                "tool_names": ["a", "b"]}  # fmt: skip
        return {**base, **kw}

    report = {"command": "agentgym tools scrape --file servers.txt", "servers": [
        server("npm:ok", "shipped"),
        server("npm:gpl", "excluded", license="GPL-3.0-only", permissive=False, tool_count=3),
        server("npm:dead", "failed", license=None, error={"kind": "timeout", "message": "no answer within 30s"}),
    ]}  # fmt: skip
    md = render_report_md(report)
    assert "**2 tools ship in 1 domains**; 1 of them are executable" in md
    assert "agentgym tools scrape --file servers.txt" in md
    assert "- `npm:gpl` (excluded): licence GPL-3.0-only" in md
    assert "- `npm:dead` (failed): timeout: no answer within 30s" in md
    assert "| failed: timeout |" in md and "`a`, `b`" in md
