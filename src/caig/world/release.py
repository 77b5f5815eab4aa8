"""A world's logs exported in the official CAIG release's format: real-format data with no simulator behind it.

What the release gives a user (REFERENCE.md, "Data formats"): ``click_data.json`` (``{item<product>:
[{creative_id, item_id, creative_image_hash, exp_impression_cnt, exp_click_cnt}]}``), ``caption_public.json``
(JSON lines ``{creative_id, caption}``), ``images/`` named by the hash, ``products.json`` (JSON lines ``{id,
image, new_caption}``) and ``product_images/``. Made from the LOGGED impressions and clicks, the catalog and
the images only (never the oracle), so that ``caig data import`` and every stage after it can be run and
tested on exactly what real logs look like, with no ``world.json``.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.dataset as ds

CDN = "https://cdn.example.com/ads/"  # the release names images by URL; the importer takes the basename


def logged_totals(world_dir: Path) -> pd.DataFrame:
    """Impressions and clicks per creative, counted from the world's event logs."""
    table = ds.dataset(Path(world_dir) / "events", format="parquet").to_table(
        columns=["creative_id", "product_id", "clicked"]
    )
    return (
        table.to_pandas()
        .groupby(["creative_id", "product_id"], as_index=False, sort=True)
        .agg(impressions=("clicked", "size"), clicks=("clicked", "sum"))
    )


def export_release(world_dir: str | Path, out: str | Path, n_products: int | None = None) -> dict[str, Any]:
    """Write the release files of the first ``n_products`` products (all when None) of a world to ``out``."""
    world_dir, out = Path(world_dir), Path(out)
    catalog = pd.read_parquet(world_dir / "catalog.parquet").sort_values("product_id")
    catalog = catalog.head(n_products) if n_products else catalog
    creatives = pd.read_parquet(world_dir / "creatives.parquet").set_index("creative_id")
    totals = logged_totals(world_dir)
    totals = totals[totals["product_id"].isin(set(catalog["product_id"]))]
    for folder in ("images", "product_images"):
        (out / folder).mkdir(parents=True, exist_ok=True)
    clicks: dict[str, list[dict[str, Any]]] = {}
    captions = []
    for row in totals.itertuples():
        digest = hashlib.sha1(row.creative_id.encode()).hexdigest()
        shutil.copyfile(
            world_dir / creatives.loc[row.creative_id, "image_path"], out / "images" / f"{digest}.png"
        )
        clicks.setdefault(f"item{row.product_id}", []).append(
            {
                "creative_id": row.creative_id,
                "item_id": row.product_id,
                "creative_image_hash": CDN + digest,
                "exp_impression_cnt": int(row.impressions),
                "exp_click_cnt": int(row.clicks),
            }
        )
        captions.append(
            {"creative_id": row.creative_id, "caption": creatives.loc[row.creative_id, "description"]}
        )
    products = []
    for row in catalog.itertuples():
        shutil.copyfile(world_dir / row.image_path, out / "product_images" / f"{row.product_id}.png")
        products.append({"id": row.product_id, "image": f"{row.product_id}.png", "new_caption": row.title})
    (out / "click_data.json").write_text(json.dumps(clicks))
    _json_lines(out / "caption_public.json", captions)
    _json_lines(out / "products.json", products)
    return {
        "products": len(products),
        "creatives": len(captions),
        "impressions": int(totals["impressions"].sum()),
    }


def _json_lines(path: Path, records: list[dict[str, Any]]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
