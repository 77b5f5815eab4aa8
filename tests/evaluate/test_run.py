"""`caig evaluate` on a real (tiny) PCPO run: per-round oracle figures, plots and the report."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from caig.evaluate.run import choices_by_round, run_evaluation
from caig.world.loaded import load_world


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
    assert "rm_choices_by_round" not in report["methods"]["dpo"]  # no pairs.parquet: nothing to judge


def test_the_rm_choices_of_each_round_are_judged_when_the_pairs_are_in_the_world(
    tmp_path, small_profile, small_world_dir
):
    world = load_world(small_world_dir)
    calm = "in a photo studio, soft daylight"
    hacked = "in a photo studio, soft daylight, with neon glow, with fireworks burst"
    run = _fake_run(tmp_path / "dpo", world, [calm, calm, hacked])
    pids = world.catalog.product_id.tolist()[:6]
    for r, (chosen, rejected) in enumerate([(hacked, calm), (calm, hacked)], start=1):
        pd.DataFrame({"product_id": pids, "chosen": chosen, "rejected": rejected}).to_parquet(
            run / f"round-{r:02d}" / "pairs.parquet"
        )
    run_evaluation(small_profile, small_world_dir, {"dpo": run}, None, tmp_path / "eval")
    choices = json.loads((tmp_path / "eval" / "eval.json").read_text())["methods"]["dpo"][
        "rm_choices_by_round"
    ]
    decisive = [c["decisive_pairs"] for c in choices]
    assert decisive[0] == decisive[1] > 0
    assert choices[0]["rm_prefers_match"] == 0.0 and choices[1]["rm_prefers_match"] == 1.0
    assert "RM chose the matching one, round 2" in (tmp_path / "eval" / "report.md").read_text()
    # Rounds trained on another world's products (a held-out --world): the oracle cannot judge them.
    foreign = pd.DataFrame({"product_id": ["not-in-this-world"], "chosen": [calm], "rejected": [hacked]})
    assert choices_by_round(world, [foreign]) is None


def test_a_directory_without_rounds_is_a_clear_error(tmp_path, small_profile, small_world_dir):
    from caig.errors import UserError

    with pytest.raises(UserError, match="round-00/heldout.parquet"):
        run_evaluation(small_profile, small_world_dir, {"pcpo": tmp_path}, None, tmp_path / "eval")
