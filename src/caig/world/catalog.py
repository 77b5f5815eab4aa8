"""The catalog: products with title, category, tags, price, colour, and an RGBA image with its mask."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from caig.world.config import WorldConfig
from caig.world.products import draw_product, product_mask
from caig.world.vocabulary import CATEGORIES, COLOURS

_ADJECTIVES = ("classic", "modern", "everyday", "premium", "compact", "vintage", "bold", "essential")
CATALOG_COLUMNS = ["product_id", "title", "category", "tags", "price", "colour", "image_path", "mask_path"]


def product_id(index: int) -> str:
    return f"P{index:05d}"


def build_catalog(config: WorldConfig, out: Path, rng: np.random.Generator) -> pd.DataFrame:
    """Draw ``config.n_products`` products, balanced over categories, and save their images and masks."""
    categories = CATEGORIES[: config.n_categories]
    (out / "images" / "products").mkdir(parents=True, exist_ok=True)
    (out / "images" / "masks").mkdir(parents=True, exist_ok=True)
    rows = []
    for i in tqdm(range(config.n_products), desc="products", unit="product", leave=False):
        category = categories[i % len(categories)]
        colour = COLOURS[str(rng.choice(category.colours))]
        adjective = str(rng.choice(_ADJECTIVES))
        pid = product_id(i)
        image = draw_product(category, colour, config.image_size, rng)
        image_path, mask_path = f"images/products/{pid}.png", f"images/masks/{pid}.png"
        image.save(out / image_path)
        product_mask(image).save(out / mask_path)
        low, high = category.price
        rows.append({
            "product_id": pid,
            "title": f"{adjective} {colour.name} {category.name}",
            "category": category.name,
            "tags": [*category.tags[: int(rng.integers(1, 4))], colour.name],
            "price": round(float(rng.uniform(low, high)), 0) - 0.01,
            "colour": colour.name,
            "image_path": image_path,
            "mask_path": mask_path,
        })
    return pd.DataFrame(rows, columns=CATALOG_COLUMNS)
