"""``caig-refresh``: the daily loop that keeps the creative selector's features and priors current.

::

    world (new logs) -> ingest -> validate -> rank-creatives (RM priors) -> features -> report
    rm (importer: the registered RM's URI) ----/

The new logs arrive as a data directory in the world's layout (``data``; empty: the simulated world of
``seed``); the RM is imported from its URI (``rm``, e.g. the one the training run registered). No
``from __future__ import annotations`` here: KFP reads the pipeline's type annotations at runtime.
"""

from typing import NamedTuple

from components.features import materialize_features
from components.ingest import ingest_events
from components.report import refresh_report
from components.rm_priors import rank_creatives
from components.validate import validate_stats
from components.world import build_world
from kfp import dsl
from kfp.dsl import HTML, Markdown, Metrics, Model, PipelineTask

from caig.orchestration.config import OrchestrationConfig
from caig.orchestration.params import profile_parameter, world_as_of
from caig.profile import Profile
from pipelines.placement import deterministic, flaky, on_gpu, retried, with_data

NAME = "caig-refresh"


class Outputs(NamedTuple):
    """The refresh report, its Markdown summary, the flat metrics."""

    report: HTML
    summary: Markdown
    metrics: Metrics


def parameters(profile: Profile) -> dict:
    """Default parameter values for ``profile`` (``rm`` has none: a run names the RM to rank with)."""
    return {"profile": profile_parameter(profile), "as_of": world_as_of(profile.world)}


def refresh_steps(
    config: OrchestrationConfig, profile, rm, seed, as_of, data, generated: PipelineTask | None = None
) -> PipelineTask:
    """The refresh's steps, from the new logs to the report task (returned); ``rm``: the RM's importer.
    ``generated``: caig-generate's generate step, run first and summarised in the report."""
    world = with_data(build_world(profile=profile, seed=seed, data=data), config)
    flaky(world.set_display_name("new-logs"), config)  # the data at a location changes day to day
    if generated is not None:
        world.after(generated)  # the copy holds what the generate step registered
    source = world.outputs["world"]
    ingest = flaky(
        ingest_events(profile=profile, world=source, as_of=as_of).set_display_name("ingest"), config
    )
    stats = ingest.outputs["stats"]
    validate = deterministic(
        validate_stats(profile=profile, stats=stats, as_of=as_of).set_display_name("validate"), config
    )
    rank = rank_creatives(profile=profile, world=source, stats=stats, rm=rm.output, as_of=as_of)
    rank = retried(
        deterministic(on_gpu(rank.after(validate).set_display_name("rank-creatives"), config), config), config
    )
    features = materialize_features(
        profile=profile, world=source, stats=stats, as_of=as_of, priors=rank.outputs["priors"]
    )
    flaky(features.set_display_name("features"), config)  # writes the online store: never cached
    summaries = {
        "data_summary": ingest.outputs["summary"],
        "validation_summary": validate.outputs["summary"],
        "priors_summary": rank.outputs["summary"],
        "features_summary": features.outputs["summary"],
    }
    if generated is not None:
        summaries["generate_summary"] = generated.outputs["summary"]
    return deterministic(refresh_report(**summaries).set_display_name("report"), config)


def refresh_pipeline(config: OrchestrationConfig):
    """The refresh pipeline, placed on the cluster as ``config`` says."""

    @dsl.pipeline(name=NAME, description="CAIG daily refresh: new logs, checks, RM priors, Feast features.")
    def caig_refresh(profile: str, rm: str, seed: int = 0, as_of: str = "", data: str = "") -> Outputs:
        """Args: profile: the whole profile as JSON; rm: URI of the reward model to rank creatives with;
        seed: the simulated world's seed (when data is empty); as_of: "now" for the checks (ISO-8601;
        empty: the current time); data: a data directory in the world's layout with the new logs."""
        model = dsl.importer(artifact_uri=rm, artifact_class=Model, reimport=False).set_display_name("rm")
        report = refresh_steps(config, profile, model, seed, as_of, data)
        return Outputs(report.outputs["report"], report.outputs["summary"], report.outputs["metrics"])

    return caig_refresh
