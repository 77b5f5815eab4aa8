"""Reward-model pairs: the loose train rule for training, the paper's test rule for testing, split by product."""

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
    """``train.parquet`` / ``test.parquet`` with ``caig.orchestration.rm_pairs.build_rm_pairs``."""
    from pathlib import Path

    from caig.data.tables import read_creatives, read_stats
    from caig.logs import setup_logging
    from caig.orchestration.metrics import record_metrics
    from caig.orchestration.params import profile_from_parameter
    from caig.orchestration.rm_pairs import build_rm_pairs

    setup_logging()
    config = profile_from_parameter(profile)
    source = Path(world.path)
    result = build_rm_pairs(
        read_stats(Path(stats.path)),
        read_creatives(source / "creatives.parquet", need_images=True),
        source,
        config.reward.train_pairs,
        config.data.pairs,
        config.data.split,
        Path(pairs.path),
    )
    pairs.metadata.update({"train": result["train"]["pairs"], "test": result["test"]["pairs"]})
    record_metrics(
        summary,
        "data",
        {
            "n_pairs": result["test_rule"]["counts"]["pairs_with_images"],
            "pairs": result["test_rule"]["counts"],
            "rm_pairs": {
                "train": result["train"],
                "test": result["test"],
                "train_rule_pairs": result["train_rule"]["counts"]["pairs_with_images"],
                "train_pairs_dropped_held_out_product": result["train_pairs_dropped_held_out_product"],
            },
        },
    )
