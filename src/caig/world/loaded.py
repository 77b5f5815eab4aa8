"""A built world, loaded back from its directory, with the oracle API used by evaluation and tests.

``w = load_world(DIR)``; ``w.true_ctr(product_id, description, segment=None)``;
``w.judge_match(product_id, description)``. The hidden parameters are re-drawn from the seed in
``world.json``: they never touch the disk, so no training stage can read them by accident.
"""

from __future__ import annotations

import json
from functools import cached_property
from pathlib import Path

import pandas as pd
from PIL import Image

from caig.errors import UserError
from caig.typed_config import build_config
from caig.world import oracle
from caig.world.config import WorldConfig
from caig.world.descriptions import parse_description
from caig.world.vocabulary import CATEGORIES_BY_NAME, COLOURS


class World:
    """The files of a built world, and the oracle that knows its true CTR function."""

    def __init__(self, directory: Path):
        self.directory = Path(directory)
        meta_path = self.directory / "world.json"
        if not meta_path.is_file():
            raise UserError(f"{self.directory} holds no world.json; build one with `caig world build --out DIR`")
        self.meta = json.loads(meta_path.read_text())
        self.seed = int(self.meta["seed"])
        self.config: WorldConfig = build_config(WorldConfig, self.meta["config"], "config", str(meta_path))
        self.catalog = pd.read_parquet(self.directory / "catalog.parquet")
        self.creatives = pd.read_parquet(self.directory / "creatives.parquet")
        self._params = oracle.HiddenParams(self.config, self.seed)
        self._products = {
            row.product_id: oracle.Product(row.product_id, CATEGORIES_BY_NAME[row.category], COLOURS[row.colour],
                                           float(self._params.product_appeal[i]))
            for i, row in enumerate(self.catalog.itertuples())
        }

    @property
    def segments(self) -> list[str]:
        return list(self.config.segments)

    @cached_property
    def products(self) -> pd.DataFrame:
        """The catalog indexed by product_id."""
        return self.catalog.set_index("product_id")

    def product(self, product_id: str) -> oracle.Product:
        try:
            return self._products[product_id]
        except KeyError:
            raise UserError(f"unknown product_id '{product_id}'; the world has P00000..{self.catalog.product_id.iloc[-1]}") from None

    def product_image(self, product_id: str) -> Image.Image:
        """The product's RGBA image (alpha is its mask)."""
        self.product(product_id)
        return Image.open(self.directory / self.products.loc[product_id, "image_path"]).convert("RGBA")

    def true_ctr(self, product_id: str, description: str, segment: str | None = None) -> float:
        """ORACLE (evaluation only): click probability of this ad, for a segment or over the segment mix."""
        return oracle.true_ctr(self._params, self.product(product_id), description, segment)

    def judge_match(self, product_id: str, description: str) -> str:
        """ORACLE (evaluation only): "match", or the mismatch kind "scene", "scale" or "colour" (paper A.2)."""
        return oracle.judge_match(self.product(product_id), parse_description(description))


def load_world(directory: str | Path) -> World:
    """Load a world built by ``caig world build``."""
    return World(Path(directory))
