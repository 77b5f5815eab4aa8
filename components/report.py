"""Run report: every step's metrics merged into one flat object, an HTML page and a Markdown summary."""

from kfp import dsl
from kfp.dsl import HTML, Dataset, Input, Markdown, Metrics, Output

from caig.orchestration.images import step_image


@dsl.component(base_image=step_image(), install_kfp_package=False)
def run_report(
    world: Input[Dataset],
    evaluation: Input[Dataset],
    online: Input[Dataset],
    world_summary: Input[Metrics],
    data_summary: Input[Metrics],
    validation_summary: Input[Metrics],
    pairs_summary: Input[Metrics],
    features_summary: Input[Metrics],
    tasks_summary: Input[Metrics],
    pretrain_summary: Input[Metrics],
    rm_summary: Input[Metrics],
    pcpo_summary: Input[Metrics],
    dpo_summary: Input[Metrics],
    evaluation_summary: Input[Metrics],
    online_summary: Input[Metrics],
    register_summary: Input[Metrics],
    report: Output[HTML],
    summary: Output[Markdown],
    metrics: Output[Metrics],
):
    """The training run's report with ``caig.orchestration.report.build_run_report``: metrics by stage,
    the world's contact sheet, the evaluation's figures and the online A/B's."""
    from pathlib import Path

    from caig.logs import setup_logging
    from caig.orchestration.metrics import record_metrics
    from caig.orchestration.report import build_run_report, figures_in

    setup_logging()
    figures = {"World: products and their creatives": Path(world.path) / "contact_sheet.png"}
    figures.update(figures_in(Path(evaluation.path)))
    figures.update(figures_in(Path(online.path)))
    steps = [
        world_summary,
        data_summary,
        validation_summary,
        pairs_summary,
        features_summary,
        tasks_summary,
        pretrain_summary,
        rm_summary,
        pcpo_summary,
        dpo_summary,
        evaluation_summary,
        online_summary,
        register_summary,
    ]
    merged = build_run_report([s.path for s in steps], figures, report.path, summary.path)
    record_metrics(metrics, "", merged)


@dsl.component(base_image=step_image(), install_kfp_package=False)
def refresh_report(
    data_summary: Input[Metrics],
    validation_summary: Input[Metrics],
    priors_summary: Input[Metrics],
    features_summary: Input[Metrics],
    report: Output[HTML],
    summary: Output[Markdown],
    metrics: Output[Metrics],
    generate_summary: Input[Metrics] = None,
):
    """The refresh run's report with ``caig.orchestration.report.build_run_report`` (with the generate
    step's figures first when caig-generate ran it)."""
    from caig.logs import setup_logging
    from caig.orchestration.metrics import record_metrics
    from caig.orchestration.report import build_run_report

    setup_logging()
    steps = [data_summary, validation_summary, priors_summary, features_summary]
    steps = [generate_summary, *steps] if generate_summary is not None else steps
    merged = build_run_report(
        [s.path for s in steps], {}, report.path, summary.path, title="caig refresh report"
    )
    record_metrics(metrics, "", merged)
