"""Ingest: raw click logs -> per-creative daily CTR statistics, bad rows quarantined with counts."""

from kfp import dsl
from kfp.dsl import Dataset, Input, Metrics, Output

from caig.orchestration.images import step_image


@dsl.component(base_image=step_image(), install_kfp_package=False)
def ingest_events(
    profile: str, world: Input[Dataset], as_of: str, stats: Output[Dataset], summary: Output[Metrics]
):
    """Ingest the world's ``events/`` with ``caig.data.ingest.ingest_events``; fail above the quarantine limit.

    ``as_of`` is "now" for the future-timestamp check (ISO-8601; empty: the current time).
    """
    from pathlib import Path

    from caig.data.ingest import ingest_events as ingest
    from caig.data.tables import read_creatives
    from caig.logs import setup_logging
    from caig.orchestration.metrics import record_metrics
    from caig.orchestration.params import parse_as_of, profile_from_parameter

    setup_logging()
    config = profile_from_parameter(profile)
    source = Path(world.path)
    creatives = read_creatives(source / "creatives.parquet")
    report = ingest(source / "events", Path(stats.path), config.data.ingest, creatives, parse_as_of(as_of))
    result = {k: v for k, v in report.to_dict().items() if k not in ("files_read", "quarantine_files")}
    record_metrics(summary, "data", result)
    stats.metadata.update({"rows": report.stats_rows, "events_total": report.events_total})
    if not report.passed:
        raise RuntimeError(f"{'; '.join(report.failures())}; see {stats.path}/ingest_report.json")
