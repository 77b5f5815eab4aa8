"""World: the run's data, the simulated world for a seed (default) or a directory in the world's layout."""

from kfp import dsl
from kfp.dsl import Dataset, Metrics, Output

from caig.orchestration.images import step_image


@dsl.component(base_image=step_image(), install_kfp_package=False)
def build_world(profile: str, seed: int, data: str, world: Output[Dataset], summary: Output[Metrics]):
    """The run's data with ``caig.orchestration.data_source.run_data``: the simulated world of ``seed``, or
    the directory ``data`` names, copied."""
    from pathlib import Path

    from caig.logs import setup_logging
    from caig.orchestration.data_source import run_data
    from caig.orchestration.metrics import record_metrics
    from caig.orchestration.params import profile_from_parameter

    setup_logging()
    result, origin = run_data(profile_from_parameter(profile), seed, data, Path(world.path))
    world.metadata.update({**origin, "n_products": result["n_products"], "n_events": result["n_events"]})
    record_metrics(summary, "world", result)
