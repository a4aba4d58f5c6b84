"""`agentgym bench`'s HTML report rendered in headless Chromium; the screenshot checked (issue 6).

A real bench run (oracle and noop on six starter tasks, k=2) writes the report; bench/report_screenshot.py
renders it full page and checks size, non-blankness and that the plots show. A copy whose PNG data is
corrupted must fail the same checks, so the checks can fail. Chromium comes from scripts/chromium_up.sh
(called by install.sh); the tests skip only with AGENTGYM_SKIP_CHROMIUM=1.
"""

from __future__ import annotations

import importlib.util
import os
import re
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agentgym.cli.main import app

ROOT = Path(__file__).resolve().parents[1]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(os.environ.get("AGENTGYM_SKIP_CHROMIUM") == "1", reason="AGENTGYM_SKIP_CHROMIUM=1"),
]


def _load_screenshot_module():
    spec = importlib.util.spec_from_file_location(
        "report_screenshot", ROOT / "bench" / "report_screenshot.py"
    )
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up by name
    spec.loader.exec_module(mod)
    return mod


shots = _load_screenshot_module()


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("bench")
    args = ["bench", "--model", "oracle", "--model", "noop", "--sample", "6", "--k", "2", "--out", str(out)]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    return out / "report.html"


def test_chromium_installed_by_the_project():
    # CI never sets AGENTGYM_SKIP_CHROMIUM, so a missing browser is a failure, not a skip.
    assert Path(shots.chromium_binary()).is_file()


def test_report_renders_full_page_with_visible_plots(report, tmp_path):
    result = shots.render_and_check(report, tmp_path, width=1280)
    assert result.ok, result.failures
    w, h = result.size
    assert w == 1280 and h > 900  # taller than one window: the full page, not the viewport
    assert len(result.images) == 2 and {i.alt for i in result.images} == {
        "pass@1 by difficulty",
        "pass^k against k",
    }
    # oracle's bars fill much of the first plot; the second has two lines (1.0 and 0.0) in colour
    bars, curve = sorted(result.images, key=lambda i: i.box[1])
    assert bars.coloured_fraction > 0.1 and curve.coloured_fraction > 0.005
    assert result.outside_differs_fraction == 0.0
    # the rendered report is the one bench wrote: self-contained, images inline
    assert not re.search(r'src="(?!data:image/png;base64,)', report.read_text())


def test_broken_plots_fail_the_check(report, tmp_path):
    page = report.read_text()
    broken = re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "data:image/png;base64,AAAA", page)
    assert broken != page
    bad = tmp_path / "broken.html"
    bad.write_text(broken)
    result = shots.render_and_check(bad, tmp_path / "shots", width=1280)
    assert not result.ok
    assert any("did not decode" in f for f in result.failures)
    assert any("no coloured plot marks" in f for f in result.failures)
    assert any("too small to be a plot" in f for f in result.failures)
