"""Features: the run's Feast store, applied from ``feature_repo/`` and materialized into the online store."""

from kfp import dsl
from kfp.dsl import Artifact, Dataset, Input, Metrics, Output

from caig.orchestration.images import step_image


@dsl.component(base_image=step_image(), install_kfp_package=False)
def materialize_features(
    profile: str,
    world: Input[Dataset],
    stats: Input[Dataset],
    as_of: str,
    store: Output[Artifact],
    summary: Output[Metrics],
    priors: Input[Dataset] = None,
):
    """``caig.features.store.apply`` then ``caig.features.online.materialize`` up to ``as_of``.

    The store directory is ``features.store_dir`` resolved against this step's output (relative: inside
    it; absolute: a shared volume). ``priors`` holds ``rm_priors.parquet``; without it the store has none yet.
    """
    from pathlib import Path

    from caig.features.online import materialize
    from caig.features.store import apply, open_store, store_dir
    from caig.logs import setup_logging
    from caig.orchestration.metrics import record_metrics
    from caig.orchestration.params import parse_as_of, profile_from_parameter

    setup_logging()
    config = profile_from_parameter(profile).features
    config.catalog_path = str(Path(world.path) / "catalog.parquet")
    config.creatives_path = str(Path(world.path) / "creatives.parquet")
    config.stats_path = str(Path(stats.path) / "creative_stats.parquet")
    config.priors_path = str(Path(priors.path if priors else store.path) / "rm_priors.parquet")
    applied = apply(config, Path(store.path))
    loaded = materialize(open_store(config, store_dir(config, Path(store.path))), parse_as_of(as_of))
    store.metadata.update({"store_dir": applied["store"], "online_store": applied["online_store"]})
    record_metrics(
        summary,
        "features",
        {"rows": applied["rows"], "views": len(applied["feature_views"]), "materialized": len(loaded)},
    )
