"""``caig-training`` through the real KFP local runner (SubprocessRunner) on the small world."""

from __future__ import annotations

import json

import pytest

from caig.cli.pipeline import run_local_pipeline
from caig.world import load_world


@pytest.fixture(scope="module")
def local_run(tmp_path_factory, small_profile):
    out = tmp_path_factory.mktemp("local-run")
    metrics = run_local_pipeline(small_profile, out, seed=0)
    return out, metrics


def test_run_directory_layout(local_run):
    out, metrics = local_run
    assert json.loads((out / "metrics.json").read_text()) == metrics
    page = (out / "report.html").read_text()
    assert "world.bayes_pair_accuracy" in page and "data:image/png;base64," in page
    assert "| data.rows_read |" in (out / "report.md").read_text()
    steps = json.loads((out / "steps.json").read_text())
    assert set(steps) == {"build-world", "ingest-events", "validate-stats", "build-pairs", "run-report"}
    assert set(steps["build-world"]) == {"world", "summary"}


def test_metrics_come_from_the_steps_that_ran(local_run, small_profile):
    out, metrics = local_run
    steps = json.loads((out / "steps.json").read_text())
    world_json = json.loads(
        (out / "pipeline").joinpath(steps["build-world"]["world"], "world.json").read_text()
    )
    assert world_json["seed"] == 0
    world = load_world(steps["build-world"]["world"])
    assert metrics["world.n_products"] == len(world.catalog) == small_profile.world.n_products
    assert metrics["world.bayes_pair_accuracy"] == world_json["bayes_pair_accuracy"]
    # every logged impression was read by the ingest step, and accounted for
    assert metrics["data.rows_read"] == metrics["world.n_events"] == small_profile.world.n_events
    assert (
        metrics["data.rows_read"]
        == metrics["data.rows_valid"] + metrics["data.rows_duplicate"] + metrics["data.rows_quarantined"]
    )
    assert metrics["data.clicks_total"] == metrics["world.n_clicks"]
    # the checks ran as of the world's end, and passed; pairs from the ingested stats match the world's own
    assert metrics["data.as_of"] == "2026-10-08T00:00:00+00:00"
    assert metrics["data.validation.success"] is True and metrics["data.validation.failed"] == 0
    assert metrics["data.n_pairs"] == metrics["world.n_pairs"] > 0
    assert (out / "pipeline").joinpath(steps["validate-stats"]["docs"], "index.html").is_file()
