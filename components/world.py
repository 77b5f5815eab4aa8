"""World build: the embedded default data (catalog, creatives, click logs) for one seed."""

from kfp import dsl
from kfp.dsl import Dataset, Metrics, Output

from caig.orchestration.images import step_image


@dsl.component(base_image=step_image(), install_kfp_package=False)
def build_world(profile: str, seed: int, world: Output[Dataset], summary: Output[Metrics]):
    """Build the simulated world with ``caig.world.build.build_world``; deterministic for a seed."""
    from pathlib import Path

    from caig.logs import setup_logging
    from caig.orchestration.metrics import record_metrics
    from caig.orchestration.params import profile_from_parameter
    from caig.world.build import build_world as build

    setup_logging()
    config = profile_from_parameter(profile)
    result = build(config.world, Path(world.path), seed=seed, pair_rule=config.data.pairs)
    world.metadata.update({"seed": seed, "n_products": result["n_products"], "n_events": result["n_events"]})
    keys = ("n_products", "n_creatives", "n_events", "n_clicks", "n_pairs", "bayes_pair_accuracy")
    record_metrics(summary, "world", {k: result[k] for k in keys})
