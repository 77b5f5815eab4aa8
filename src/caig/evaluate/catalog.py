"""A data directory's product catalog, as the review and win-rate evaluations read it."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image

from caig.errors import UserError

CATALOG_COLUMNS = ("product_id", "title", "image_path")


class Catalog:
    """A data directory's products (``catalog.parquet`` with ``product_id, title, image_path``): a built
    world or a user's exported catalog; image paths are relative to the directory."""

    def __init__(self, directory: str | Path):
        self.directory = Path(directory)
        path = self.directory / "catalog.parquet"
        if not path.is_file():
            raise UserError(
                f"{self.directory} holds no catalog.parquet; pass --data a world or data directory "
                "(catalog.parquet with product_id, title, image_path, and the images)"
            )
        catalog = pd.read_parquet(path)
        missing = [c for c in CATALOG_COLUMNS if c not in catalog.columns]
        if missing:
            raise UserError(
                f"{path} lacks column(s) {', '.join(missing)}; the catalog needs {CATALOG_COLUMNS}"
            )
        self.products = catalog.set_index("product_id")

    def check(self, product_ids: Sequence[str], source: str) -> None:
        """Raise naming the first product of ``source`` that the catalog does not know."""
        unknown = sorted(set(product_ids) - set(self.products.index))
        if unknown:
            raise UserError(
                f"{source}: product {unknown[0]!r} ({len(unknown)} in all) is not in "
                f"{self.directory / 'catalog.parquet'}; pass --data the catalog the run described"
            )

    def image(self, product_id: str) -> Image.Image:
        """The product's cut-out (RGBA)."""
        path = self.directory / str(self.products.loc[product_id, "image_path"])
        try:
            return Image.open(path).convert("RGBA")
        except OSError as err:
            raise UserError(f"product {product_id!r}: cannot read its image {path} ({err})") from None

    def attributes(self, product_id: str) -> dict[str, Any]:
        """The product's catalog row as plain JSON values (tags a list, price a float)."""
        row = self.products.loc[product_id]
        out: dict[str, Any] = {"product_id": product_id}
        for key, value in row.items():
            if key in ("image_path", "mask_path"):
                continue
            if isinstance(value, np.ndarray):
                value = [str(v) for v in value]
            elif isinstance(value, np.generic):
                value = value.item()
            out[str(key)] = value
        return out
