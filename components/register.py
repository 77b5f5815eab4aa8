"""Register: publish the trained run to the runs volume and point the serving InferenceServices at it as a
canary (a dry run where configured)."""

from kfp import dsl
from kfp.dsl import Input, Markdown, Metrics, Model, Output

from caig.orchestration.images import step_image


@dsl.component(base_image=step_image(), install_kfp_package=False)
def register_models(
    profile: str,
    as_of: str,
    job_id: str,
    pm: Input[Model],
    base: Input[Model],
    rm: Input[Model],
    record: Output[Markdown],
    summary: Output[Metrics],
):
    """``caig.orchestration.register.register_run``: the PCPO run ``pm``, the pre-trained PM ``base`` it
    adapts and the RM, published as one run named after ``as_of`` and the KFP run ``job_id``."""
    from pathlib import Path

    from caig.logs import setup_logging
    from caig.orchestration.metrics import record_metrics
    from caig.orchestration.params import profile_from_parameter
    from caig.orchestration.register import register_run

    setup_logging()
    result = register_run(
        profile_from_parameter(profile),
        {"pcpo": Path(pm.path), "pm": Path(base.path), "rm": Path(rm.path)},
        {"pm": pm.uri, "rm": rm.uri},
        record.path,
        as_of=as_of,
        job_id=job_id,
    )
    record_metrics(summary, "register", result["metrics"])
