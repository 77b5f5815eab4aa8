"""Validate: Great Expectations suites on the ingested statistics, with Data Docs; the pipeline stops on failure."""

from kfp import dsl
from kfp.dsl import Artifact, Dataset, Input, Metrics, Output

from caig.orchestration.images import step_image


@dsl.component(base_image=step_image(), install_kfp_package=False)
def validate_stats(
    profile: str, stats: Input[Dataset], as_of: str, docs: Output[Artifact], summary: Output[Metrics]
):
    """Run ``caig.data.validate.validate_stats``; Data Docs (``index.html``) and ``validation.json`` in ``docs``."""
    from pathlib import Path

    from caig.data.validate import validate_stats as validate
    from caig.logs import setup_logging
    from caig.orchestration.metrics import record_metrics
    from caig.orchestration.params import parse_as_of, profile_from_parameter

    setup_logging()
    config = profile_from_parameter(profile)
    result = validate(
        Path(stats.path), Path(docs.path), config.data.validation, config.data.ingest, parse_as_of(as_of)
    )
    failed = result["failed_expectations"]
    record_metrics(
        summary,
        "data.validation",
        {
            "success": result["success"],
            "stats_rows": result["stats_rows"],
            "failed": len(failed),
            "skipped": len(result["skipped"]),
        },
    )
    if not result["success"]:
        first = failed[0]
        raise RuntimeError(
            f"{len(failed)} expectation(s) failed, first: {first['suite']}: {first['expectation']} "
            f"{first['kwargs']}; see the Data Docs in {docs.path}/index.html"
        )
