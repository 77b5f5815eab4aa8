"""Annotation batches: match rate on real data, where there is no oracle (paper A.2).

``export_batch`` samples the same products from every (method, round) of PCPO / DPO runs, renders each
generated description into an ad with the profile's renderer, and writes a batch directory: ``review.html``
(the blind review page), ``batch.json`` (the manifest: which item is which method, round, product and
description) and ``ads/ITEM.png``. ``import_batch`` reads the answer files the reviewers' browsers saved and
turns them into match rates with 95% Wilson intervals and mismatch-kind counts per method and round.

Every answer is accounted for: an answer naming an unknown item, an answer outside the A.2 kinds or a
repeated answer is rejected with the file and item named, and the import refuses the batch unless told to
go on without the rejected answers, whose count and reasons are then part of the result.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image

from caig.errors import UserError
from caig.evaluate.review import ANSWERS, QUESTION, ReviewItem, export_review, match_rates
from caig.evaluate.rounds import load_rounds

log = logging.getLogger("caig.evaluate")

MANIFEST = "batch.json"
PAGE = "review.html"
ADS = "ads"
CATALOG_COLUMNS = ("product_id", "title", "image_path")
# An item several reviewers split on gets the first of the tied answers in this order: a mismatch before
# "match", so ties never raise the match rate.
TIE_ORDER = ("scale", "scene", "colour", "match")
SHOWN_REJECTIONS = 5


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


@dataclass
class ParsedAnswers:
    """Accepted answers (one row each: file, reviewer, item_id, answer, method, round, product_id), the
    rejected ones (file, item_id, reason) and how many answers the files held in all."""

    accepted: pd.DataFrame
    rejected: list[dict[str, Any]]
    n_total: int


def parse_answers(manifest: Mapping[str, Any], paths: Sequence[str | Path]) -> ParsedAnswers:
    """Check every answer of every file against the batch; a file that is not an answers file of this batch
    is an error, a bad answer inside one is rejected (named) and the rest are kept."""
    if not paths:
        raise UserError("no answer files given; pass --answers FILE (repeatable) saved from the review page")
    items = manifest["items"]
    rows, rejected, seen, n_total = [], [], set(), 0
    for path in paths:
        doc = _answers_file(Path(path), manifest["batch_id"])
        reviewer = str(doc.get("reviewer") or "").strip() or f"(unnamed: {Path(path).name})"
        for k, answer in enumerate(doc["answers"]):
            n_total += 1
            item_id = answer.get("item_id") if isinstance(answer, dict) else None
            reason = _rejection(answer, item_id, items)
            if reason is None and (reviewer, item_id) in seen:
                reason = f"answered twice by reviewer {reviewer!r}"
            if reason is not None:
                rejected.append({"file": str(path), "index": k, "item_id": item_id, "reason": reason})
                continue
            seen.add((reviewer, item_id))
            meta = items[item_id]
            rows.append(
                {
                    "file": str(path),
                    "reviewer": reviewer,
                    "item_id": item_id,
                    "answer": answer["answer"],
                    "method": meta["method"],
                    "round": int(meta["round"]),
                    "product_id": meta["product_id"],
                }
            )
    columns = ["file", "reviewer", "item_id", "answer", "method", "round", "product_id"]
    return ParsedAnswers(pd.DataFrame(rows, columns=columns), rejected, n_total)


def _answers_file(path: Path, batch_id: str) -> dict[str, Any]:
    try:
        doc = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise UserError(
            f"{path}: not a readable answers file ({err}); save one with the review page's button"
        ) from None
    if not isinstance(doc, dict) or not isinstance(doc.get("answers"), list):
        raise UserError(f"{path}: no 'answers' list; save the answers with the review page's button")
    if doc.get("batch_id") != batch_id:
        raise UserError(
            f"{path}: answers for batch {doc.get('batch_id')!r}, not {batch_id!r}; "
            "import them with their own batch's --batch directory"
        )
    return doc


def _rejection(answer: Any, item_id: Any, items: Mapping[str, Any]) -> str | None:
    """Why an answer cannot count, or None."""
    if not isinstance(answer, dict):
        return f"not an object with item_id and answer: {answer!r}"
    if not isinstance(item_id, str) or item_id not in items:
        return f"unknown item {item_id!r}: not in this batch"
    if answer.get("answer") not in ANSWERS:
        return f"answer {answer.get('answer')!r} is not one of {', '.join(ANSWERS)}"
    return None


def item_labels(accepted: pd.DataFrame) -> pd.DataFrame:
    """One label per answered item: its reviewers' most frequent answer (ties go to a mismatch, see
    ``TIE_ORDER``); columns item_id, method, round, answer, n_reviewers, tied, unanimous."""
    rows = []
    for item_id, group in accepted.groupby("item_id", sort=True):
        counts = Counter(group["answer"])
        top = max(counts.values())
        tied = [a for a in TIE_ORDER if counts[a] == top]
        match_votes = counts["match"]
        rows.append(
            {
                "item_id": item_id,
                "method": group["method"].iloc[0],
                "round": int(group["round"].iloc[0]),
                "answer": tied[0],
                "n_reviewers": len(group),
                "tied": len(tied) > 1,
                "unanimous": match_votes in (0, len(group)),
            }
        )
    columns = ["item_id", "method", "round", "answer", "n_reviewers", "tied", "unanimous"]
    return pd.DataFrame(rows, columns=columns)


def import_batch(
    batch: str | Path, answer_paths: Sequence[str | Path], skip_rejected: bool = False
) -> dict[str, Any]:
    """Match rate with a 95% Wilson interval and answer counts per method and round, from answer files.

    Raises, naming the first rejected answers, when any answer is rejected, unless ``skip_rejected``: then
    the rest count and the result lists every rejection. Items no reviewer answered are counted per cell.
    """
    manifest = read_manifest(batch)
    parsed = parse_answers(manifest, answer_paths)
    if parsed.rejected and not skip_rejected:
        shown = "; ".join(
            f"{r['file']}: item {r['item_id']!r}: {r['reason']}" for r in parsed.rejected[:SHOWN_REJECTIONS]
        )
        more = len(parsed.rejected) - SHOWN_REJECTIONS
        raise UserError(
            f"{len(parsed.rejected)} of {parsed.n_total} answers rejected: {shown}"
            + (f"; and {more} more" if more > 0 else "")
            + " (fix the files, or pass --skip-rejected to import the rest and list the rejections)"
        )
    labels = item_labels(parsed.accepted)
    rates = match_rates(labels) if len(labels) else pd.DataFrame()
    rates_by_cell = {(r["method"], r["round"]): r for r in rates.to_dict("records")}
    cells = []
    for (method, rnd), group in _cells(manifest).items():
        rate = rates_by_cell.get((method, rnd), {})
        answered = set(labels.loc[(labels["method"] == method) & (labels["round"] == rnd), "item_id"])
        cells.append(
            {
                "method": method,
                "round": rnd,
                "items": group["items"],
                "judged": len(answered),
                "unanswered": group["items"] - len(answered),
                "unrenderable": group["unrenderable"],
                "match_rate": _number(rate.get("match_rate")),
                "ci_low": _number(rate.get("ci_low")),
                "ci_high": _number(rate.get("ci_high")),
                "answers": {a: int(rate.get(a, 0)) for a in ANSWERS},
                "tied": int(labels.loc[labels["item_id"].isin(answered), "tied"].sum()),
            }
        )
    multi = labels[labels["n_reviewers"] > 1]
    return {
        "batch_id": manifest["batch_id"],
        "files": [str(p) for p in answer_paths],
        "reviewers": sorted(parsed.accepted["reviewer"].unique().tolist()),
        "n_answers": parsed.n_total,
        "n_accepted": len(parsed.accepted),
        "n_rejected": len(parsed.rejected),
        "rejected": parsed.rejected,
        "reviewer_agreement": {
            "items": len(multi),
            "match_agreement": _number(float(multi["unanimous"].mean())) if len(multi) else None,
        },
        "cells": cells,
    }


def _cells(manifest: Mapping[str, Any]) -> dict[tuple[str, int], dict[str, int]]:
    """Items and unrenderable descriptions of each (method, round) of the batch, in sorted order."""
    cells: dict[tuple[str, int], dict[str, int]] = {}
    for meta in manifest["items"].values():
        cells.setdefault((meta["method"], int(meta["round"])), {"items": 0, "unrenderable": 0})["items"] += 1
    for bad in manifest.get("unrenderable", []):
        cell = cells.setdefault((bad["method"], int(bad["round"])), {"items": 0, "unrenderable": 0})
        cell["unrenderable"] += 1
    return dict(sorted(cells.items()))


def _number(value: Any) -> float | None:
    """JSON-safe float: None for missing or NaN."""
    if value is None:
        return None
    value = float(value)
    return None if np.isnan(value) else value


def markdown(result: Mapping[str, Any]) -> str:
    """The import's table: one row per method and round."""
    lines = [
        "| method | round | judged | match rate | 95% CI | "
        + " | ".join(ANSWERS)
        + " | unanswered | unrenderable |",
        "|---|---|---|---|---|" + "---|" * len(ANSWERS) + "---|---|",
    ]
    for c in result["cells"]:
        rate = "-" if c["match_rate"] is None else f"{c['match_rate']:.3f}"
        ci = "-" if c["ci_low"] is None else f"{c['ci_low']:.3f}-{c['ci_high']:.3f}"
        counts = " | ".join(str(c["answers"][a]) for a in ANSWERS)
        lines.append(
            f"| {c['method']} | {c['round']} | {c['judged']} | {rate} | {ci} | {counts} | "
            f"{c['unanswered']} | {c['unrenderable']} |"
        )
    return "\n".join(lines) + "\n"
