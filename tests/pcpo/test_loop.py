"""Algorithm 1 end to end on tiny models: rounds, checkpoints, held-out descriptions, resume after a kill."""

from __future__ import annotations

import json
import shutil

import pandas as pd

from caig.pcpo.loop import run_pcpo


def test_rounds_write_adapters_stats_and_heldout_descriptions(tmp_path, pcpo_profile, pm_dir, rm_dir):
    out = tmp_path / "pcpo"
    summary = run_pcpo(pcpo_profile, pm_dir, rm_dir, out)
    assert summary["method"] == "pcpo" and [r["round"] for r in summary["rounds"]] == [1, 2]
    for r in (0, 1, 2):
        heldout = pd.read_parquet(out / f"round-{r:02d}" / "heldout.parquet")
        assert len(heldout) == 4 and heldout.description.map(type).eq(str).all()
    for r in (1, 2):
        record = json.loads((out / f"round-{r:02d}" / "round.json").read_text())
        assert record["rollout"]["products"] == 4
        assert (out / f"round-{r:02d}" / "adapter" / "adapter_model.safetensors").is_file()
        rollout = record["rollout"]
        assert rollout["pairs"] + rollout["identical"] + rollout["ties"] + rollout["unrenderable"] == 4
        pairs = pd.read_parquet(out / f"round-{r:02d}" / "pairs.parquet")
        assert len(pairs) == rollout["pairs"] and (pairs.chosen != pairs.rejected).all()
        assert pairs.chosen_probability.between(0.5, 1.0).all()
        assert set(pairs.mismatch_kind) <= {"visual", "textual"}
        textual = pairs[pairs.mismatch_kind == "textual"]
        assert (textual.mismatched_product_id != textual.product_id).all()

    # A kill during round 2: its round.json is missing, so a rerun redoes round 2 only, and identically.
    before = pd.read_parquet(out / "round-02" / "heldout.parquet")
    (out / "round-02" / "round.json").unlink()
    shutil.rmtree(out / "round-02" / "adapter")
    again = run_pcpo(pcpo_profile, pm_dir, rm_dir, out)
    assert [r["round"] for r in again["rounds"]] == [1, 2]
    pd.testing.assert_frame_equal(pd.read_parquet(out / "round-02" / "heldout.parquet"), before)


def test_dpo_baseline_builds_no_mismatched_inputs(tmp_path, pcpo_profile, pm_dir, rm_dir):
    summary = run_pcpo(pcpo_profile, pm_dir, rm_dir, tmp_path / "dpo", method="dpo")
    assert summary["method"] == "dpo"
    assert pd.read_parquet(tmp_path / "dpo" / "round-01" / "pairs.parquet").mismatch_kind.isna().all()
    for record in summary["rounds"]:
        if record["training"]["steps"]:
            assert record["training"]["pcpo_loss"] != record["training"]["pcpo_loss"]  # NaN: no PCPO term


def test_heldout_products_can_come_from_another_world(
    tmp_path, pcpo_profile, pm_dir, rm_dir, small_world_dir
):
    from dataclasses import replace

    profile = replace(pcpo_profile, pcpo=replace(pcpo_profile.pcpo, rounds=1))
    run_pcpo(profile, pm_dir, rm_dir, tmp_path / "p", eval_world_dir=small_world_dir)
    catalog = pd.read_parquet(small_world_dir / "catalog.parquet").sort_values("product_id")
    heldout = pd.read_parquet(tmp_path / "p" / "round-01" / "heldout.parquet")
    assert heldout.product_id.tolist() == catalog.product_id.tolist()[:4]


def test_another_judge_chooses_when_given_and_a_run_without_any_judge_is_refused(
    tmp_path, pcpo_profile, pm_dir, small_world_dir
):
    from dataclasses import replace

    import pytest

    from caig.data.event_pairs import pairs_from_events
    from caig.errors import UserError
    from caig.pcpo.rollout import RenderedAd
    from caig.reward.curriculum.ads import creatives_with_products
    from caig.reward.curriculum.teacher import fit_teacher

    logged, _ = pairs_from_events(small_world_dir, pcpo_profile.reward.train_pairs)
    creatives = creatives_with_products(small_world_dir)
    teacher = fit_teacher(logged, creatives, replace(pcpo_profile.curriculum.teacher, min_df=1))
    profile = replace(pcpo_profile, pcpo=replace(pcpo_profile.pcpo, rounds=1))
    summary = run_pcpo(profile, pm_dir, None, tmp_path / "t", judge=teacher)
    assert summary["judge"] == "DescriptionTeacher" and summary["rm"] is None
    pairs = pd.read_parquet(tmp_path / "t" / "round-01" / "pairs.parquet")
    assert len(pairs)  # the teacher chose each pair: its probability of the chosen description is recorded
    products = creatives.drop_duplicates("product_id").set_index("product_id")
    for row in pairs.itertuples():
        chosen, rejected = RenderedAd(row.chosen, None), RenderedAd(row.rejected, None)
        p = teacher.compare(products.loc[row.product_id], chosen, rejected)
        assert p == pytest.approx(row.chosen_probability) and p > 0.5
    with pytest.raises(UserError, match="--rm"):
        run_pcpo(profile, pm_dir, None, tmp_path / "none")
    with pytest.raises(UserError, match="one judge"):
        run_pcpo(profile, pm_dir, tmp_path / "rm", tmp_path / "both", judge=teacher)
