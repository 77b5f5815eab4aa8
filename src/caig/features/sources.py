"""Prepare the Feast offline sources of a run: parquet files in ``<store>/data/`` that the repo's views read.

Turns the run's catalog, creatives, ingested daily stats and RM priors into the four tables named by the
FileSources in ``feature_repo/caig_features.py``. Types are fixed by explicit Arrow schemas so Feast infers
the same field types every time, even for an empty table.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from caig.errors import UserError
from caig.features.config import FeaturesConfig
from caig.features.priors import RM_PRIOR_SCHEMA, empty_rm_priors, read_rm_priors
from caig.features.windows import window_columns, window_stats
from caig.generate.register import GENERATED, PROVENANCE_COLUMNS

log = logging.getLogger("caig.features")

TS = pa.timestamp("us", tz="UTC")
PRODUCT_PROFILE_SCHEMA = pa.schema(
    [
        ("product_id", pa.string()),
        ("title", pa.string()),
        ("category", pa.string()),
        ("price", pa.float64()),
        ("colour", pa.string()),
        ("event_timestamp", TS),
    ]
)
PRODUCT_CREATIVES_SCHEMA = pa.schema(
    [
        ("product_id", pa.string()),
        ("creative_ids", pa.list_(pa.string())),
        ("n_creatives", pa.int64()),
        ("event_timestamp", TS),
    ]
)
CTR_STATS_SCHEMA = pa.schema(
    [("creative_id", pa.string()), ("product_id", pa.string()), ("event_timestamp", TS)]
    + [(name, pa.float64() if name.startswith("ctr_") else pa.int64()) for name in window_columns()]
)
OPTIONAL_PRODUCT_COLUMNS = ("category", "price", "colour")  # imported real catalogs may have the title only
SOURCE_FILES = {
    "product_profile": "product_profile.parquet",
    "product_creatives": "product_creatives.parquet",
    "creative_ctr_stats": "creative_ctr_stats.parquet",
    "rm_prior": "rm_priors.parquet",
}


def resolve(base: Path, path: str) -> Path:
    """``path`` if absolute, else relative to ``base`` (the run directory)."""
    candidate = Path(path).expanduser()
    return candidate if candidate.is_absolute() else Path(base) / candidate


def prepare_sources(
    config: FeaturesConfig, run_dir: Path, store_dir: Path, snapshot_time: pd.Timestamp | None = None
) -> dict[str, int]:
    """Write the offline sources from the run's data into ``store_dir/data``; return row counts per table.

    Args:
        snapshot_time: timestamp of the catalog and creative lists (UTC). Default: the start of the first
            day in the stats, so point-in-time joins anywhere in the logged period see the catalog.
    """
    catalog = _read(resolve(run_dir, config.catalog_path), "catalog", ["product_id", "title"])
    creatives = _read(resolve(run_dir, config.creatives_path), "creatives", ["creative_id", "product_id"])
    stats = _read(
        resolve(run_dir, config.stats_path), "creative stats", [], hint="run `caig data ingest` first"
    )
    windows = window_stats(stats)
    generated = read_generated(resolve(run_dir, config.creatives_path))
    if snapshot_time is None:
        first = windows["event_timestamp"].min() - pd.Timedelta(days=1) if len(windows) else None
        snapshot_time = first if first is not None else pd.Timestamp.now(tz="UTC").floor("s")
    tables = {
        "product_profile": (product_profile(catalog, snapshot_time), PRODUCT_PROFILE_SCHEMA),
        "product_creatives": (
            product_creatives(catalog, creatives, snapshot_time, set(generated["creative_id"])),
            PRODUCT_CREATIVES_SCHEMA,
        ),
        "creative_ctr_stats": (windows, CTR_STATS_SCHEMA),
        "rm_prior": (
            with_generated(_priors(resolve(run_dir, config.priors_path)), generated),
            RM_PRIOR_SCHEMA,
        ),
    }
    data_dir = Path(store_dir) / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    counts = {}
    for name, (frame, schema) in tables.items():
        table = pa.Table.from_pandas(frame[schema.names], schema=schema, preserve_index=False)
        pq.write_table(table, data_dir / SOURCE_FILES[name])
        counts[name] = table.num_rows
    log.info("prepared offline sources in %s: %s", data_dir, counts)
    return counts


def product_profile(catalog: pd.DataFrame, snapshot_time: pd.Timestamp) -> pd.DataFrame:
    """One row per product: title, category, price, colour, stamped at the catalog snapshot; a column the
    catalog lacks is null (Feast serves it as missing), and logged."""
    duplicated = catalog["product_id"].duplicated()
    if duplicated.any():
        raise UserError(
            f"catalog: {int(duplicated.sum())} duplicate product_id(s); product_id must be unique"
        )
    missing = [c for c in OPTIONAL_PRODUCT_COLUMNS if c not in catalog.columns]
    if missing:
        log.warning("the catalog has no %s: the product profile serves them as null", ", ".join(missing))
    frame = catalog.reindex(columns=["product_id", "title", *OPTIONAL_PRODUCT_COLUMNS])
    frame["price"] = frame["price"].astype("float64")
    return frame.assign(event_timestamp=_utc(snapshot_time))


def read_generated(creatives_path: Path) -> pd.DataFrame:
    """The generated creatives' registrations (``generated.parquet`` beside the creatives table, written by
    ``caig generate``); an empty table when nothing was generated."""
    path = creatives_path.parent / GENERATED
    return pd.read_parquet(path) if path.is_file() else pd.DataFrame(columns=PROVENANCE_COLUMNS)


def product_creatives(
    catalog: pd.DataFrame,
    creatives: pd.DataFrame,
    snapshot_time: pd.Timestamp,
    generated: Collection[str] = (),
) -> pd.DataFrame:
    """One row per catalog product: the sorted ids of its creatives (empty list when it has none).

    The row is stamped at the catalog snapshot plus one microsecond per generated creative of the product
    (``generated``: their ids): a list that grew by a registration is newer than the one an online store holds
    (Redis keeps a row only if it is newer), whatever "now" the run materializes up to, and history's
    point-in-time joins still see the catalog from the start of the logs."""
    unknown = ~creatives["product_id"].isin(catalog["product_id"])
    if unknown.any():
        raise UserError(
            f"creatives: {int(unknown.sum())} creative(s) of products missing from the catalog "
            f"(e.g. {creatives.loc[unknown, 'product_id'].iloc[0]}); use the catalog of the same world"
        )
    lists = creatives.sort_values("creative_id").groupby("product_id")["creative_id"].agg(list)
    ids = [lists.get(pid, []) for pid in catalog["product_id"]]
    new = set(generated)
    versions = [sum(c in new for c in x) for x in ids]
    stamp = _utc(snapshot_time) + pd.to_timedelta(versions, unit="us")
    return pd.DataFrame(
        {
            "product_id": catalog["product_id"].to_numpy(),
            "creative_ids": ids,
            "n_creatives": [len(x) for x in ids],
            "event_timestamp": stamp,
        }
    )


def with_generated(priors: pd.DataFrame, generated: pd.DataFrame) -> pd.DataFrame:
    """The RM priors plus those of the ``generated`` creatives (``read_generated``) that the priors table does
    not score yet: a generated creative reaches the selector warm-started by the RM's ranking at
    registration, until the next refresh re-ranks it."""
    generated = generated.rename(columns={"created_at": "event_timestamp"})
    generated = generated[~generated["creative_id"].isin(set(priors["creative_id"]))]
    if generated.empty:
        return priors
    generated = generated.assign(rm_score=generated["win_rate"])  # as the refresh's: mean P(beats another)
    return pd.concat([priors, generated[RM_PRIOR_SCHEMA.names]], ignore_index=True)


def _priors(path: Path) -> pd.DataFrame:
    if path.is_file():
        return read_rm_priors(path)
    log.warning(
        "no RM priors at %s yet (the reward stage writes them); the selector will see null priors", path
    )
    return empty_rm_priors()


def _read(path: Path, what: str, columns: list[str], hint: str = "") -> pd.DataFrame:
    if not path.is_file():
        extra = f"; {hint}" if hint else ""
        raise UserError(
            f"{what} file {path} does not exist; set features.{_key(what)} to the right path{extra}"
        )
    frame = pd.read_parquet(path)
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise UserError(f"{what} file {path} lacks column(s) {', '.join(missing)}")
    return frame


def _key(what: str) -> str:
    return {"catalog": "catalog_path", "creatives": "creatives_path"}.get(what, "stats_path")


def _utc(stamp: pd.Timestamp) -> pd.Timestamp:
    stamp = pd.Timestamp(stamp)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
