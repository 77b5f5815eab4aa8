"""Re-rank creatives: every product's creatives scored by the RM, as Beta priors for the creative selector."""

from kfp import dsl
from kfp.dsl import Dataset, Input, Metrics, Output

from caig.orchestration.images import train_image


@dsl.component(base_image=train_image(), install_kfp_package=False)
def rank_creatives(
    profile: str,
    world: Input[Dataset],
    stats: Input[Dataset],
    rm: str,
    as_of: str,
    priors: Output[Dataset],
    summary: Output[Metrics],
):
    """``caig.orchestration.rm_priors.rank_into_priors`` (``caig rm priors``): ``rm_priors.parquet`` and
    ``ranking.parquet``.

    ``rm``: the RM's directory, ``pvc://<runs volume>/<run>`` or empty for the latest registered run
    (``caig.orchestration.storage.resolve_model``, on the runs volume mounted on this step)."""
    from pathlib import Path

    from caig.data.tables import read_stats
    from caig.logs import setup_logging
    from caig.orchestration.metrics import record_metrics
    from caig.orchestration.params import parse_as_of, profile_from_parameter
    from caig.orchestration.rm_priors import rank_into_priors
    from caig.orchestration.storage import resolve_model

    setup_logging()
    orchestration = profile_from_parameter(profile).orchestration
    counts = rank_into_priors(
        resolve_model(rm, "rm", orchestration, "rm"),
        Path(world.path),
        Path(priors.path),
        orchestration.refresh,
        parse_as_of(as_of),
        stats=read_stats(Path(stats.path)),
    )
    priors.metadata.update({"creatives": counts["creatives_scored"]})
    record_metrics(summary, "priors", counts)
