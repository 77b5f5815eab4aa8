"""The oracle's truth is real: logged CTR tracks it, compatibility and the generic effect exist,
and eye-catching bait lowers the match rate. Shown on the oracle, not by reading constants back."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import spearmanr

from caig.data.events import read_events
from caig.world.loaded import load_world
from caig.world.vocabulary import terms_in_group


@pytest.fixture(scope="module")
def world(small_world_dir):
    return load_world(small_world_dir)


def test_logged_ctr_tracks_true_ctr(world, small_world_dir):
    events = read_events(small_world_dir / "events")
    stats = events.groupby("creative_id").clicked.agg(["size", "mean"])
    stats = stats[stats["size"] >= 1000]
    assert len(stats) >= 50
    descriptions = world.creatives.set_index("creative_id")
    truth = [world.true_ctr(descriptions.product_id[c], descriptions.description[c]) for c in stats.index]
    rho = spearmanr(stats["mean"], truth).statistic
    assert rho >= 0.8, rho


def test_best_scene_differs_across_categories(world):
    scenes = [t.text for t in terms_in_group("scene")]
    best = {}
    for category, products in world.catalog.groupby("category"):
        means = [np.mean([world.true_ctr(p, f"in a {s}, soft daylight") for p in products.product_id])
                 for s in scenes]
        best[category] = scenes[int(np.argmax(means))]
    assert len(set(best.values())) >= 4, best


def test_generic_eye_catching_effect_lifts_nearly_every_product(world):
    base = "in a photo studio, warm beige palette, soft daylight"
    lifted = [world.true_ctr(p, f"{base}, with neon glow") > world.true_ctr(p, base)
              for p in world.catalog.product_id]
    assert np.mean(lifted) >= 0.9


def test_eye_catching_bait_is_judged_mismatched_for_a_sizeable_share(world):
    kinds_before, kinds_after = [], []
    for product in world.catalog.itertuples():
        matched = _a_matching_description(world, product.product_id)
        assert matched is not None, product.category
        kinds_before.append(world.judge_match(product.product_id, matched))
        kinds_after.append(world.judge_match(product.product_id, f"{matched}, with sparkling glitter"))
    assert set(kinds_before) == {"match"}
    share = np.mean([k != "match" for k in kinds_after])
    assert 0.25 <= share <= 0.75, share


def _a_matching_description(world, product_id):
    for scene in (t.text for t in terms_in_group("scene")):
        for palette in (t.text for t in terms_in_group("palette")):
            text = f"in a {scene}, {palette} palette, soft daylight"
            if world.judge_match(product_id, text) == "match":
                return text
    return None


def test_judge_names_each_mismatch_kind(world):
    sofa = world.catalog[world.catalog.category == "sofa"].product_id.iloc[0]
    lipstick = world.catalog[world.catalog.category == "lipstick"].product_id.iloc[0]
    assert world.judge_match(sofa, "a beautiful background that sells") == "scene"
    assert world.judge_match(sofa, "in a bathroom vanity") == "scene"
    assert world.judge_match(lipstick, "in a photo studio, wide room view") == "scale"
    assert world.judge_match(sofa, "in a living room, macro close-up") == "scale"


def test_colour_clash_is_a_colour_mismatch(world):
    from caig.world.oracle import colour_harmony
    from caig.world.vocabulary import COLOURS, TERMS_BY_TEXT

    for product in world.catalog.itertuples():
        clashing = [p.text for p in terms_in_group("palette")
                    if colour_harmony(COLOURS[product.colour], TERMS_BY_TEXT[p.text]) <= -0.5]
        matched = _a_matching_description(world, product.product_id)
        if clashing and matched:
            scene_part = matched.split(",")[0]
            assert world.judge_match(product.product_id, f"{scene_part}, {clashing[0]} palette") == "colour"
            return
    pytest.fail("no product with a clashing palette in the small world")


def test_segments_differ_in_taste(world):
    product = world.catalog.product_id.iloc[0]
    spreads = []
    for style in (t.text for t in terms_in_group("style")):
        by_segment = [world.true_ctr(product, f"in a photo studio, {style} style", s) for s in world.segments]
        spreads.append(np.ptp(by_segment) / np.mean(by_segment))
    assert max(spreads) > 0.1


def test_unknown_segment_and_product_are_rejected(world):
    from caig.errors import UserError

    with pytest.raises(ValueError, match="unknown segment"):
        world.true_ctr(world.catalog.product_id.iloc[0], "in a living room", segment="martians")
    with pytest.raises(UserError, match="unknown product_id"):
        world.judge_match("P99999", "in a living room")


def test_worlds_of_other_seeds_share_the_market_but_not_the_products(small_profile):
    from caig.world.oracle import HiddenParams

    a, b = HiddenParams(small_profile.world, 0), HiddenParams(small_profile.world, 1)
    assert a.term_effect == b.term_effect and a.segment_taste == b.segment_taste
    assert not np.allclose(a.product_appeal, b.product_appeal)
    from dataclasses import replace

    other_market = HiddenParams(replace(small_profile.world, market_seed=1), 0)
    assert other_market.term_effect != a.term_effect
