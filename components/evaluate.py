"""Evaluate: PCPO against the DPO baseline, judged by the world's oracle (the simulated online A/B test), or
on real logs by the review batch and the MLLM judge."""

from kfp import dsl
from kfp.dsl import Dataset, Input, Metrics, Model, Output

from caig.orchestration.images import train_image


@dsl.component(base_image=train_image(), install_kfp_package=False)
def evaluate_runs(
    profile: str,
    world: Input[Dataset],
    rm: Input[Model],
    pcpo: Input[Model],
    dpo: Input[Model],
    evaluation: Output[Dataset],
    summary: Output[Metrics],
):
    """``caig.evaluate.runs.evaluate_runs`` of both runs: match rate, CTR uplift per round, plots, report.

    A GPU step: it renders the final round's ads and scores them with the RM (the RM win rate).
    """
    from pathlib import Path

    from caig.evaluate.runs import evaluate_runs
    from caig.logs import setup_logging
    from caig.orchestration.metrics import record_metrics
    from caig.orchestration.params import profile_from_parameter

    setup_logging()
    metrics = evaluate_runs(
        profile_from_parameter(profile),
        Path(world.path),
        {"pcpo": Path(pcpo.path), "dpo": Path(dpo.path)},
        Path(rm.path),
        Path(evaluation.path),
    )
    record_metrics(summary, "", metrics)
