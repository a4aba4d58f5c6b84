"""Benchmark metrics against hand-computed values, and `agentgym bench` end to end."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from agentgym.benchmark import pass_at_k, pass_hat_k
from agentgym.cli.main import app


def test_estimators_by_hand():
    # n=4 samples, c=2 pass: pass@1 = 0.5; pass@2 = 1 - C(2,2)/C(4,2) = 1 - 1/6; pass^2 = C(2,2)/C(4,2) = 1/6
    assert pass_at_k(4, 2, 1) == pytest.approx(0.5)
    assert pass_at_k(4, 2, 2) == pytest.approx(5 / 6)
    assert pass_hat_k(4, 2, 2) == pytest.approx(1 / 6)
    assert pass_at_k(4, 0, 3) == 0.0 and pass_at_k(4, 2, 3) == 1.0 and pass_hat_k(4, 4, 4) == 1.0
    assert pass_hat_k(5, 3, 2) == pytest.approx(3 / 10)  # C(3,2)/C(5,2)
    with pytest.raises(ValueError):
        pass_at_k(2, 1, 3)


def test_bench_two_models_side_by_side(tmp_path):
    res = CliRunner().invoke(
        app,
        [
            "bench",
            "--model",
            "oracle",
            "--model",
            "noop",
            "--sample",
            "6",
            "--k",
            "2",
            "--out",
            str(tmp_path),
        ],
    )
    assert res.exit_code == 0, res.output
    data = json.loads((tmp_path / "summary.json").read_text())
    oracle, noop = data["models"]
    assert (
        oracle["model"] == "oracle"
        and oracle["overall"]["pass@1"] == 1.0
        and oracle["overall"]["pass^2"] == 1.0
    )
    assert noop["overall"]["pass@1"] == 0.0 and noop["overall"]["pass@2"] == 0.0
    assert oracle["overall"]["tasks"] == 6 and oracle["overall"]["episodes"] == 12
    assert set(oracle["by_difficulty"]) <= {"simple", "moderate", "complex"} and oracle["by_category"]
    page = (tmp_path / "report.html").read_text()
    assert page.count("data:image/png;base64,") == 2 and "pass^k" in page and "noop" in page
    assert (
        CliRunner().invoke(app, ["bench", "--model", "oracle", "--k", "0", "--out", str(tmp_path)]).exit_code
        == 2
    )
