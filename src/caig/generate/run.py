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
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image
from tqdm import tqdm

from caig.errors import UserError
from caig.generate.candidates import Candidate, rank_candidates, render_candidates, write_descriptions
from caig.generate.config import GenerateConfig
from caig.generate.fatigue import daily_product_stats, fatigued_products
from caig.generate.register import content_id, register
from caig.mllm.instruct import catalog_attributes
from caig.orchestration.rm_priors import prior_means, product_ctr
from caig.profile import Profile

log = logging.getLogger("caig.generate")
BATCH_PRODUCTS = 8  # products whose descriptions are sampled in one PM call


def select_products(
    catalog: pd.DataFrame, creatives: pd.DataFrame, config: GenerateConfig, fatigued: Collection[str] = ()
) -> list[str]:
    """The product ids that get new creatives, in catalog order (``fatigued``: products the fatigue trigger
    found, added in mode ``fewer_than``)."""
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
    counts, tired = creatives.groupby("product_id").size(), set(fatigued)
    return [p for p in ids if counts.get(p, 0) < config.min_creatives or p in tired]


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


def resolve_adapter(path: str | Path) -> Path:
    """A LoRA adapter directory, the last finished round's adapter of a PCPO / DPO output directory, or that
    of a run's ``pcpo/`` (``caig.runlayout``)."""
    from caig.runlayout import RunLayout, last_round_adapter

    path = Path(path)
    if (path / "adapter_config.json").is_file():
        return path
    found = last_round_adapter(path) or RunLayout(path).adapter()
    if found is None:
        raise UserError(
            f"--adapter {path}: neither a LoRA adapter (adapter_config.json) nor a `caig pcpo` run with a "
            "finished round (round-NN/adapter/), nor a run with pcpo/round-NN/adapter/"
        )
    return found


@dataclass
class Generation:
    """What a generation pass produced: registration rows, their images by creative id, and the fates of the
    candidates not kept."""

    rows: list[dict[str, Any]]
    images: dict[str, Image.Image]
    not_kept: Counter


class Generator:
    """The PM (with its adapter merged), the renderer and the RM, loaded once; ``generate(products)`` writes,
    renders, ranks and keeps candidates for a list of catalog products of one data directory."""

    def __init__(
        self,
        profile: Profile,
        data_dir: str | Path,
        pm_dir: str | Path,
        rm_dir: str | Path,
        adapter: str | Path | None = None,
    ):
        from caig.mllm.build import load_model, model_dir_of
        from caig.render.factory import make_renderer
        from caig.reward.scoring import RewardScorer

        self.config, self.priors, self.data_dir = (
            profile.generate,
            profile.orchestration.refresh,
            Path(data_dir),
        )
        self.catalog, self.creatives = _tables(self.data_dir)
        adapter = resolve_adapter(adapter) if adapter is not None else None
        self.model, self.processor = load_model(model_dir_of(pm_dir), profile.mllm.dtype)
        if adapter is not None:
            from peft import PeftModel

            self.model = PeftModel.from_pretrained(self.model, str(adapter)).merge_and_unload()
        self.scorer, self.renderer = RewardScorer.from_dir(rm_dir), make_renderer(profile.render)
        self.attributes = catalog_attributes(profile.mllm.instruct_attributes, self.catalog.columns)
        self.ctr, self.overall_ctr = product_ctrs(self.data_dir)
        self.provenance = {
            "pm": str(Path(pm_dir).resolve()),
            "rm": str(Path(rm_dir).resolve()),
            "adapter": str(Path(adapter).resolve()) if adapter is not None else "",
        }

    def generate(self, product_ids: Sequence[str]) -> Generation:
        """Candidates for ``product_ids``, in batches of ``BATCH_PRODUCTS``; the best ``keep`` of each product
        with their Beta priors (the refresh's strength and temperature, anchored on the product's logged CTR)."""
        rows, images, fates = [], {}, Counter()
        products = self.catalog.set_index("product_id")
        for start in tqdm(range(0, len(product_ids), BATCH_PRODUCTS), desc="generate", unit="batch",
                          disable=not product_ids):  # fmt: skip
            batch = [
                _product(products, p, self.data_dir) for p in product_ids[start : start + BATCH_PRODUCTS]
            ]
            texts = write_descriptions(self.model, self.processor, batch, self.config, self.attributes)
            for (row, image), descriptions in zip(batch, texts):
                seed = product_seed(self.config.seed, row["product_id"])
                candidates = render_candidates(self.renderer, row["product_id"], image, descriptions, seed)
                ranked = rank_candidates(self.scorer, row, candidates)
                fates.update(c.status for c in candidates if c.status != "rendered")
                fates["ranked_below_keep"] += max(len(ranked) - self.config.keep, 0)
                kept = ranked[: self.config.keep]
                anchor = float(self.ctr.get(row["product_id"], self.overall_ctr))
                means = prior_means(
                    np.array([c.rm_score for c in kept]), anchor, self.priors.prior_temperature
                )
                for candidate, mean in zip(kept, means):
                    record = self._record(candidate, float(mean))
                    rows.append(record)
                    images[record["creative_id"]] = candidate.image
        return Generation(rows, images, fates)

    def _record(self, candidate: Candidate, prior_mean: float) -> dict[str, Any]:
        """A kept candidate's registration row: content id, provenance, RM score and its Beta prior."""
        facts = {k: v for k, v in candidate.render_facts().items() if k != "seconds"}
        pm = self.provenance["pm"] + (f"+{self.provenance['adapter']}" if self.provenance["adapter"] else "")
        strength, renderer = self.priors.prior_strength, self.renderer.name
        return {
            "creative_id": content_id(
                candidate.product_id, candidate.description, candidate.seed, pm, renderer
            ),
            "product_id": candidate.product_id,
            "description": candidate.description,
            "seed": candidate.seed,
            "pm": pm,
            "rm": self.provenance["rm"],
            "render": json.dumps(facts, sort_keys=True),
            "rm_score": candidate.rm_score,
            "win_rate": candidate.win_rate,
            "prior_alpha": strength * prior_mean,
            "prior_beta": strength * (1.0 - prior_mean),
            "created_at": pd.Timestamp.now(tz="UTC"),
        }


def products_to_generate(generator: Generator) -> tuple[list[str], int]:
    """The configured products of the generator's data directory, and how many the fatigue trigger added."""
    config, fatigued = generator.config, []
    if config.products == "fewer_than" and config.fatigue_margin > 0:
        verdict = fatigued_products(
            daily_product_stats(generator.data_dir),
            config.fatigue_days,
            config.fatigue_margin,
            config.fatigue_min_impressions,
        )
        fatigued = verdict.loc[verdict["fatigued"], "product_id"].tolist()
    chosen = select_products(generator.catalog, generator.creatives, config, fatigued)
    plain = select_products(generator.catalog, generator.creatives, config)
    return chosen, len(chosen) - len(plain)


def generate_creatives(
    profile: Profile,
    data_dir: str | Path,
    pm_dir: str | Path,
    rm_dir: str | Path,
    adapter: str | Path | None = None,
) -> dict[str, Any]:
    """Generate, rank and register creatives for the configured products of ``data_dir``; return the report
    (also written to ``data_dir/generate_report.json``). ``adapter``: a LoRA adapter or a PCPO run."""
    generator = Generator(profile, data_dir, pm_dir, rm_dir, adapter)
    chosen, fatigued = products_to_generate(generator)
    result = generator.generate(chosen)
    counts = register(generator.data_dir, result.rows, result.images)
    report = {
        "products": len(chosen),
        "products_fatigued": fatigued,
        "candidates": len(chosen) * generator.config.candidates,
        "kept": len(result.rows),
        **counts,
        "not_kept": {
            k: result.not_kept[k] for k in ("ranked_below_keep", "unrenderable", "unsafe", "repeated")
        },
        **generator.provenance,
    }
    (generator.data_dir / "generate_report.json").write_text(json.dumps(report, indent=2))
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
