"""``caig generate``: new creatives for a catalog's products, written by the PM, ranked by the RM, registered.

Reads the data directory's catalog, creatives and LOGGED counts (each product's CTR anchors its generated
creatives' priors), never an oracle. Products are handled in batches; every candidate's fate (registered,
ranked below the best M, unrenderable, unsafe, repeated) is counted in the report.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image
from tqdm import tqdm

from caig.errors import UserError
from caig.generate.candidates import Candidate, rank_candidates, render_candidates, write_descriptions
from caig.generate.config import GenerateConfig
from caig.generate.register import content_id, register
from caig.mllm.instruct import catalog_attributes
from caig.orchestration.rm_priors import prior_means, product_ctr
from caig.profile import Profile

log = logging.getLogger("caig.generate")
BATCH_PRODUCTS = 8  # products whose descriptions are sampled in one PM call


def select_products(catalog: pd.DataFrame, creatives: pd.DataFrame, config: GenerateConfig) -> list[str]:
    """The product ids that get new creatives, in catalog order."""
    ids = catalog["product_id"].astype(str).tolist()
    if config.products == "all":
        return ids
    if config.products == "listed":
        unknown = sorted(set(config.product_ids) - set(ids))
        if unknown:
            raise UserError(
                f"generate.product_ids: {unknown[0]!r} is not in the catalog ({len(unknown)} unknown)"
            )
        return [p for p in ids if p in set(config.product_ids)]
    counts = creatives.groupby("product_id").size()
    return [p for p in ids if counts.get(p, 0) < config.min_creatives]


def product_seed(seed: int, product_id: str) -> int:
    """The first render seed of a product's candidates: fixed by the product, whatever else is chosen."""
    return seed + int(hashlib.sha1(product_id.encode()).hexdigest()[:6], 16)


def product_ctrs(data_dir: Path) -> tuple[pd.Series, float]:
    """Each product's logged CTR (add-one smoothed) and the catalog-wide one, from the data's events."""
    from caig.data.tasks import logged_creative_ctr

    stats = logged_creative_ctr(data_dir).merge(
        pd.read_parquet(data_dir / "creatives.parquet", columns=["creative_id", "product_id"]),
        on="creative_id",
    )
    overall = float(stats["clicks"].sum() + 1.0) / float(stats["impressions"].sum() + 2.0)
    return product_ctr(stats), overall


def generate_creatives(
    profile: Profile,
    data_dir: str | Path,
    pm_dir: str | Path,
    rm_dir: str | Path,
    adapter: str | Path | None = None,
) -> dict[str, Any]:
    """Generate, rank and register creatives for the configured products of ``data_dir``; return the report
    (also written to ``data_dir/generate_report.json``)."""
    from caig.mllm.build import load_model, model_dir_of
    from caig.render.factory import make_renderer
    from caig.reward.scoring import RewardScorer

    config, priors, data_dir = profile.generate, profile.orchestration.refresh, Path(data_dir)
    catalog, creatives = _tables(data_dir)
    chosen = select_products(catalog, creatives, config)
    model, processor = load_model(model_dir_of(pm_dir), profile.mllm.dtype)
    if adapter is not None:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, str(adapter)).merge_and_unload()
    scorer, renderer = RewardScorer.from_dir(rm_dir), make_renderer(profile.render)
    attributes = catalog_attributes(profile.mllm.instruct_attributes, catalog.columns)
    ctr, overall = product_ctrs(data_dir)
    provenance = {
        "pm": str(Path(pm_dir).resolve()),
        "rm": str(Path(rm_dir).resolve()),
        "adapter": str(adapter or ""),
    }
    rows, images, fates = [], {}, Counter()
    products = catalog.set_index("product_id")
    for start in tqdm(
        range(0, len(chosen), BATCH_PRODUCTS), desc="generate", unit="batch", disable=not chosen
    ):
        batch = [_product(products, pid, data_dir) for pid in chosen[start : start + BATCH_PRODUCTS]]
        for (row, image), texts in zip(
            batch, write_descriptions(model, processor, batch, config, attributes)
        ):
            seed = product_seed(config.seed, row["product_id"])
            candidates = render_candidates(renderer, row["product_id"], image, texts, seed)
            ranked = rank_candidates(scorer, row, candidates)
            fates.update(c.status for c in candidates if c.status != "rendered")
            fates["ranked_below_keep"] += max(len(ranked) - config.keep, 0)
            kept = ranked[: config.keep]
            scores = np.array([c.rm_score for c in kept])
            means = prior_means(scores, float(ctr.get(row["product_id"], overall)), priors.prior_temperature)
            for candidate, mean in zip(kept, means):
                record = _record(candidate, float(mean), priors.prior_strength, provenance, renderer.name)
                rows.append(record)
                images[record["creative_id"]] = candidate.image
    counts = register(data_dir, rows, images)
    report = {
        "products": len(chosen),
        "candidates": len(chosen) * config.candidates,
        "kept": len(rows),
        **counts,
        "not_kept": {k: fates[k] for k in ("ranked_below_keep", "unrenderable", "unsafe", "repeated")},
        **provenance,
    }
    (data_dir / "generate_report.json").write_text(json.dumps(report, indent=2))
    log.info("generated for %d products: %d registered, %d already there", len(chosen), counts["registered"],
             counts["already_registered"])  # fmt: skip
    return report


def _tables(data_dir: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    for name in ("catalog.parquet", "creatives.parquet"):
        if not (data_dir / name).is_file():
            raise UserError(
                f"--data {data_dir} holds no {name}; pass a world or `caig data import` directory"
            )
    catalog = pd.read_parquet(data_dir / "catalog.parquet")
    if "image_path" not in catalog.columns:
        raise UserError(
            f"{data_dir / 'catalog.parquet'} has no image_path column; the PM reads each product's image"
        )
    return catalog, pd.read_parquet(data_dir / "creatives.parquet")


def _product(products: pd.DataFrame, product_id: str, data_dir: Path) -> tuple[dict[str, Any], Image.Image]:
    row = {"product_id": product_id, **products.loc[product_id].to_dict()}
    if "tags" in row:
        row["tags"] = list(row["tags"])
    path = data_dir / str(row.get("image_path") or "")
    if not row.get("image_path") or not path.is_file():
        raise UserError(
            f"catalog.parquet: product {product_id!r} has no image at image_path={row.get('image_path')!r}; "
            "every product needs its cut-out image (RGBA) under the data directory"
        )
    return row, Image.open(path).convert("RGBA")


def _record(
    candidate: Candidate, prior_mean: float, strength: float, provenance: dict[str, str], renderer: str
) -> dict[str, Any]:
    """A kept candidate's registration row: content id, provenance, RM score and its Beta prior (the
    refresh's prior strength and temperature, as every other creative's)."""
    facts = {k: v for k, v in candidate.render_facts().items() if k != "seconds"}
    pm = provenance["pm"] + (f"+{provenance['adapter']}" if provenance["adapter"] else "")
    return {
        "creative_id": content_id(candidate.product_id, candidate.description, candidate.seed, pm, renderer),
        "product_id": candidate.product_id,
        "description": candidate.description,
        "seed": candidate.seed,
        "pm": pm,
        "rm": provenance["rm"],
        "render": json.dumps(facts, sort_keys=True),
        "rm_score": candidate.rm_score,
        "win_rate": candidate.win_rate,
        "prior_alpha": strength * prior_mean,
        "prior_beta": strength * (1.0 - prior_mean),
        "created_at": pd.Timestamp.now(tz="UTC"),
    }
