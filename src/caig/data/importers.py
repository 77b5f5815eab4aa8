"""Importer for the official CAIG data release's layout (REFERENCE.md, "Data formats").

The release has aggregated counts, not events: a JSON file mapping a product key to its creatives, each
``{creative_id, creative_image_hash, exp_impression_cnt, exp_click_cnt, ...}`` (a flat JSON list or JSON
lines of such items also work), captions as JSON lines ``{"creative_id": ..., "caption": ...}`` (or one JSON
object keyed by creative_id), and a folder of images named by the basename of ``creative_image_hash``.
``import_caig_release`` turns them into our ``creative_stats.parquet`` (one row per creative, on one given
date and segment) and ``creatives.parquet``, so that ``caig data validate`` and ``caig data pairs`` work on
real data. Rows that cannot be used are written to ``rejected.parquet`` with a reason, and counted.
"""

from __future__ import annotations

import json
import logging
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd

from caig.data.config import CaigImportConfig
from caig.errors import UserError

log = logging.getLogger("caig.data")

IMPORT_REASONS = (
    "null_id",
    "wrong_type",
    "zero_impressions",
    "clicks_exceed_impressions",
    "duplicate_creative",
)
_IMAGE_SUFFIXES = ("", ".png", ".jpg", ".jpeg", ".webp")


def read_click_items(path: Path) -> list[dict[str, Any]]:
    """The release's click items, each with ``_key`` (the product key it was listed under, if any)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"--clicks {path}: no such file; pass the release's click-data JSON")
    text = path.read_text(encoding="utf-8")
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        data = _json_lines(text, path, "--clicks")
    if isinstance(data, dict):
        items = []
        for key, group in data.items():
            if not isinstance(group, list):
                raise UserError(f"--clicks {path}: entry '{key}' is not a list of creatives")
            items += [{**item, "_key": str(key)} for item in group if isinstance(item, dict)]
        return items
    if isinstance(data, list):
        return [item for item in data if isinstance(item, dict)]
    raise UserError(f"--clicks {path}: expected a JSON object of lists, a JSON list or JSON lines")


def read_captions(path: Path | None, config: CaigImportConfig) -> dict[str, str]:
    """Captions by creative_id, from JSON lines or one JSON object keyed by creative_id."""
    if path is None:
        return {}
    path = Path(path)
    if not path.is_file():
        raise UserError(f"--captions {path}: no such file; pass the release's caption file")
    text = path.read_text(encoding="utf-8")
    try:
        data = json.loads(text)
        records = (
            [
                {config.creative_field: k, **(v if isinstance(v, dict) else {config.caption_fields[0]: v})}
                for k, v in data.items()
            ]
            if isinstance(data, dict)
            else data
        )
    except json.JSONDecodeError:
        records = _json_lines(text, path, "--captions")
    captions = {}
    for record in records:
        cid = record.get(config.creative_field)
        caption = next((record[f] for f in config.caption_fields if record.get(f)), None)
        if cid is not None and caption is not None:
            captions[str(cid)] = str(caption)
    return captions


def _json_lines(text: str, path: Path, option: str) -> list[Any]:
    rows = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as err:
            raise UserError(f"{option} {path}: line {number} is not JSON ({err.msg})") from None
    return rows


def _count(value: Any) -> int | None:
    """A non-negative integer count, or None when the value is not one (1.0 and "12" are accepted)."""
    if isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    if number < 0 or not number.is_integer():
        return None
    return int(number)


def _check_item(
    item: dict[str, Any], config: CaigImportConfig, seen: set[str]
) -> tuple[dict | None, str | None]:
    """One click item as a row (creative_id, product_id, impressions, clicks, image) or a reject reason."""
    cid = item.get(config.creative_field)
    pid = item.get(config.product_field, item.get("_key"))
    if cid in (None, "") or pid in (None, ""):
        return None, "null_id"
    impressions, clicks = _count(item.get(config.impressions_field)), _count(item.get(config.clicks_field))
    if impressions is None or clicks is None:
        return None, "wrong_type"
    if impressions == 0:
        return None, "zero_impressions"
    if clicks > impressions:
        return None, "clicks_exceed_impressions"
    if str(cid) in seen:
        return None, "duplicate_creative"
    seen.add(str(cid))
    return {
        "creative_id": str(cid),
        "product_id": str(pid),
        "impressions": impressions,
        "clicks": clicks,
        "image": str(item.get(config.image_field) or ""),
    }, None


def _find_image(images_dir: Path | None, image: str) -> Path | None:
    if images_dir is None or not image:
        return None
    name = Path(image).name
    for suffix in _IMAGE_SUFFIXES:
        candidate = images_dir / f"{name}{suffix}"
        if candidate.is_file():
            return candidate.resolve()
    return None


def import_caig_release(
    clicks: Path,
    out_dir: Path,
    config: CaigImportConfig,
    captions: Path | None = None,
    images_dir: Path | None = None,
    stats_date: date | None = None,
) -> dict[str, Any]:
    """Convert the release's click data, captions and images into ``creative_stats.parquet`` and
    ``creatives.parquet`` under ``out_dir``; write ``import_report.json`` and ``rejected.parquet``.

    Args:
        clicks: the click-data JSON (see the module docstring for the accepted layouts).
        out_dir: output directory (a stats directory usable by ``caig data validate`` and ``caig data pairs``).
        config: the release's field names and the segment to assign.
        captions: caption file, or None (descriptions stay empty, counted as missing).
        images_dir: folder of creative images, or None (image paths stay empty, counted as missing).
        stats_date: the date the aggregated counts are booked on (the release has none); today by default.
    """
    items = read_click_items(clicks)
    caption_of = read_captions(captions, config)
    rows, rejected, seen = [], [], set()
    for index, item in enumerate(items):
        row, reason = _check_item(item, config, seen)
        if row is not None:
            rows.append(row)
        else:
            rejected.append({"index": index, "reason": reason, "item": json.dumps(item, default=str)[:2000]})
    kept = pd.DataFrame(rows, columns=["creative_id", "product_id", "impressions", "clicks", "image"])
    images = [_find_image(Path(images_dir) if images_dir else None, image) for image in kept["image"]]
    creatives = pd.DataFrame(
        {
            "creative_id": kept["creative_id"],
            "product_id": kept["product_id"],
            "description": [caption_of.get(c, "") for c in kept["creative_id"]],
            "image_path": [str(p) if p else "" for p in images],
        }
    )
    stats_date = stats_date or date.today()
    stats = kept.assign(date=stats_date, segment=config.segment)[
        ["creative_id", "product_id", "date", "segment", "impressions", "clicks"]
    ]
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stats.to_parquet(out_dir / "creative_stats.parquet", index=False)
    creatives.to_parquet(out_dir / "creatives.parquet", index=False)
    pd.DataFrame(rejected, columns=["index", "reason", "item"]).to_parquet(
        out_dir / "rejected.parquet", index=False
    )
    reasons = dict.fromkeys(IMPORT_REASONS, 0)
    for r in rejected:
        reasons[r["reason"]] += 1
    report = {
        "items_read": len(items),
        "rows_imported": len(kept),
        "rows_rejected": len(rejected),
        "reject_reasons": reasons,
        "products": int(kept["product_id"].nunique()),
        "date": stats_date.isoformat(),
        "segment": config.segment,
        "captions_missing": int((creatives["description"] == "").sum()),
        "images_missing": int((creatives["image_path"] == "").sum()),
    }
    (out_dir / "import_report.json").write_text(json.dumps(report, indent=2))
    log.info(
        "imported %d of %d creatives (%d rejected); %d without caption, %d without image",
        report["rows_imported"],
        report["items_read"],
        report["rows_rejected"],
        report["captions_missing"],
        report["images_missing"],
    )
    return report
