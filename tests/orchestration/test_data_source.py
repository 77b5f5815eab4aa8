"""The pipelines' ``data`` parameter: a data directory in the world's layout, checked, then copied."""

from __future__ import annotations

import json
import shutil

import pytest

from caig.errors import UserError
from caig.orchestration.data_source import stage_data


def test_a_saved_world_is_copied_with_its_figures(small_world_dir, tmp_path):
    summary = stage_data(small_world_dir, tmp_path / "staged")
    world = json.loads((small_world_dir / "world.json").read_text())
    assert summary["n_products"] == world["n_products"] and summary["n_events"] == world["n_events"]
    assert summary["bayes_pair_accuracy"] == world["bayes_pair_accuracy"]
    assert (tmp_path / "staged" / "catalog.parquet").read_bytes() == (
        small_world_dir / "catalog.parquet"
    ).read_bytes()
    assert summary["n_event_files"] == len(list((tmp_path / "staged" / "events").rglob("*.parquet")))


def test_incomplete_locations_are_user_errors(small_world_dir, tmp_path):
    with pytest.raises(UserError, match="is not a directory"):
        stage_data(tmp_path / "nowhere", tmp_path / "out")
    partial = tmp_path / "partial"
    partial.mkdir()
    shutil.copy(small_world_dir / "catalog.parquet", partial)
    with pytest.raises(UserError, match="lacks creatives.parquet"):
        stage_data(partial, tmp_path / "out")
    shutil.copy(small_world_dir / "creatives.parquet", partial)
    with pytest.raises(UserError, match=r"no events/\*\*/\*.parquet"):
        stage_data(partial, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_a_location_without_its_images_is_refused(small_world_dir, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(small_world_dir, data, ignore=shutil.ignore_patterns("images"))
    with pytest.raises(UserError, match=r"image_path\(s\) of catalog.parquet name no file .*relative to it"):
        stage_data(data, tmp_path / "out")


def test_production_never_builds_a_world_for_an_empty_data(tmp_path):
    from caig.orchestration.data_source import run_data
    from caig.profile import load_profile

    with pytest.raises(UserError, match=r"pipeline parameter 'data' is empty.*simulated_world: false"):
        run_data(load_profile("production"), 0, "", tmp_path / "world")
    assert not (tmp_path / "world").exists()  # refused before anything was built
