"""The run report: merged metrics, a self-contained HTML page, a Markdown table."""

from __future__ import annotations

import json

from PIL import Image

from caig.orchestration.report import build_run_report, format_value


def test_report_has_every_metric_and_inlines_figures(tmp_path):
    (tmp_path / "w.json").write_text(json.dumps({"world.n_products": 48, "world.bayes_pair_accuracy": 0.79}))
    (tmp_path / "r.json").write_text(json.dumps({"pcpo.match_rate_by_round": [0.5, 0.625]}))
    Image.new("RGB", (8, 8), "red").save(tmp_path / "sheet.png")
    figures = {"contact sheet": tmp_path / "sheet.png", "gone": tmp_path / "missing.png"}
    metrics = build_run_report(
        [tmp_path / "w.json", tmp_path / "r.json"],
        figures,
        tmp_path / "out" / "r.html",
        tmp_path / "out" / "r.md",
    )
    assert metrics == {
        "world.n_products": 48,
        "world.bayes_pair_accuracy": 0.79,
        "pcpo.match_rate_by_round": [0.5, 0.625],
    }
    page = (tmp_path / "out" / "r.html").read_text()
    assert "world.bayes_pair_accuracy" in page and "0.7900" in page and "[0.5000, 0.6250]" in page
    assert "data:image/png;base64," in page
    assert "figure 'gone' is missing" in page
    markdown = (tmp_path / "out" / "r.md").read_text()
    assert "| world.n_products | 48 |" in markdown


def test_format_value():
    assert format_value(0.123456) == "0.1235"
    assert format_value(None) == "null"
    assert format_value(True) == "true"
    assert format_value("x") == "x"
