"""The RM's verdict on a run: how often its final round's ad beats the pre-trained PM's, per the RM."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from caig.errors import UserError
from caig.evaluate.catalog import Catalog


def paired(first: pd.DataFrame, last: pd.DataFrame) -> list[tuple[str, str, str]]:
    """``(product_id, base description, final description)`` of the products both rounds described."""
    merged = first.merge(last, on="product_id", suffixes=("_base", "_final"))
    return list(merged[["product_id", "description_base", "description_final"]].itertuples(index=False))


def rm_win_rate(catalog: Catalog, scorer: Any, renderer: Any, pairs: list[tuple[str, str, str]]) -> float:
    """Mean swap-consistent P(final ad beats the base ad) over ``(product, base, final)`` descriptions;
    a description the renderer rejects (e.g. empty) is left out."""
    wins = []
    for product_id, base_text, final_text in pairs:
        image = catalog.image(product_id)
        try:
            base, final = renderer.render(image, base_text, 0), renderer.render(image, final_text, 0)
        except UserError:
            continue
        wins.append(scorer.compare(catalog.attributes(product_id), final, base))
    return float(np.mean(wins)) if wins else float("nan")
