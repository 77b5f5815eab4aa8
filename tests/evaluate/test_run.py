"""`caig evaluate` on a real (tiny) PCPO run: per-round oracle figures, plots and the report."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from caig.evaluate.run import run_evaluation
from caig.world import load_world


def _fake_run(root, world, texts_by_round):
    pids = world.catalog.product_id.tolist()[:6]
    for r, text in enumerate(texts_by_round):
        folder = root / f"round-{r:02d}"
        folder.mkdir(parents=True)
        pd.DataFrame({"product_id": pids, "description": [text] * len(pids)}).to_parquet(
            folder / "heldout.parquet"
        )
    return root


def test_evaluation_tracks_match_and_uplift_by_round(tmp_path, small_profile, small_world_dir):
    world = load_world(small_world_dir)
    calm = "in a photo studio, soft daylight"
    hacked = "in a photo studio, soft daylight, with neon glow, with fireworks burst"
    runs = {
        "dpo": _fake_run(tmp_path / "dpo", world, [calm, calm, hacked]),
        "pcpo": _fake_run(tmp_path / "pcpo", world, [calm, calm, calm]),
    }
    metrics = run_evaluation(small_profile, small_world_dir, runs, None, tmp_path / "eval")
    assert len(metrics["dpo.match_rate_by_round"]) == 3
    assert metrics["dpo.ctr_uplift"] > 0.1 and metrics["pcpo.ctr_uplift"] == pytest.approx(0.0)
    assert metrics["dpo.match_rate"] < metrics["pcpo.match_rate"]
    report = json.loads((tmp_path / "eval" / "eval.json").read_text())
    assert report["methods"]["dpo"]["eye_catching_share_by_round"] == [0.0, 0.0, 1.0]
    for name in (
        "match_rate_by_round.png",
        "ctr_uplift_by_round.png",
        "samples.png",
        "report.md",
        "report.html",
    ):
        assert (tmp_path / "eval" / name).stat().st_size > 500
    assert "match rate, round 2" in (tmp_path / "eval" / "report.md").read_text()


def test_a_directory_without_rounds_is_a_clear_error(tmp_path, small_profile, small_world_dir):
    from caig.errors import UserError

    with pytest.raises(UserError, match="round-00/heldout.parquet"):
        run_evaluation(small_profile, small_world_dir, {"pcpo": tmp_path}, None, tmp_path / "eval")
