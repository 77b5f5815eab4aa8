"""``caig-training``: world -> ingest -> validate -> RM pairs -> report.

Grows as the stages land: features, pre-training, RM, PCPO and DPO in parallel, evaluate, register.
No ``from __future__ import annotations`` here: KFP reads the pipeline's type annotations at runtime.
"""

from typing import NamedTuple

from components.ingest import ingest_events
from components.pairs import build_pairs
from components.report import run_report
from components.validate import validate_stats
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
    def caig_training(profile: str, seed: int = 0, as_of: str = "") -> Outputs:
        """Args: profile: the whole profile as JSON (caig.orchestration.params); seed: the simulated
        world's seed; as_of: "now" for the data checks (ISO-8601; empty: the current time)."""
        world = deterministic(build_world(profile=profile, seed=seed).set_display_name("world"), config)
        data = world.outputs["world"]
        ingest = flaky(
            ingest_events(profile=profile, world=data, as_of=as_of).set_display_name("ingest"), config
        )
        stats = ingest.outputs["stats"]
        validate = validate_stats(profile=profile, stats=stats, as_of=as_of).set_display_name("validate")
        deterministic(validate, config)
        pairs = (
            build_pairs(profile=profile, world=data, stats=stats).after(validate).set_display_name("rm-pairs")
        )
        deterministic(pairs, config)
        report = run_report(
            world=data,
            world_summary=world.outputs["summary"],
            data_summary=ingest.outputs["summary"],
            validation_summary=validate.outputs["summary"],
            pairs_summary=pairs.outputs["summary"],
        )
        deterministic(report.set_display_name("report"), config)
        return Outputs(report.outputs["report"], report.outputs["summary"], report.outputs["metrics"])

    return caig_training
