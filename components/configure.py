"""Configure: the run's parameters (rounds, beta, base model) applied to the profile, and the run's "now",
once, for every step."""

from kfp import dsl

from caig.orchestration.images import step_image


@dsl.component(base_image=step_image(), install_kfp_package=False)
def configure_run(profile: str, rounds: int, beta: float, base_model: str) -> str:
    """The effective profile (JSON) with ``caig.orchestration.params.with_run_parameters``; fails on bad values."""
    from caig.logs import setup_logging
    from caig.orchestration.params import profile_from_parameter, profile_parameter, with_run_parameters

    setup_logging()
    return profile_parameter(with_run_parameters(profile_from_parameter(profile), rounds, beta, base_model))


@dsl.component(base_image=step_image(), install_kfp_package=False)
def resolve_as_of(as_of: str) -> str:
    """The run's "now" with ``caig.orchestration.params.resolve_as_of``, once for every step that checks time:
    ``as_of`` if given, else the time this step runs (the run's start)."""
    from caig.orchestration.params import resolve_as_of as resolve

    return resolve(as_of)
