"""World building: files and schemas, determinism for a seed, and the contact sheet."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from caig.data.events import EVENT_SCHEMA, read_events
from caig.profile import load_profile
from caig.world.build import build_world

TINY = ["world.n_products=24", "world.n_creatives_per_product=3", "world.n_events=30000", "world.n_days=3",
        "world.image_size=48", "world.contact_sheet_products=2", "data.pairs.min_impressions=100"]


def _build(tmp_path: Path, seed: int, name: str) -> Path:
    profile = load_profile("local", TINY)
    out = tmp_path / name
    build_world(profile.world, out, seed=seed, pair_rule=profile.data.pairs)
    return out


def _digest(directory: Path) -> dict[str, str]:
    files = [p for p in sorted(directory.rglob("*")) if p.is_file() and p.name != "world.json"]
    digests = {str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}
    return digests


def test_same_seed_same_world_and_another_seed_another(tmp_path):
    a, b, c = _build(tmp_path, 3, "a"), _build(tmp_path, 3, "b"), _build(tmp_path, 4, "c")
    pd.testing.assert_frame_equal(read_events(a / "events"), read_events(b / "events"))
    pd.testing.assert_frame_equal(pd.read_parquet(a / "catalog.parquet"), pd.read_parquet(b / "catalog.parquet"))
    assert _digest(a) == _digest(b)
    assert json.loads((a / "world.json").read_text()) == json.loads((b / "world.json").read_text())
    assert not read_events(a / "events").equals(read_events(c / "events"))
    assert not pd.read_parquet(a / "creatives.parquet").equals(pd.read_parquet(c / "creatives.parquet"))


def test_rebuild_into_the_same_directory_leaves_no_stale_events(tmp_path):
    first = _build(tmp_path, 1, "w")
    n_files = len(list((first / "events").rglob("*.parquet")))
    again = _build(tmp_path, 1, "w")
    assert len(list((again / "events").rglob("*.parquet"))) == n_files
    assert read_events(again / "events").event_id.is_unique


def test_files_and_schemas(small_world_dir):
    w = small_world_dir
    catalog = pd.read_parquet(w / "catalog.parquet")
    assert {"product_id", "title", "category", "tags", "price", "colour"} <= set(catalog.columns)
    assert catalog.category.nunique() >= 8
    for row in catalog.head(3).itertuples():
        assert (w / row.image_path).is_file() and (w / row.mask_path).is_file()
    creatives = pd.read_parquet(w / "creatives.parquet")
    assert set(creatives.product_id) == set(catalog.product_id)
    assert all((w / p).is_file() for p in creatives.image_path.head(5))
    days = sorted(p.name for p in (w / "events").iterdir())
    assert len(days) == 7 and days[0] == "2026-10-01"
    for day in days:
        table = pq.read_table(w / "events" / day / "part-00000.parquet")
        assert table.schema.equals(EVENT_SCHEMA, check_metadata=False)
        assert table.column_names == ["event_id", "ts", "product_id", "creative_id", "segment", "clicked"]
    events = read_events(w / "events")
    assert events.event_id.is_unique
    assert set(events.creative_id) <= set(creatives.creative_id)
    meta = json.loads((w / "world.json").read_text())
    for key in ("seed", "n_products", "n_categories", "n_background_terms", "n_creatives", "n_events",
                "bayes_pair_accuracy"):
        assert key in meta
    assert meta["n_events"] == len(events) == 400_000
    assert meta["n_background_terms"] >= 40
    assert 0.5 < meta["bayes_pair_accuracy"] <= 1.0
    assert (w / "contact_sheet.png").stat().st_size > 1000


def test_world_json_holds_no_hidden_effects(small_world_dir):
    text = (small_world_dir / "world.json").read_text()
    for hidden in ("appeal", "term_effect", "segment_taste"):
        assert f'"{hidden}":' not in text


@pytest.mark.parametrize("column", ["product_id", "creative_id", "segment"])
def test_event_ids_and_columns_have_no_nulls(small_world_dir, column):
    events = read_events(small_world_dir / "events")
    assert events[column].notna().all()
