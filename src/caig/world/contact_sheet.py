"""A contact sheet: products and their creatives in a grid, with logged CTRs, for a person to look at."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from PIL import Image, ImageDraw, ImageFont


def draw_contact_sheet(directory: Path, catalog: pd.DataFrame, creatives: pd.DataFrame,
                       logged_ctr: pd.Series, n_rows: int, per_row: int = 5) -> Image.Image:
    """One row per product (one product of each category first): the product, then its creatives."""
    picks = catalog.groupby("category", sort=False).head(max(1, n_rows // max(1, catalog.category.nunique())) + 1)
    picks = picks.head(n_rows)
    cell = Image.open(directory / catalog.image_path.iloc[0]).size[0]
    label_h = 14
    sheet = Image.new("RGB", ((per_row + 1) * cell, len(picks) * (cell + label_h)), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default()
    for r, product in enumerate(picks.itertuples()):
        y = r * (cell + label_h)
        tile = Image.new("RGB", (cell, cell), (235, 235, 235))
        product_img = Image.open(directory / product.image_path).convert("RGBA")
        tile.paste(product_img, (0, 0), product_img)
        sheet.paste(tile, (0, y))
        draw.text((2, y + cell), product.title[:22], fill=(0, 0, 0), font=font)
        own = creatives[creatives.product_id == product.product_id].head(per_row)
        for c, creative in enumerate(own.itertuples(), start=1):
            sheet.paste(Image.open(directory / creative.image_path).convert("RGB"), (c * cell, y))
            ctr = logged_ctr.get(creative.creative_id, float("nan"))
            draw.text((c * cell + 2, y + cell), f"{creative.creative_id} CTR {ctr:.2%}", fill=(0, 0, 0), font=font)
    return sheet
