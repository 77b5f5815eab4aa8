"""Existing ad creatives: random background descriptions per product, rendered procedurally."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image
from tqdm import tqdm

from caig.render.procedural import ProceduralRenderer
from caig.world.config import WorldConfig
from caig.world.descriptions import compose_description
from caig.world.vocabulary import terms_in_group

CREATIVE_COLUMNS = ["creative_id", "product_id", "description", "image_path"]
# How often an existing creative names a term of each group (a scene almost always).
_GROUP_RATE = {"scene": 0.95, "surface": 0.6, "prop": 0.6, "palette": 0.9, "lighting": 0.7, "framing": 0.5,
               "style": 0.6}


def sample_description(rng: np.random.Generator, eye_catching_rate: float) -> str:
    """A random background description of the kind an ad team writes by hand."""
    terms = {}
    for group, rate in _GROUP_RATE.items():
        if rng.random() < rate:
            terms[group] = str(rng.choice([t.text for t in terms_in_group(group)]))
    if rng.random() < eye_catching_rate:
        terms["eye_catching"] = str(rng.choice([t.text for t in terms_in_group("eye_catching")]))
    return compose_description(terms)


def build_creatives(config: WorldConfig, catalog: pd.DataFrame, out: Path, rng: np.random.Generator) -> pd.DataFrame:
    """Write ``n_creatives_per_product`` creatives per product: description, rendered image."""
    renderer = ProceduralRenderer(size=config.image_size)
    (out / "images" / "creatives").mkdir(parents=True, exist_ok=True)
    rows = []
    k = 0
    progress = tqdm(total=len(catalog) * config.n_creatives_per_product, desc="creatives", unit="ad", leave=False)
    for product in catalog.itertuples():
        image = Image.open(out / product.image_path)
        for _ in range(config.n_creatives_per_product):
            cid = f"C{k:06d}"
            description = sample_description(rng, config.eye_catching_rate)
            path = f"images/creatives/{cid}.png"
            renderer.render(image, description, seed=int(rng.integers(2**31))).save(out / path)
            rows.append({"creative_id": cid, "product_id": product.product_id, "description": description,
                         "image_path": path})
            k += 1
            progress.update()
    progress.close()
    return pd.DataFrame(rows, columns=CREATIVE_COLUMNS)
