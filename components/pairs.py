"""Reward-model pairs: the paper's pair rule on the logged CTRs, split by product into train and test."""

from kfp import dsl
from kfp.dsl import Dataset, Input, Metrics, Output

from caig.orchestration.images import step_image


@dsl.component(base_image=step_image(), install_kfp_package=False)
def build_pairs(
    profile: str,
    world: Input[Dataset],
    stats: Input[Dataset],
    pairs: Output[Dataset],
    summary: Output[Metrics],
):
    """Build ``train.parquet`` / ``test.parquet`` with ``caig.data.training_pairs.build_pair_dataset``."""
    from pathlib import Path

    from caig.data.tables import read_creatives, read_stats
    from caig.data.training_pairs import build_pair_dataset
    from caig.logs import setup_logging
    from caig.orchestration.metrics import record_metrics
    from caig.orchestration.params import profile_from_parameter

    setup_logging()
    config = profile_from_parameter(profile)
    source = Path(world.path)
    result = build_pair_dataset(
        read_stats(Path(stats.path)),
        read_creatives(source / "creatives.parquet", need_images=True),
        source,
        config.data.pairs,
        config.data.split,
        Path(pairs.path),
    )
    counts = result["counts"]
    pairs.metadata.update(
        {"train": result["splits"]["train"]["pairs"], "test": result["splits"]["test"]["pairs"]}
    )
    record_metrics(
        summary, "data", {"n_pairs": counts["pairs_with_images"], "pairs": counts, "splits": result["splits"]}
    )
