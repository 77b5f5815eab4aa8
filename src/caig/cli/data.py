"""``caig data``: ingest click logs, validate the statistics, build reward-model pairs, import real data."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import click

from caig.cli.options import profile_options, writable_dir
from caig.errors import UserError
from caig.profile import Profile

_PATH = click.Path(path_type=Path)


def parse_as_of(text: str | None) -> datetime:
    """``--as-of`` as a timezone-aware time (naive means UTC); now when not given."""
    if not text:
        return datetime.now(UTC)
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise UserError(
            f"--as-of '{text}' is not an ISO-8601 time; write e.g. 2026-10-15T00:00:00Z"
        ) from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _read_creatives(path: Path | None):
    if path is None:
        return None
    from caig.data.tables import read_creatives

    return read_creatives(path)


@click.group()
def data() -> None:
    """Click-log ingestion, Great Expectations validation, reward-model pairs, importers."""


@data.command("ingest")
@profile_options
@click.option(
    "--events", "events_dir", type=_PATH, required=True, help="Folder of parquet event logs (any depth)."
)
@click.option("--out", type=_PATH, required=True, help="Stats directory (DS); re-used by later runs.")
@click.option(
    "--creatives",
    type=_PATH,
    default=None,
    help="creatives.parquet: quarantine events of unknown creatives or mismatched products.",
)
@click.option(
    "--as-of", "as_of", default=None, help="'Now' for the future-timestamp check (ISO-8601; default: now)."
)
def ingest(profile: Profile, events_dir: Path, out: Path, creatives: Path | None, as_of: str | None) -> None:
    """Ingest event logs into DS/creative_stats.parquet; exit 2 if too many rows are quarantined or files
    cannot be read."""
    from caig.data.ingest import ingest_events

    report = ingest_events(
        events_dir, writable_dir(out), profile.data.ingest, _read_creatives(creatives), parse_as_of(as_of)
    )
    summary = {k: v for k, v in report.to_dict().items() if k not in ("files_read", "quarantine_files")}
    click.echo(json.dumps(summary, indent=2))
    if not report.passed:
        raise UserError(f"{'; '.join(report.failures())}; see {out / 'ingest_report.json'}")


@data.command("validate")
@profile_options
@click.option("--stats", "stats_dir", type=_PATH, required=True, help="Stats directory (DS) to validate.")
@click.option(
    "--out", type=_PATH, required=True, help="REPORT directory: index.html (Data Docs), validation.json."
)
@click.option(
    "--previous",
    type=_PATH,
    default=None,
    help="Previous run's validation.json for the row-count drift check (default: OUT/validation.json).",
)
@click.option("--as-of", "as_of", default=None, help="'Now' for freshness checks (ISO-8601; default: now).")
def validate(profile: Profile, stats_dir: Path, out: Path, previous: Path | None, as_of: str | None) -> None:
    """Run the Great Expectations suites on DS; exit 2 if any expectation fails."""
    from caig.data.validate import validate_stats

    summary = validate_stats(
        stats_dir.resolve(),
        writable_dir(out).resolve(),
        profile.data.validation,
        profile.data.ingest,
        parse_as_of(as_of),
        previous,
    )
    click.echo(json.dumps({k: summary[k] for k in ("success", "stats_rows", "skipped")}, indent=2))
    if not summary["success"]:
        first = summary["failed_expectations"][0]
        raise UserError(
            f"{len(summary['failed_expectations'])} expectation(s) failed, first: {first['suite']}: "
            f"{first['expectation']} {first['kwargs']}; see {out / 'index.html'} and {out / 'validation.json'}"
        )


@data.command("pairs")
@profile_options
@click.option(
    "--stats",
    "stats_dir",
    type=_PATH,
    required=True,
    help="Stats directory (DS) with creative_stats.parquet.",
)
@click.option(
    "--creatives",
    type=_PATH,
    required=True,
    help="creatives.parquet (creative_id, product_id, image_path; relative paths are under its folder).",
)
@click.option(
    "--out", type=_PATH, required=True, help="PAIRS directory: train.parquet, test.parquet, pairs.json."
)
def pairs(profile: Profile, stats_dir: Path, creatives: Path, out: Path) -> None:
    """Build reward-model pairs (pair rule of data.pairs) split by product (data.split)."""
    from caig.data.tables import read_creatives, read_stats
    from caig.data.training_pairs import build_pair_dataset

    table = read_creatives(creatives, need_images=True)
    summary = build_pair_dataset(
        read_stats(stats_dir),
        table,
        creatives.parent,
        profile.data.pairs,
        profile.data.split,
        writable_dir(out),
    )
    click.echo(json.dumps({k: summary[k] for k in ("counts", "splits")}, indent=2))


@click.command("import")
@profile_options
@click.option(
    "--clicks",
    type=_PATH,
    required=True,
    help="Click data of the official CAIG release: JSON {product: [creatives]} or a list / JSON lines.",
)
@click.option(
    "--captions",
    type=_PATH,
    default=None,
    help="Captions keyed by creative_id (JSON lines or a JSON object).",
)
@click.option(
    "--images",
    "images_dir",
    type=_PATH,
    required=True,
    help="Folder of creative images named by creative_image_hash.",
)
@click.option(
    "--products",
    type=_PATH,
    required=True,
    help="Products {id, image, new_caption} (JSON lines, list or object).",
)
@click.option(
    "--product-images", "product_images", type=_PATH, required=True, help="Folder of the product images."
)
@click.option(
    "--date", "stats_date", default=None, help="Date to book the aggregated counts on (default: today)."
)
@click.option(
    "--out", type=_PATH, required=True, help="The run's data directory: catalog, creatives, events/, images/."
)
def import_release(
    profile: Profile,
    clicks: Path,
    captions: Path | None,
    images_dir: Path,
    products: Path,
    product_images: Path,
    stats_date: str | None,
    out: Path,
) -> None:
    """Import the official CAIG data release into a run's data directory (no world.json: no simulator)."""
    from datetime import date

    from caig.data.importers import ReleaseFiles, import_caig_release

    day = None
    if stats_date:
        try:
            day = date.fromisoformat(stats_date)
        except ValueError:
            raise UserError(f"--date '{stats_date}' is not a date; write it as YYYY-MM-DD") from None
    files = ReleaseFiles(clicks, images_dir, products, product_images, captions)
    report = import_caig_release(files, writable_dir(out), profile.data.caig_import, day)
    click.echo(json.dumps(report, indent=2))


data.add_command(import_release)
