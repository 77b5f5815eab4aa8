"""``caig-training``: world -> ingest -> report (grows as the stages land: validate, features, pretrain,
RM, PCPO and DPO in parallel, evaluate, register).

No ``from __future__ import annotations`` here: KFP reads the pipeline's type annotations at runtime.
"""

from typing import NamedTuple

from components.ingest import ingest_events
from components.report import run_report
from components.world import build_world
from kfp import dsl
from kfp.dsl import HTML, Markdown, Metrics

from caig.orchestration.config import OrchestrationConfig
from pipelines.placement import deterministic, flaky

NAME = "caig-training"


class Outputs(NamedTuple):
    """What a run leaves for the user: the report page, its Markdown summary, the flat metrics."""

    report: HTML
    summary: Markdown
    metrics: Metrics


def training_pipeline(config: OrchestrationConfig):
    """The training pipeline, placed on the cluster as ``config`` says."""

    @dsl.pipeline(
        name=NAME, description="CAIG training: data, pre-training, reward model, PCPO vs DPO, report."
    )
    def caig_training(profile: str, seed: int = 0) -> Outputs:
        """Args: profile: the whole profile as JSON (caig.orchestration.params); seed: the simulated world's seed."""
        world = deterministic(build_world(profile=profile, seed=seed).set_display_name("world"), config)
        ingest = flaky(
            ingest_events(profile=profile, world=world.outputs["world"]).set_display_name("ingest"), config
        )
        report = run_report(
            world=world.outputs["world"],
            world_summary=world.outputs["summary"],
            data_summary=ingest.outputs["summary"],
        )
        deterministic(report.set_display_name("report"), config)
        return Outputs(report.outputs["report"], report.outputs["summary"], report.outputs["metrics"])

    return caig_training
