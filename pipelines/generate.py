"""``caig-generate``: new creatives for the catalog, then the refresh that serves them.

::

    generate (GPU; registers into the data location) -> as-of, new-logs (a copy of it) -> ingest -> validate
        -> rank-creatives (RM priors) -> features -> report

The generate step writes into the data location itself (``data``, a directory on the data volume), so the
creatives it registers stay for the next refresh and training runs; ids come from the content, so a retry or
a re-run registers nothing twice. Which products get creatives is the profile's ``generate`` section: all,
a list, or those with fewer than ``min_creatives`` and (``fatigue_margin`` > 0) those whose CTR fatigues.
Scheduled as a recurring run, it is the daily loop that also renews tired creatives. The models come from
the runs volume: ``pm``, ``optimized`` and ``rm`` name a registered run (``pvc://caig-runs/<run>``) or
directories, and empty means the run caig-training registered last. No ``from __future__ import
annotations`` here: KFP reads the pipeline's type annotations at runtime.
"""

from components.generate import generate_creatives
from kfp import dsl

from caig.orchestration.config import OrchestrationConfig
from caig.orchestration.params import profile_parameter
from caig.profile import Profile
from pipelines.placement import flaky, on_gpu, with_data, with_runs
from pipelines.refresh import Outputs, refresh_steps

NAME = "caig-generate"


def parameters(profile: Profile) -> dict:
    """Default parameter values for ``profile`` (``data`` has none: a run names the location to register
    into; ``pm``, ``optimized`` and ``rm`` empty: the run caig-training registered last)."""
    return {"profile": profile_parameter(profile)}


def generate_pipeline(config: OrchestrationConfig):
    """The generate pipeline, placed on the cluster as ``config`` says."""

    @dsl.pipeline(
        name=NAME, description="CAIG generation: new creatives for the catalog, ranked, registered, served."
    )
    def caig_generate(
        profile: str, data: str, pm: str = "", optimized: str = "", rm: str = "", as_of: str = ""
    ) -> Outputs:
        """Args: profile: the whole profile as JSON; data: the data location to register creatives into (a
        directory in the world's layout on the data volume); pm: the pre-trained prompt model; optimized:
        the PCPO run whose last round's adapter writes the descriptions; rm: the reward model (each a
        registered run pvc://caig-runs/RUN or a directory; empty: the run caig-training registered last);
        as_of: "now" for the refresh's checks (ISO-8601; empty: the run's start)."""
        generate = generate_creatives(profile=profile, data=data, pm=pm, optimized=optimized, rm=rm)
        generate = with_runs(with_data(on_gpu(generate.set_display_name("generate"), config), config), config)
        # writes the data location: never cached; idempotent, so retried like the other GPU steps
        generate = flaky(generate, config)
        report = refresh_steps(config, profile, rm, 0, as_of, data, generated=generate)
        return Outputs(report.outputs["report"], report.outputs["summary"], report.outputs["metrics"])

    return caig_generate
