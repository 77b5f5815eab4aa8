"""Review batches for the match rate on real data, where there is no oracle (paper A.2): the export.

``export_batch`` samples the same products from every (method, round) of PCPO / DPO runs, renders each
generated description into an ad with the profile's renderer, and writes a batch directory: ``review.html``
(the blind review page), ``batch.json`` (the manifest: which item is which method, round, product and
description) and ``ads/ITEM.png``. The reviewers' answers are checked by ``caig.evaluate.review_answers``
and turned into match rates by ``caig.evaluate.review_aggregate``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from caig.errors import UserError
from caig.evaluate.catalog import Catalog
from caig.evaluate.review import ANSWERS, QUESTION, ReviewItem, export_review
from caig.evaluate.rounds import load_rounds

log = logging.getLogger("caig.evaluate")

MANIFEST = "batch.json"
PAGE = "review.html"
ADS = "ads"


def load_generations(runs: Mapping[str, str | Path], rounds: Sequence[int] | None = None) -> pd.DataFrame:
    """The held-out descriptions of every run: ``method, round, product_id, description``.

    ``runs`` maps a method name to a ``caig pcpo --out`` directory; ``rounds`` picks rounds (default all).
    """
    if not runs:
        raise UserError("no runs given; pass --run METHOD=DIR (a `caig pcpo --out` directory)")
    frames = []
    for method, run_dir in runs.items():
        by_round = load_rounds(Path(run_dir))
        wanted = range(len(by_round)) if rounds is None else rounds
        for r in wanted:
            if not 0 <= r < len(by_round):
                raise UserError(
                    f"--rounds {r}: {run_dir} has rounds 0..{len(by_round) - 1}; pick rounds every run has"
                )
            frame = by_round[r][["product_id", "description"]].copy()
            frame.insert(0, "round", r)
            frame.insert(0, "method", method)
            frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def sample_products(generations: pd.DataFrame, per_cell: int, seed: int) -> list[str]:
    """``per_cell`` products (or all) drawn among those that every (method, round) described: each method
    and round is judged on the same products, as the paper's match rate."""
    if per_cell < 1:
        raise UserError(f"--per-cell {per_cell}: review at least 1 product per method and round")
    cells = [set(g["product_id"]) for _, g in generations.groupby(["method", "round"])]
    common = sorted(set.intersection(*cells))
    if not common:
        raise UserError("the runs share no held-out product; export runs made on the same products")
    rng = np.random.default_rng(seed)
    picked = rng.choice(len(common), size=min(per_cell, len(common)), replace=False)
    return [common[i] for i in sorted(picked)]


def export_batch(
    renderer: Any,
    runs: Mapping[str, str | Path],
    data_dir: str | Path,
    out: str | Path,
    batch_id: str,
    per_cell: int = 50,
    rounds: Sequence[int] | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """Write the batch directory ``out`` (page, manifest, ad images); return the manifest's summary.

    Items appear in a seeded random order under opaque ids, so a reviewer cannot tell method or round.
    A description the renderer rejects (e.g. empty) yields no ad: it is listed as unrenderable.
    """
    _check_batch_id(batch_id)
    catalog, out = Catalog(data_dir), Path(out)
    generations = load_generations(runs, rounds)
    for method, run_dir in runs.items():
        catalog.check(generations.loc[generations["method"] == method, "product_id"].tolist(), str(run_dir))
        _warn_on_other_world(Path(run_dir), catalog.directory)
    products = sample_products(generations, per_cell, seed)
    chosen = generations[generations["product_id"].isin(products)]
    chosen = chosen.sample(frac=1.0, random_state=seed).reset_index(drop=True)
    items, manifest_items, unrenderable = render_ads(renderer, catalog, chosen, out, batch_id)
    export_review(items, out / PAGE, batch_id)
    manifest = {
        "batch_id": batch_id,
        "question": QUESTION,
        "answers": list(ANSWERS),
        "data_dir": str(catalog.directory),
        "runs": {m: str(p) for m, p in runs.items()},
        "products": {pid: catalog.attributes(pid) for pid in products},
        "items": manifest_items,
        "unrenderable": unrenderable,
    }
    (out / MANIFEST).write_text(json.dumps(manifest, indent=1))
    summary = {
        "batch_id": batch_id,
        "page": str(out / PAGE),
        "manifest": str(out / MANIFEST),
        "items": len(manifest_items),
        "products": len(products),
        "cells": int(chosen.groupby(["method", "round"]).ngroups),
        "unrenderable": len(unrenderable),
    }
    log.info("review batch %s: %d ads of %d products", batch_id, len(manifest_items), len(products))
    return summary


def render_ads(
    renderer: Any, catalog: Catalog, chosen: pd.DataFrame, out: Path, batch_id: str
) -> tuple[list[ReviewItem], dict[str, dict[str, Any]], list[dict[str, Any]]]:
    """Render each chosen description into ``out/ads/<item id>.png``, ids numbered in ``chosen``'s order:
    (the page's items, the manifest's items by id, the descriptions the renderer rejected and why)."""
    (out / ADS).mkdir(parents=True, exist_ok=True)
    items, manifest_items, unrenderable = [], {}, []
    for row in chosen.itertuples():
        product_image = catalog.image(row.product_id)
        try:
            ad = renderer.render(product_image, row.description, 0)
        except UserError as err:
            unrenderable.append(
                {
                    "method": row.method,
                    "round": int(row.round),
                    "product_id": row.product_id,
                    "description": row.description,
                    "reason": str(err),
                }
            )
            continue
        item_id = f"{batch_id}-{len(items):04d}"
        ad.save(out / ADS / f"{item_id}.png")
        title = str(catalog.products.loc[row.product_id, "title"])
        items.append(
            ReviewItem(
                item_id, row.product_id, title, row.description, row.method, int(row.round), product_image, ad
            )
        )
        manifest_items[item_id] = {
            "method": row.method,
            "round": int(row.round),
            "product_id": row.product_id,
            "description": row.description,
            "ad": f"{ADS}/{item_id}.png",
        }
    return items, manifest_items, unrenderable


def _check_batch_id(batch_id: str) -> None:
    if not batch_id or not all(c.isalnum() or c in "-_" for c in batch_id):
        raise UserError(f"--batch-id {batch_id!r}: use letters, digits, '-' and '_' only (it names files)")


def _warn_on_other_world(run_dir: Path, data_dir: Path) -> None:
    """Product ids repeat across worlds: warn when the run says it described another world's products."""
    summary = run_dir / "pcpo.json"
    if not summary.is_file():
        return
    eval_world = json.loads(summary.read_text()).get("eval_world")
    if eval_world and Path(eval_world).resolve() != data_dir.resolve():
        log.warning(
            "%s described the products of %s (pcpo.json eval_world), but --data is %s: "
            "the images may belong to other products",
            run_dir,
            eval_world,
            data_dir,
        )


def read_manifest(batch: str | Path) -> dict[str, Any]:
    """The manifest of a batch directory (or the ``batch.json`` path itself)."""
    path = Path(batch)
    path = path / MANIFEST if path.is_dir() else path
    try:
        manifest = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise UserError(
            f"{path}: not a readable batch manifest ({err}); pass --batch the `caig review export --out` directory"
        ) from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("items"), dict):
        raise UserError(f"{path}: not a batch manifest (no 'items'); pass the batch.json that export wrote")
    return manifest
