"""World: the run's data, the simulated world for a seed (default) or a directory in the world's layout."""

from kfp import dsl
from kfp.dsl import Dataset, Metrics, Output

from caig.orchestration.images import step_image


@dsl.component(base_image=step_image(), install_kfp_package=False)
def build_world(profile: str, seed: int, data: str, world: Output[Dataset], summary: Output[Metrics]):
    """Build the world with ``caig.world.build.build_world`` (deterministic for a seed), or, when ``data``
    names a directory, copy it with ``caig.orchestration.data_source.stage_data``."""
    from pathlib import Path

    from caig.logs import setup_logging
    from caig.orchestration.data_source import stage_data
    from caig.orchestration.metrics import record_metrics
    from caig.orchestration.params import profile_from_parameter
    from caig.world.build import build_world as build

    setup_logging()
    config = profile_from_parameter(profile)
    if data:
        result = stage_data(data, Path(world.path))
        world.metadata.update({"source": data})
    else:
        built = build(config.world, Path(world.path), seed=seed, pair_rule=config.data.pairs)
        keys = ("n_products", "n_creatives", "n_events", "n_clicks", "n_pairs", "bayes_pair_accuracy")
        result = {k: built[k] for k in keys}
        world.metadata.update({"seed": seed})
    world.metadata.update({"n_products": result["n_products"], "n_events": result["n_events"]})
    record_metrics(summary, "world", result)
