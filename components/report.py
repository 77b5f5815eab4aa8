"""Run report: the run's headline, figures, sample ads and every metric as an HTML page and as Markdown; the
merged metrics and the headline's numbers as KFP Metrics."""

from kfp import dsl
from kfp.dsl import HTML, Dataset, Input, Markdown, Metrics, Model, Output

from caig.orchestration.images import step_image


@dsl.component(base_image=step_image(), install_kfp_package=False)
def run_report(
    world: Input[Dataset],
    evaluation: Input[Dataset],
    online: Input[Dataset],
    pcpo: Input[Model],
    dpo: Input[Model],
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
    headline: Output[Metrics],
):
    """The training run's report with ``caig.orchestration.report.build_run_report``: the headline (data,
    RM against its ceiling, PCPO against DPO by round, online A/B), the figures, sample ads by round of the
    ``pcpo`` and ``dpo`` runs, every metric. ``metrics``: every metric; ``headline``: the headline's."""
    from caig.logs import setup_logging
    from caig.orchestration.metrics import record_metrics
    from caig.orchestration.report import build_run_report, training_figures
    from caig.orchestration.report_headline import headline_numbers
    from caig.orchestration.report_samples import collect_samples

    setup_logging()
    figures = training_figures(world.path, evaluation.path, online.path)
    samples = collect_samples({"pcpo": pcpo.path, "dpo": dpo.path}, evaluation.path, world.path)
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
    merged = build_run_report([s.path for s in steps], figures, report.path, summary.path, samples=samples)
    record_metrics(metrics, "", merged)
    record_metrics(headline, "", headline_numbers(merged))


@dsl.component(base_image=step_image(), install_kfp_package=False)
def refresh_report(
    data_summary: Input[Metrics],
    validation_summary: Input[Metrics],
    priors_summary: Input[Metrics],
    features_summary: Input[Metrics],
    report: Output[HTML],
    summary: Output[Markdown],
    metrics: Output[Metrics],
    headline: Output[Metrics],
    generate_summary: Input[Metrics] = None,
):
    """The refresh run's report with ``caig.orchestration.report.build_run_report`` (with the generate
    step's metrics first when caig-generate ran it): the headline (data, the selector's priors), every
    metric."""
    from caig.logs import setup_logging
    from caig.orchestration.metrics import record_metrics
    from caig.orchestration.report import build_run_report
    from caig.orchestration.report_headline import headline_numbers

    setup_logging()
    steps = [data_summary, validation_summary, priors_summary, features_summary]
    steps = [generate_summary, *steps] if generate_summary is not None else steps
    merged = build_run_report(
        [s.path for s in steps], {}, report.path, summary.path, title="caig refresh report"
    )
    record_metrics(metrics, "", merged)
    record_metrics(headline, "", headline_numbers(merged))
