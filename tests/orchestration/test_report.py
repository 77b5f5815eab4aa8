"""The run report: the headline first (on the HTML page's first screen and in the Markdown), then figures
and sample ads by round, then every metric folded away; the headline's numbers for KFP; a run without an
oracle."""

from __future__ import annotations

import json
import re

import pandas as pd
import pytest
from PIL import Image

from caig.orchestration.report import (
    build_run_report,
    format_value,
    render_html,
    render_markdown,
    training_figures,
)
from caig.orchestration.report_headline import headline, headline_numbers, rm_skill
from caig.orchestration.report_samples import collect_samples

# Shaped like a `make demo` run's metrics.json (the keys the steps record; values made up).
DEMO = {
    "world.n_products": 300,
    "world.bayes_pair_accuracy": 0.817,
    "data.rows_read": 3_000_000,
    "data.rows_valid": 2_987_654,
    "data.rows_duplicate": 0,
    "data.rows_quarantined": 12_346,
    "data.quarantined_share": 0.004115,
    "data.quarantine_reasons.future_timestamp": 12_000,
    "data.quarantine_reasons.bad_ctr": 346,
    "data.quarantine_reasons.unknown_creative": 0,
    "data.validation.success": True,
    "data.validation.failed": 0,
    "data.rm_pairs.train.pairs": 5_464,
    "data.rm_pairs.test.pairs": 58,
    "rm.pair_accuracy": 0.6379,
    "rm.pair_accuracy_one_order": 0.6379,
    "rm.swap_disagreement": 0.9655,
    "rm.ceiling": 0.8103,
    "rm.skill": 0.4444,
    "rm.pairs": 58,
    "pcpo.train.rounds": 3,
    "pcpo.train.loss_by_round": [0.69, 0.68, 0.66],
    "dpo.train.rounds": 3,
    "pcpo.match_rate": 0.6167,
    "pcpo.match_rate_by_round": [0.5667, 0.5833, 0.6, 0.6167],
    "dpo.match_rate_by_round": [0.5667, 0.55, 0.5333, 0.5167],
    "pcpo.ctr_uplift_by_round": [0.0, 0.0042, -0.0021, 0.0123],
    "dpo.ctr_uplift_by_round": [0.0, 0.0181, 0.0207, 0.0311],
    "online.ctr_lift_pcpo": 0.0741,
    "online.ctr_lift_dpo": 0.0573,
    "online.ctr_by_arm_set.existing": 0.0352,
    "online.impressions": 50_000,
    "online.products": 60,
    "register.runs": 1,
}

# A production run on imported logs: no world oracle, so no ceiling, no oracle match rate, no true CTR, no
# simulated users; the steps record why.
PRODUCTION = {
    "world.n_products": 1_200,
    "data.rows_read": 10_000,
    "data.rows_valid": 9_990,
    "data.rows_quarantined": 10,
    "rm.pair_accuracy": 0.61,
    "rm.swap_disagreement": 0.12,
    "rm.ceiling": None,
    "rm.skill": None,
    "rm.pairs": 400,
    "pcpo.judge_match_rate_by_round": [0.5, 0.54, 0.58],
    "dpo.judge_match_rate_by_round": [0.5, 0.52, 0.6],
    "pcpo.rm_win_rate": 0.55,
    "evaluate.skipped.match_rate": "the world's match judge exists only in the simulator",
    "evaluate.skipped.ctr_uplift": "true CTR exists only in the simulator",
    "online.skipped": "no world.json: real logs have no simulated users",
}


def _write_metrics(tmp_path, metrics):
    """The metrics split into two step files, as the pipeline's steps write them."""
    keys = list(metrics)
    half = len(keys) // 2
    files = []
    for i, part in enumerate((keys[:half], keys[half:])):
        files.append(tmp_path / f"step{i}.json")
        files[-1].write_text(json.dumps({k: metrics[k] for k in part}))
    return files


def _first_screen(page: str) -> str:
    """What a reader sees before the first figure and before the folded metric table."""
    return page[: min(i for i in (page.find("<figure"), page.find("<details"), len(page)) if i >= 0)]


def _headline_rows(text: str) -> list[list[str]]:
    """The rows of the first table on the page (the PCPO vs DPO by-round table)."""
    table = re.search(r"<table>(.*?)</table>", text, re.S).group(1)
    return [re.findall(r"<td>(.*?)</td>", row) for row in re.findall(r"<tr>(.*?)</tr>", table, re.S)][1:]


def test_first_screen_holds_the_headline_answers(tmp_path):
    Image.new("RGB", (8, 8), "red").save(tmp_path / "plot.png")
    page_path, md_path = tmp_path / "out" / "r.html", tmp_path / "out" / "r.md"
    build_run_report(_write_metrics(tmp_path, DEMO), {"a plot": tmp_path / "plot.png"}, page_path, md_path)
    page = page_path.read_text()
    first = _first_screen(page)
    assert first.index('id="headline"') < page.index("<figure") < page.index("<details")
    assert "2,987,654 events kept of 3,000,000 read, 12,346 quarantined (0.41%)" in first
    assert "future_timestamp 12,000, bad_ctr 346" in first and "unknown_creative" not in first
    assert "pair accuracy 0.638 on 58 test pairs" in first
    assert "ceiling 0.810" in first and "skill 0.44" in first
    assert "swap disagreement 0.97" in first
    rows = _headline_rows(first)
    assert [r[0] for r in rows] == ["0 (pre-trained)", "1", "2", "3"]
    columns = re.findall(r"<th>(.*?)</th>", first)
    for method in ("pcpo", "dpo"):
        name = method.upper()
        match = [r[columns.index(f"{name} match rate")] for r in rows]
        uplift = [r[columns.index(f"{name} true-CTR uplift")] for r in rows]
        assert match == [f"{v:.3f}" for v in DEMO[f"{method}.match_rate_by_round"]]
        assert uplift == [f"{v:+.3f}" for v in DEMO[f"{method}.ctr_uplift_by_round"]]
    assert "at the last round (3)" in first
    assert "match rate PCPO 0.617 vs DPO 0.517: PCPO wins" in first
    assert "true-CTR uplift PCPO +0.012 vs DPO +0.031: DPO wins" in first
    assert "PCPO +7.4%, DPO +5.7%: PCPO wins" in first
    assert "rm.pair_accuracy_one_order" not in first  # the full table is folded below
    assert "rm.pair_accuracy_one_order" in page[page.index("<details") :]


def test_rounds_verdict_follows_the_figures():
    flipped = {**DEMO, "pcpo.ctr_uplift_by_round": [0.0, 0.05], "dpo.ctr_uplift_by_round": [0.0, 0.01]}
    flipped |= {"pcpo.rm_win_rate": 0.5000006, "dpo.rm_win_rate": 0.5000034}
    text = next(line.text for line in headline(flipped).lines if line.topic == "PCPO vs DPO")
    assert "true-CTR uplift PCPO +0.050 vs DPO +0.010: PCPO wins" in text
    assert "RM win rate over the pre-trained PM PCPO 0.500 vs DPO 0.500: a tie" in text  # equal as shown


def test_run_without_oracle_renders_and_says_skipped(tmp_path):
    page_path, md_path = tmp_path / "r.html", tmp_path / "r.md"
    build_run_report(_write_metrics(tmp_path, PRODUCTION), {}, page_path, md_path)
    first = _first_screen(page_path.read_text())
    assert "pair accuracy 0.610 on 400 test pairs" in first
    assert "ceiling and skill skipped: no simulated world" in first
    assert "true-CTR uplift skipped: true CTR exists only in the simulator" in first
    assert "oracle match rate skipped: the world&#x27;s match judge exists only in the simulator" in first
    assert "<b>Online A/B</b>: skipped: no world.json: real logs have no simulated users" in first
    assert "judge match rate PCPO 0.580 vs DPO 0.600: DPO wins" in first
    assert "RM win rate over the pre-trained PM PCPO 0.550;" in first  # DPO's not recorded: no verdict
    assert "true-CTR uplift</th>" not in first  # no column for what was not measured
    markdown = md_path.read_text()
    assert "- **Online A/B**: skipped: no world.json" in markdown
    assert "ceiling and skill skipped" in markdown
    assert set(headline_numbers(PRODUCTION)) >= {"rm.pair_accuracy", "pcpo.judge_match_rate.round_2"}
    assert "rm.ceiling" not in headline_numbers(PRODUCTION)


@pytest.mark.parametrize("metrics", [{}, {"features.rows": 3}, {"rm.pairs": 0}])
def test_headline_degrades_without_its_stages(metrics):
    page = render_html("t", metrics, {})
    assert "Headline" in page and "<details>" in page
    assert render_markdown("t", metrics).startswith("# t\n\n## Headline")


def test_markdown_holds_the_same_headline():
    markdown = render_markdown("caig run report", DEMO)
    head, rest = markdown.split("## All metrics")
    lines = headline(DEMO).lines
    assert [line.topic for line in lines] == ["Data", "Reward model", "PCPO vs DPO", "Online A/B"]
    for line in lines:
        assert f"- **{line.topic}**: {line.text}" in head
    assert "| 3 | 0.617 | 0.517 | +0.012 | +0.031 |" in head
    assert "| rm.pair_accuracy_one_order | 0.6379 |" in rest


def test_headline_numbers_for_kfp():
    numbers = headline_numbers({**DEMO, "rm.skill": None, "priors.prior_strength": 50.0})
    assert numbers["rm.skill"] == pytest.approx(rm_skill(0.6379, 0.8103)) == pytest.approx(0.4444, abs=1e-4)
    assert numbers["data.rows_quarantined"] == 12_346
    assert numbers["dpo.ctr_uplift.round_3"] == 0.0311
    assert numbers["online.ctr_lift_pcpo"] == 0.0741
    assert numbers["priors.prior_strength"] == 50.0
    assert all(isinstance(v, float) for v in numbers.values())
    assert rm_skill(0.6, None) is None and rm_skill(0.6, 0.5) is None


def test_refresh_headline_shows_the_selector_priors():
    metrics = {
        "data.rows_read": 100,
        "data.rows_valid": 100,
        "data.rows_quarantined": 0,
        "priors.prior_strength": 50.0,
        "priors.prior_temperature": 1.7,
        "priors.creatives_scored": 2_400,
        "priors.products_scored": 300,
    }
    lines = {line.topic: line.text for line in headline(metrics).lines}
    assert set(lines) == {"Data", "Selector priors"}
    assert lines["Selector priors"].startswith("prior strength 50 pseudo-impressions, temperature 1.700")
    assert "2,400 creatives of 300 products scored" in lines["Selector priors"]


def _run_dir(path, descriptions_by_round):
    for r, descriptions in enumerate(descriptions_by_round):
        (path / f"round-{r:02d}").mkdir(parents=True)
        frame = pd.DataFrame({"product_id": list(descriptions), "description": list(descriptions.values())})
        frame.to_parquet(path / f"round-{r:02d}" / "heldout.parquet", index=False)
    return path


def test_sample_ads_by_round(tmp_path):
    products = ["P3", "P1", "P2", "P4"]
    pcpo = _run_dir(tmp_path / "pcpo", [{p: f"pcpo r{r} {p}" for p in products} for r in range(3)])
    dpo = _run_dir(tmp_path / "dpo", [{p: f"dpo r{r} {p}" for p in products} for r in range(3)])
    evaluation = tmp_path / "evaluation"
    (evaluation / "review" / "ads").mkdir(parents=True)
    Image.new("RGB", (4, 4), "blue").save(evaluation / "review" / "ads" / "x-0000.png")
    item = {
        "method": "dpo",
        "round": 2,
        "product_id": "P4",
        "description": "dpo r2 P4",
        "ad": "ads/x-0000.png",
    }
    (evaluation / "review" / "batch.json").write_text(json.dumps({"items": {"x-0000": item}}))
    world = tmp_path / "world"
    world.mkdir()
    titles = pd.DataFrame({"product_id": products, "title": [f"title {p}" for p in products]})
    titles.assign(image_path="missing.png").to_parquet(world / "catalog.parquet", index=False)

    samples = collect_samples({"pcpo": pcpo, "dpo": dpo}, evaluation, world, per_round=2)
    assert [(row.round, row.product_id) for row in samples.rows] == [
        (r, p)
        for r in range(3)
        for p in ("P4", "P3")  # the one with a rendered ad first, then file order
    ]
    assert samples.rows[-2].cells["dpo"].image == evaluation / "review" / "ads" / "x-0000.png"
    assert samples.rows[0].title == "title P4" and samples.rows[0].product_image is None

    page = render_html("t", DEMO, {}, samples)
    section = page[page.index("Sample ads by round") : page.index("<details")]
    assert [int(r) for r in re.findall(r"<h3>Round (\d)", section)] == [0, 1, 2]
    assert section.count("data:image/png;base64,") == 1
    assert "pcpo r1 P3" in section and "dpo r2 P4" in section and "P1" not in section
    markdown = render_markdown("t", DEMO, samples)
    assert "| P4 title P4 | pcpo r2 P4 | dpo r2 P4 |" in markdown


def test_samples_without_runs_or_files(tmp_path):
    samples = collect_samples({"pcpo": tmp_path / "nothing"}, tmp_path / "no-eval", None)
    assert samples.rows == [] and samples.grid is None
    assert "No held-out descriptions by round" in render_html("t", DEMO, {}, samples)


def test_training_figures_in_the_headline_order_without_the_ads(tmp_path):
    evaluation, online = tmp_path / "evaluation", tmp_path / "online"
    (evaluation / "review" / "ads").mkdir(parents=True)
    online.mkdir()
    for path in (
        evaluation / "ctr_uplift_by_round.png",
        evaluation / "match_rate_by_round.png",
        evaluation / "samples.png",
        evaluation / "review" / "ads" / "x-0000.png",
        online / "online_ab.png",
    ):
        Image.new("RGB", (2, 2)).save(path)
    figures = training_figures(tmp_path / "world", evaluation, online)
    assert [p.name for p in figures.values()] == [
        "contact_sheet.png",
        "match_rate_by_round.png",
        "ctr_uplift_by_round.png",
        "online_ab.png",
    ]
    assert list(figures)[1] == "Match rate by round, PCPO and DPO (Figure 4)"


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
    folded = page[page.index("<details") :]
    assert "world.bayes_pair_accuracy" in folded and "0.7900" in folded and "[0.5000, 0.6250]" in folded
    assert "data:image/png;base64," in page
    assert "figure 'gone' is missing" in page
    markdown = (tmp_path / "out" / "r.md").read_text()
    assert "| world.n_products | 48 |" in markdown


def test_report_components_output_html_markdown_and_metrics():
    from caig.orchestration.source import ensure_importable

    ensure_importable()
    from components.report import refresh_report, run_report

    for component in (run_report, refresh_report):
        outputs = component.component_spec.outputs
        kinds = {name: spec.type for name, spec in outputs.items()}
        assert kinds == {
            "report": "system.HTML@0.0.1",
            "summary": "system.Markdown@0.0.1",
            "metrics": "system.Metrics@0.0.1",
            "headline": "system.Metrics@0.0.1",
        }


def test_format_value():
    assert format_value(0.123456) == "0.1235"
    assert format_value(None) == "null"
    assert format_value(True) == "true"
    assert format_value("x") == "x"
