"""Run report: every step's metrics merged into one flat object, an HTML page and a Markdown summary."""

from kfp import dsl
from kfp.dsl import HTML, Dataset, Input, Markdown, Metrics, Output

from caig.orchestration.images import step_image


@dsl.component(base_image=step_image(), install_kfp_package=False)
def run_report(
    world: Input[Dataset],
    world_summary: Input[Metrics],
    data_summary: Input[Metrics],
    validation_summary: Input[Metrics],
    pairs_summary: Input[Metrics],
    report: Output[HTML],
    summary: Output[Markdown],
    metrics: Output[Metrics],
):
    """Write the run report with ``caig.orchestration.report.build_run_report``."""
    from pathlib import Path

    from caig.logs import setup_logging
    from caig.orchestration.metrics import record_metrics
    from caig.orchestration.report import build_run_report

    setup_logging()
    figures = {"World: products and their creatives": Path(world.path) / "contact_sheet.png"}
    steps = [world_summary, data_summary, validation_summary, pairs_summary]
    merged = build_run_report([s.path for s in steps], figures, report.path, summary.path)
    record_metrics(metrics, "", merged)
