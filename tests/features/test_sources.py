"""Offline sources from the run's data: a real catalog with the title only still gives a product profile."""

from __future__ import annotations

import pandas as pd
import pyarrow as pa

from caig.features.sources import PRODUCT_PROFILE_SCHEMA, product_profile


def test_a_title_only_catalog_serves_the_missing_attributes_as_null(caplog):
    catalog = pd.DataFrame(
        {"product_id": ["P1", "P2"], "title": ["a lamp", "a mug"], "image_path": ["a", "b"]}
    )
    frame = product_profile(catalog, pd.Timestamp("2026-10-07", tz="UTC"))
    table = pa.Table.from_pandas(frame[PRODUCT_PROFILE_SCHEMA.names], schema=PRODUCT_PROFILE_SCHEMA)
    assert table.column("title").to_pylist() == ["a lamp", "a mug"]
    assert table.column("category").null_count == table.column("price").null_count == 2
    assert "no category, price, colour" in caplog.text


def test_generated_creatives_join_the_priors_until_the_refresh_scores_them(tmp_path):
    from caig.features.priors import empty_rm_priors
    from caig.features.sources import read_generated, with_generated
    from caig.generate.register import GENERATED, PROVENANCE_COLUMNS

    at = pd.Timestamp("2026-10-07", tz="UTC")
    generated = pd.DataFrame([dict.fromkeys(PROVENANCE_COLUMNS, "x") for _ in range(2)])
    generated = generated.assign(creative_id=["G1", "G2"], product_id="P1", win_rate=[0.7, 0.3],
                                 prior_alpha=[2.0, 1.0], prior_beta=[48.0, 49.0], created_at=at)  # fmt: skip
    generated.to_parquet(tmp_path / GENERATED, index=False)
    scored = pd.DataFrame([{"creative_id": "G2", "product_id": "P1", "rm_score": 0.5, "prior_alpha": 1.5,
                            "prior_beta": 48.5, "event_timestamp": at}])  # fmt: skip
    priors = with_generated(scored, read_generated(tmp_path / "creatives.parquet"))
    assert sorted(priors["creative_id"]) == ["G1", "G2"]  # G2 keeps the refresh's score
    assert priors.set_index("creative_id").loc["G1", "rm_score"] == 0.7
    assert with_generated(
        empty_rm_priors(), read_generated(tmp_path / "elsewhere" / "creatives.parquet")
    ).empty
