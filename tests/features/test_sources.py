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
