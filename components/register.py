"""Register: point the serving InferenceServices at the new models as a canary (a dry run where configured)."""

from kfp import dsl
from kfp.dsl import Input, Markdown, Metrics, Model, Output

from caig.orchestration.images import step_image


@dsl.component(base_image=step_image(), install_kfp_package=False)
def register_models(
    profile: str, pm: Input[Model], rm: Input[Model], record: Output[Markdown], summary: Output[Metrics]
):
    """``caig.orchestration.register.register_models``: the optimised PM and the RM as canaries."""
    from caig.logs import setup_logging
    from caig.orchestration.metrics import record_metrics
    from caig.orchestration.params import profile_from_parameter
    from caig.orchestration.register import register_models as register

    setup_logging()
    result = register(profile_from_parameter(profile), {"pm": pm.uri, "rm": rm.uri}, record.path)
    record_metrics(summary, "register", result["metrics"])
