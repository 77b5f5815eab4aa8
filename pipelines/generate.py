"""``caig-generate``: new creatives for the catalog, then the refresh that serves them.

::

    pm, optimized, rm (importers) -> generate (GPU; registers into the data location)
        -> new-logs (a copy of it) -> ingest -> validate -> rank-creatives (RM priors) -> features -> report

The generate step writes into the data location itself (``data``, a directory on the data volume), so the
creatives it registers stay for the next refresh and training runs; ids come from the content, so a retry or
a re-run registers nothing twice. Which products get creatives is the profile's ``generate`` section: all,
a list, or those with fewer than ``min_creatives`` and (``fatigue_margin`` > 0) those whose CTR fatigues.
Scheduled as a recurring run, it is the daily loop that also renews tired creatives. No
``from __future__ import annotations`` here: KFP reads the pipeline's type annotations at runtime.
"""

from components.generate import generate_creatives
from kfp import dsl
from kfp.dsl import Model

from caig.orchestration.config import OrchestrationConfig
from caig.orchestration.params import profile_parameter
from caig.profile import Profile
from pipelines.placement import flaky, on_gpu, with_data
from pipelines.refresh import Outputs, refresh_steps

NAME = "caig-generate"


def parameters(profile: Profile) -> dict:
    """Default parameter values for ``profile`` (``data``, ``pm``, ``optimized`` and ``rm`` have none: a run
    names the location to register into and the models, e.g. the ones caig-training registered)."""
    return {"profile": profile_parameter(profile)}


def generate_pipeline(config: OrchestrationConfig):
    """The generate pipeline, placed on the cluster as ``config`` says."""

    @dsl.pipeline(
        name=NAME, description="CAIG generation: new creatives for the catalog, ranked, registered, served."
    )
    def caig_generate(profile: str, data: str, pm: str, optimized: str, rm: str, as_of: str = "") -> Outputs:
        """Args: profile: the whole profile as JSON; data: the data location to register creatives into (a
        directory in the world's layout on the data volume); pm: URI of the pre-trained prompt model;
        optimized: URI of the PCPO run whose last round's adapter writes the descriptions; rm: URI of the
        reward model; as_of: "now" for the refresh's checks (ISO-8601; empty: the current time)."""
        models = {
            name: dsl.importer(artifact_uri=uri, artifact_class=Model, reimport=False).set_display_name(name)
            for name, uri in (("pm", pm), ("optimized", optimized), ("rm", rm))
        }
        generate = generate_creatives(
            profile=profile,
            data=data,
            pm=models["pm"].output,
            optimized=models["optimized"].output,
            rm=models["rm"].output,
        )
        # writes the data location: never cached; idempotent, so retried like the other GPU steps
        generate = flaky(with_data(on_gpu(generate.set_display_name("generate"), config), config), config)
        report = refresh_steps(config, profile, models["rm"], 0, as_of, data, generated=generate)
        return Outputs(report.outputs["report"], report.outputs["summary"], report.outputs["metrics"])

    return caig_generate
