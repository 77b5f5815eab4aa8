"""The ads the curriculum's stages learn from, beside the logged pairs.

Each product's creatives with the background description they were painted from and their product's category
and colour (``creatives_with_products``); backgrounds borrowed from other products' creatives and painted
around a product (``borrowed_creatives``, ``render_borrowed``: more distinct ads per product, for perception
and the teacher); and the products held out to measure how a stage generalises (``split_products``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image
from tqdm import tqdm

from caig.errors import UserError


def creatives_with_products(
    data_dir: str | Path, switch: str = "curriculum.teacher.enabled=false"
) -> pd.DataFrame:
    """Creatives joined with their product's catalog row; an error names what is missing and ``switch``, the
    setting that turns off the caller's use of the descriptions."""
    data_dir = Path(data_dir)
    creatives = pd.read_parquet(data_dir / "creatives.parquet")
    if "description" not in creatives.columns or creatives["description"].isna().any():
        raise UserError(
            f"{data_dir}/creatives.parquet needs a 'description' for every creative (the background it was "
            f"painted from); set {switch} for creatives without descriptions"
        )
    catalog = pd.read_parquet(data_dir / "catalog.parquet", columns=["product_id", "category", "colour"])
    return creatives.merge(catalog, on="product_id", how="left", validate="many_to_one").set_index(
        "creative_id"
    )


def split_products(product_ids: pd.Series, held_out_share: float, seed: int) -> np.ndarray:
    """Boolean mask of the ads whose product is held out (whole products, so no ad's twin is in training)."""
    products = np.sort(product_ids.unique())
    rng = np.random.default_rng(seed)
    n = int(round(held_out_share * len(products)))
    held = set(rng.choice(products, size=n, replace=False).tolist()) if n else set()
    return product_ids.isin(held).to_numpy()


def borrowed_creatives(
    creatives: pd.DataFrame, data_dir: str | Path, per_product: int, renderer: Any, out: Path, seed: int
) -> pd.DataFrame:
    """``per_product`` new creatives per product: other products' background descriptions rendered around
    this product's image; same columns as ``creatives`` (ids ``B<n>``, absolute ``image_path``)."""
    rng = np.random.default_rng(seed)
    data_dir = Path(data_dir)
    catalog = pd.read_parquet(data_dir / "catalog.parquet").set_index("product_id")
    out = Path(out).resolve()  # absolute: pair sources join relative paths to the world's directory
    out.mkdir(parents=True, exist_ok=True)
    descriptions = creatives["description"].to_numpy()
    owners = creatives["product_id"].to_numpy()
    paintable = creatives["description"].str.strip().str.len().to_numpy() > 0  # an empty one paints nothing
    rows = []
    for product_id, group in tqdm(creatives.groupby("product_id", sort=True), desc="borrowed backgrounds"):
        others = np.flatnonzero((owners != product_id) & paintable)
        chosen = descriptions[rng.choice(others, size=per_product, replace=False)].tolist()
        with Image.open(data_dir / catalog.at[product_id, "image_path"]) as product:
            images = renderer.render_batch(
                product.copy(), chosen, rng.integers(2**31, size=per_product).tolist()
            )
        first = group.iloc[0]
        for description, image in zip(chosen, images, strict=True):
            cid = f"B{len(rows):07d}"
            image.convert("RGB").save(out / f"{cid}.png")
            rows.append(
                (cid, product_id, description, first["category"], first["colour"], str(out / f"{cid}.png"))
            )
    columns = ["creative_id", "product_id", "description", "category", "colour", "image_path"]
    return pd.DataFrame(rows, columns=columns).set_index("creative_id")


def render_borrowed(
    creatives: pd.DataFrame, data_dir: str | Path, per_product: int, out: Path, seed: int
) -> pd.DataFrame:
    """``borrowed_creatives`` painted by the procedural renderer at the size of the data's own ads."""
    from caig.render.config import RenderConfig
    from caig.render.factory import make_renderer

    data_dir = Path(data_dir)
    with Image.open(data_dir / creatives["image_path"].iloc[0]) as first:
        renderer = make_renderer(RenderConfig(image_size=first.size[0]))
    return borrowed_creatives(creatives, data_dir, per_product, renderer, out, seed)
