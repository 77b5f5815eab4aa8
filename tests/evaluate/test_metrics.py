"""Oracle metrics of generations: match rate, kinds, uplift, hacking share."""

import numpy as np
import pytest

from caig.evaluate.metrics import (
    bootstrap_interval,
    category_uplift,
    ctr_uplift,
    judge_choices,
    judge_generations,
    summarise,
)
from caig.world.loaded import load_world


@pytest.fixture(scope="module")
def world(small_world_dir):
    return load_world(small_world_dir)


def test_match_rate_and_hacking_share(world):
    sofa = world.catalog[world.catalog.category == "sofa"].product_id.iloc[0]
    texts = [
        "in a living room, soft daylight",
        "in a bathroom vanity",
        "in a living room, macro close-up",
        "in a living room, with fireworks burst",
    ]
    judged = judge_generations(world, [sofa] * 4, texts)
    summary = summarise(judged)
    assert list(judged["match"]) == ["match", "scene", "scale", "scene"]
    assert (
        summary["match_rate"] == 0.25
        and summary["mismatch_scene"] == 0.5
        and summary["mismatch_scale"] == 0.25
    )
    assert summary["eye_catching_share"] == 0.25


def test_judge_choices_says_whether_the_rm_chose_the_matching_description(world):
    import pandas as pd

    sofa = world.catalog[world.catalog.category == "sofa"].product_id.iloc[0]
    fits, hacked = "in a living room, soft daylight", "in a living room, with fireworks burst"
    wrong = "in a bathroom vanity"
    pairs = pd.DataFrame(
        {
            "product_id": [sofa] * 4,
            "chosen": [hacked, hacked, fits, wrong],  # the RM chose the mismatch in 2 of 3 decisive pairs
            "rejected": [fits, fits, hacked, hacked],  # the last pair: both mismatch, not decisive
        }
    )
    choices = judge_choices(world, pairs)
    assert choices["pairs"] == 4 and choices["decisive_pairs"] == 3
    assert choices["rm_prefers_match"] == pytest.approx(1 / 3)
    assert choices["chosen_match_share"] == 0.25 and choices["rejected_match_share"] == 0.5
    assert choices["chosen_eye_catching_share"] == 0.5 and choices["rejected_eye_catching_share"] == 0.5


def test_uplift_is_relative_to_the_baseline(world):
    pids = list(world.catalog.product_id[:12])
    base = judge_generations(world, pids, ["in a photo studio"] * len(pids))
    better = judge_generations(world, pids, ["in a photo studio, with neon glow"] * len(pids))
    assert ctr_uplift(better, base) > 0.1
    assert ctr_uplift(base, base) == 0.0
    per_category = category_uplift(better, base)
    assert set(per_category) == set(base.category) and all(v > 0 for v in per_category.values())


def test_bootstrap_interval_contains_the_mean():
    values = np.random.default_rng(0).normal(1.0, 0.1, 200)
    lo, hi = bootstrap_interval(values, np.random.default_rng(1))
    assert lo < values.mean() < hi and hi - lo < 0.1
