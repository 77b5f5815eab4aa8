"""Importer for the official CAIG data release's layout (REFERENCE.md, "Data formats"): real click logs in,
a run's data directory out, in the layout the simulated world has (``catalog.parquet``, ``creatives.parquet``,
``events/``, images beside them) but with no ``world.json``: no simulator, no oracle behind it.

The release has aggregated counts, not events: a JSON file mapping a product key to its creatives, each
``{creative_id, creative_image_hash, exp_impression_cnt, exp_click_cnt, ...}`` (a flat JSON list or JSON
lines of such items also work), captions as JSON lines ``{"creative_id": ..., "caption": ...}`` (or one JSON
object keyed by creative_id), a folder of creative images named by the basename of ``creative_image_hash``,
and the products ``{id, image, new_caption}`` with a folder of their RGBA images. Each creative's counts are
written as that many impression events booked on one given date (``event_id`` ``<creative>-<n>``), so that
ingestion, validation and every later stage read real logs exactly as they read the world's. Rows that cannot
be used are written to ``rejected.parquet`` with a reason, and counted; images are copied into the
directory, so that a run reads an immutable copy.
"""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from caig.data.config import CaigImportConfig
from caig.data.events import EVENT_SCHEMA
from caig.errors import UserError

log = logging.getLogger("caig.data")

IMPORT_REASONS = (
    "null_id",
    "wrong_type",
    "zero_impressions",
    "clicks_exceed_impressions",
    "duplicate_creative",
    "unknown_product",
    "image_missing",
)
PRODUCT_REASONS = ("null_id", "duplicate_product", "caption_missing", "image_missing")
PRODUCT_ATTRIBUTES = ("category", "tags", "colour", "price")  # kept when the products file has them
_IMAGE_SUFFIXES = ("", ".png", ".jpg", ".jpeg", ".webp")
EVENTS_PER_FILE = 1_000_000


@dataclass(frozen=True)
class ReleaseFiles:
    """Where the release's files are: click data, captions, creative images, products and their images."""

    clicks: Path
    images: Path
    products: Path
    product_images: Path
    captions: Path | None = None

    @classmethod
    def in_folder(cls, root: str | Path) -> ReleaseFiles:
        """The files under their release names in one folder (as `caig world export-release` writes them)."""
        root = Path(root)
        return cls(
            root / "click_data.json",
            root / "images",
            root / "products.json",
            root / "product_images",
            root / "caption_public.json",
        )

    def check(self) -> None:
        """A ``UserError`` naming the option whose file or folder is missing."""
        for option, path, folder in (
            ("--clicks", self.clicks, False),
            ("--products", self.products, False),
            ("--images", self.images, True),
            ("--product-images", self.product_images, True),
        ):
            if not (path.is_dir() if folder else path.is_file()):
                kind = "folder" if folder else "file"
                raise UserError(f"{option} {path}: no such {kind}; pass the release's {option[2:]} {kind}")


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


def read_products(path: Path, config: CaigImportConfig) -> list[dict[str, Any]]:
    """The release's product records (a JSON list, an object keyed by product id, or JSON lines)."""
    text = Path(path).read_text(encoding="utf-8")
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        data = _json_lines(text, path, "--products")
    if isinstance(data, dict):
        data = [{config.product_id_field: k, **v} for k, v in data.items() if isinstance(v, dict)]
    if not isinstance(data, list):
        raise UserError(
            f"--products {path}: expected a JSON list, an object keyed by product id or JSON lines"
        )
    return [r for r in data if isinstance(r, dict)]


def require_fields(records: list[dict[str, Any]], fields: dict[str, str], option: str, path: Path) -> None:
    """A ``UserError`` when no record has a required field: the file's field names differ from the profile's
    ``data.caig_import`` settings (``fields``: setting -> field name)."""
    for setting, name in fields.items():
        if records and not any(name in r for r in records):
            raise UserError(
                f"{option} {path}: no record has the field '{name}' (data.caig_import.{setting}); set it to "
                f"the file's name for it, e.g. --set data.caig_import.{setting}=NAME"
            )


def _check_product(
    record: dict[str, Any], config: CaigImportConfig, images: Path, seen: set[str]
) -> tuple[dict | None, str | None]:
    """One product record as a catalog row (with its image file) or a reject reason."""
    pid = record.get(config.product_id_field)
    if pid in (None, ""):
        return None, "null_id"
    if str(pid) in seen:
        return None, "duplicate_product"
    title = next((record[f] for f in config.caption_fields if record.get(f)), None)
    if title is None:
        return None, "caption_missing"
    image = _find_image(images, str(record.get(config.product_image_field) or ""))
    if image is None:
        return None, "image_missing"
    seen.add(str(pid))
    extra = {a: record[a] for a in PRODUCT_ATTRIBUTES if record.get(a) is not None}
    return {"product_id": str(pid), "title": str(title), "source_image": image, **extra}, None


def import_catalog(files: ReleaseFiles, config: CaigImportConfig) -> tuple[pd.DataFrame, list[dict]]:
    """(catalog rows with their source image, rejected product records)."""
    records = read_products(files.products, config)
    require_fields(
        records,
        {"product_id_field": config.product_id_field, "product_image_field": config.product_image_field},
        "--products",
        files.products,
    )
    rows, rejected, seen = [], [], set()
    for index, record in enumerate(records):
        row, reason = _check_product(record, config, files.product_images, seen)
        if row is None:
            rejected.append(_rejected("products", index, reason, record))
        else:
            rows.append(row)
    return pd.DataFrame(rows, columns=["product_id", "title", "source_image", *_present(rows)]), rejected


def import_creatives(
    files: ReleaseFiles, config: CaigImportConfig, products: set[str]
) -> tuple[pd.DataFrame, list[dict]]:
    """(creative rows with counts, caption and source image, rejected click items)."""
    items = read_click_items(files.clicks)
    require_fields(
        items,
        {
            "creative_field": config.creative_field,
            "impressions_field": config.impressions_field,
            "clicks_field": config.clicks_field,
            "image_field": config.image_field,
        },
        "--clicks",
        files.clicks,
    )
    caption_of = read_captions(files.captions, config)
    rows, rejected, seen = [], [], set()
    for index, item in enumerate(items):
        row, reason = _check_item(item, config, seen)
        if row is not None and row["product_id"] not in products:
            row, reason = None, "unknown_product"
        if row is not None:
            row["source_image"] = _find_image(files.images, row.pop("image"))
            row, reason = (row, None) if row["source_image"] else (None, "image_missing")
        if row is None:
            rejected.append(_rejected("clicks", index, reason, item))
        else:
            rows.append({**row, "description": caption_of.get(row["creative_id"], "")})
    columns = ["creative_id", "product_id", "impressions", "clicks", "source_image", "description"]
    return pd.DataFrame(rows, columns=columns), rejected


def _present(rows: list[dict]) -> list[str]:
    return [a for a in PRODUCT_ATTRIBUTES if any(a in r for r in rows)]


def _rejected(file: str, index: int, reason: str | None, record: Any) -> dict[str, Any]:
    return {"file": file, "index": index, "reason": reason, "item": json.dumps(record, default=str)[:2000]}


def copy_images(sources: pd.Series, names: pd.Series, folder: Path, root: Path) -> list[str]:
    """Copy each source image to ``root/folder/<name><suffix>``; return the paths relative to ``root``."""
    (root / folder).mkdir(parents=True, exist_ok=True)
    paths = []
    for source, name in zip(sources, names, strict=True):
        relative = folder / f"{name}{Path(source).suffix}"
        shutil.copyfile(source, root / relative)
        paths.append(relative.as_posix())
    return paths


def write_count_events(creatives: pd.DataFrame, day: date, segment: str, events_dir: Path) -> int:
    """Each creative's impressions as events on ``day`` (its first ``clicks`` clicked); return the count.

    Written in files of about ``EVENTS_PER_FILE`` rows, one creative at a time: memory stays bounded.
    """
    folder = events_dir / day.isoformat()
    folder.mkdir(parents=True, exist_ok=True)
    ts = pd.Timestamp(day, tz="UTC")
    batch, size, part, total = [], 0, 0, 0
    for row in creatives.itertuples():
        n = int(row.impressions)
        batch.append(
            pa.table(
                {
                    "event_id": [f"{row.creative_id}-{k}" for k in range(n)],
                    "ts": pa.array([ts] * n, pa.timestamp("us", tz="UTC")),
                    "product_id": [row.product_id] * n,
                    "creative_id": [row.creative_id] * n,
                    "segment": [segment] * n,
                    "clicked": np.arange(n) < int(row.clicks),
                },
                schema=EVENT_SCHEMA,
            )
        )
        size, total = size + n, total + n
        if size >= EVENTS_PER_FILE:
            pq.write_table(pa.concat_tables(batch), folder / f"part-{part:05d}.parquet")
            batch, size, part = [], 0, part + 1
    if batch:
        pq.write_table(pa.concat_tables(batch), folder / f"part-{part:05d}.parquet")
    return total


def import_caig_release(
    files: ReleaseFiles, out_dir: Path, config: CaigImportConfig, stats_date: date | None = None
) -> dict[str, Any]:
    """Turn the release into a run's data directory at ``out_dir``: ``catalog.parquet``,
    ``creatives.parquet``, ``events/``, ``images/``, ``rejected.parquet`` and ``import_report.json``.

    Args:
        files: the release's files (``ReleaseFiles``).
        out_dir: the data directory to write (what ``caig run --data`` / the pipelines' ``data`` take).
        config: the release's field names and the segment to assign.
        stats_date: the date the aggregated counts are booked on (the release has none); today by default.
    """
    files.check()
    catalog, rejected_products = import_catalog(files, config)
    creatives, rejected = import_creatives(files, config, set(catalog["product_id"]))
    if creatives.empty:
        reasons = _reasons(rejected, IMPORT_REASONS)
        raise UserError(
            f"--clicks {files.clicks}: no usable creative ({len(rejected)} rejected: "
            f"{', '.join(f'{k} {v}' for k, v in reasons.items() if v) or 'the file lists none'}); "
            "check the field names (data.caig_import) and the --images and --products folders"
        )
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stats_date = stats_date or date.today()
    report = _write(catalog, creatives, out_dir, config, stats_date)
    all_rejected = rejected_products + rejected
    pd.DataFrame(all_rejected, columns=["file", "index", "reason", "item"]).to_parquet(
        out_dir / "rejected.parquet", index=False
    )
    report.update(
        {
            "items_read": len(creatives) + len(rejected),
            "rows_rejected": len(rejected),
            "reject_reasons": _reasons(rejected, IMPORT_REASONS),
            "products_read": len(catalog) + len(rejected_products),
            "products_rejected": len(rejected_products),
            "product_reject_reasons": _reasons(rejected_products, PRODUCT_REASONS),
        }
    )
    (out_dir / "import_report.json").write_text(json.dumps(report, indent=2))
    log.info(
        "imported %d products and %d creatives (%d events); rejected %d products, %d creatives",
        report["products"],
        report["rows_imported"],
        report["events"],
        report["products_rejected"],
        report["rows_rejected"],
    )
    return report


def _write(
    catalog: pd.DataFrame, creatives: pd.DataFrame, out: Path, config: CaigImportConfig, day: date
) -> dict[str, Any]:
    catalog = catalog.assign(
        image_path=copy_images(catalog["source_image"], catalog["product_id"], Path("images/products"), out)
    ).drop(columns="source_image")
    creatives = creatives.assign(
        image_path=copy_images(
            creatives["source_image"], creatives["creative_id"], Path("images/creatives"), out
        )
    )
    catalog.to_parquet(out / "catalog.parquet", index=False)
    creatives[["creative_id", "product_id", "description", "image_path"]].to_parquet(
        out / "creatives.parquet", index=False
    )
    events = write_count_events(creatives, day, config.segment, out / "events")
    return {
        "products": len(catalog),
        "products_with_creatives": int(creatives["product_id"].nunique()),
        "rows_imported": len(creatives),
        "events": events,
        "clicks": int(creatives["clicks"].sum()),
        "date": day.isoformat(),
        "segment": config.segment,
        "captions_missing": int((creatives["description"] == "").sum()),
        "attributes": ["title", *[c for c in PRODUCT_ATTRIBUTES if c in catalog.columns]],
    }


def _reasons(rejected: list[dict], reasons: tuple[str, ...]) -> dict[str, int]:
    counts = dict.fromkeys(reasons, 0)
    for r in rejected:
        counts[r["reason"]] += 1
    return counts
