"""``caig-refresh``: the daily loop that keeps the creative selector's features and priors current.

::

    as-of, world (new logs) -> ingest -> validate -> rank-creatives (RM priors) -> features -> report

The new logs arrive as a data directory in the world's layout (``data``; empty: the simulated world of
``seed``, where the profile allows it). The RM is read from the runs volume: ``rm`` names a registered run
(``pvc://caig-runs/<run>``) or a directory, and empty means the run caig-training registered last, looked up
when the step runs (``caig.orchestration.storage``). ``as_of`` empty: the run's start. The features step
writes the Feast store on the features volume the feature server reads. No ``from __future__ import
annotations`` here: KFP reads the pipeline's type annotations at runtime.
"""

from typing import NamedTuple

from components.features import materialize_features
from components.ingest import ingest_events
from components.report import refresh_report
from components.rm_priors import rank_creatives
from components.validate import validate_stats
from components.world import build_world
from kfp import dsl
from kfp.dsl import HTML, Markdown, Metrics, PipelineTask

from caig.orchestration.config import OrchestrationConfig
from caig.orchestration.params import default_as_of, profile_parameter
from caig.profile import Profile
from pipelines.placement import (
    deterministic,
    flaky,
    on_cpu,
    on_gpu,
    retried,
    run_now,
    with_data,
    with_features,
    with_runs,
)

NAME = "caig-refresh"


class Outputs(NamedTuple):
    """The refresh report, its Markdown summary, the flat metrics."""

    report: HTML
    summary: Markdown
    metrics: Metrics


def parameters(profile: Profile) -> dict:
    """Default parameter values for ``profile`` (``rm`` empty: the latest registered RM)."""
    return {"profile": profile_parameter(profile), "as_of": default_as_of(profile)}


def refresh_steps(
    config: OrchestrationConfig, profile, rm, seed, as_of, data, generated: PipelineTask | None = None
) -> PipelineTask:
    """The refresh's steps, from the new logs to the report task (returned); ``rm``: the RM parameter.
    ``generated``: caig-generate's generate step, run first and summarised in the report."""
    now = run_now(as_of, config).output
    world = with_data(build_world(profile=profile, seed=seed, data=data), config)
    flaky(on_cpu(world, "new-logs", config), config)  # the data at a location changes day to day
    if generated is not None:
        world.after(generated)  # the copy holds what the generate step registered
    source = world.outputs["world"]
    ingest = flaky(on_cpu(ingest_events(profile=profile, world=source, as_of=now), "ingest", config), config)
    stats = ingest.outputs["stats"]
    validate = deterministic(
        on_cpu(validate_stats(profile=profile, stats=stats, as_of=now), "validate", config), config
    )
    rank = rank_creatives(profile=profile, world=source, stats=stats, rm=rm, as_of=now)
    rank = on_gpu(rank.after(validate).set_display_name("rank-creatives"), config)
    rank = retried(deterministic(with_runs(rank, config), config), config)  # reads the RM on the runs volume
    features = materialize_features(
        profile=profile, world=source, stats=stats, as_of=now, priors=rank.outputs["priors"]
    )
    # writes the Feast store (on the features volume) and the online store: never cached
    flaky(with_features(on_cpu(features, "features", config), config), config)
    summaries = {
        "data_summary": ingest.outputs["summary"],
        "validation_summary": validate.outputs["summary"],
        "priors_summary": rank.outputs["summary"],
        "features_summary": features.outputs["summary"],
    }
    if generated is not None:
        summaries["generate_summary"] = generated.outputs["summary"]
    return deterministic(on_cpu(refresh_report(**summaries), "report", config), config)


def refresh_pipeline(config: OrchestrationConfig):
    """The refresh pipeline, placed on the cluster as ``config`` says."""

    @dsl.pipeline(name=NAME, description="CAIG daily refresh: new logs, checks, RM priors, Feast features.")
    def caig_refresh(profile: str, rm: str = "", seed: int = 0, as_of: str = "", data: str = "") -> Outputs:
        """Args: profile: the whole profile as JSON; rm: the reward model to rank creatives with (a
        registered run pvc://caig-runs/RUN or a directory; empty: the run caig-training registered last);
        seed: the simulated world's seed (when data is empty); as_of: "now" for the checks (ISO-8601;
        empty: the run's start); data: a data directory in the world's layout with the new logs."""
        report = refresh_steps(config, profile, rm, seed, as_of, data)
        return Outputs(report.outputs["report"], report.outputs["summary"], report.outputs["metrics"])

    return caig_refresh
