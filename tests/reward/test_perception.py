"""Background perception: targets, the image tokens it trains, what it trains and that it learns."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from caig.errors import UserError
from caig.mllm.build import load_model
from caig.reward.curriculum.ads import split_products
from caig.reward.curriculum.config import CurriculumConfig, PerceptionConfig
from caig.reward.curriculum.jobs import train_with_curriculum
from caig.reward.curriculum.perception import (
    ad_pixels,
    background_words,
    image_tokens,
    perception_borrowed,
    train_perception,
    word_f1,
    words_of,
)
from caig.reward.data import open_ad
from caig.reward.inputs import join_side_by_side


def test_background_words_are_multi_hot_over_words_in_enough_descriptions() -> None:
    vocabulary, targets = background_words(
        pd.Series(["a sunny beach", "beach at night", "snowy night beach"]), min_df=2
    )
    assert vocabulary == ["beach", "night"]
    assert targets.tolist() == [[1, 0], [1, 1], [1, 1]]


def test_words_of_other_ads_use_the_fitted_vocabulary_only() -> None:
    targets = words_of(pd.Series(["snowy beach at night", "a sunny meadow"]), ["beach", "night"])
    assert targets.tolist() == [[1, 1], [0, 0]]


def test_word_f1_by_hand() -> None:
    logits = torch.tensor([[2.0, -1.0, 3.0], [-2.0, 1.0, -1.0]])  # predicted: {0, 2}, {1}
    targets = torch.tensor([[1.0, 1.0, 0.0], [0.0, 1.0, 0.0]])  # true: {0, 1}, {1}
    assert word_f1(logits, targets) == pytest.approx(2 * 2 / (3 + 3))  # tp 2, 3 predicted, 3 true


def test_held_out_products_keep_all_their_ads_out() -> None:
    ids = pd.Series(["p1", "p1", "p2", "p2", "p3", "p3", "p4", "p4"])
    held = split_products(ids, 0.5, seed=0)
    assert held.sum() == 4
    for product in ids.unique():
        assert len(set(held[(ids == product).to_numpy()])) == 1
    assert not split_products(ids, 0.0, seed=0).any()


def test_image_tokens_are_the_tile_tokens_llava_gives_the_rm(tiny_model_dir, small_world_dir) -> None:
    """The stage trains what the RM reads: an ad's tokens here equal its tile's tokens in a joined pair."""
    llava, processor = load_model(tiny_model_dir)
    creatives = pd.read_parquet(small_world_dir / "creatives.parquet")
    paths = [str(small_world_dir / p) for p in creatives["image_path"].head(2)]
    pixels = ad_pixels(processor, paths, side=32)
    assert pixels.values.dtype == torch.uint8 and pixels.normalised().shape == (2, 3, 32, 32)
    with torch.no_grad():
        single = image_tokens(llava, pixels.normalised())
        joined = join_side_by_side(*(open_ad(p, side=64) for p in paths), side=32)
        pair = processor.image_processor([joined], return_tensors="pt")["pixel_values"]  # base, left, right
        tiles = image_tokens(llava, pair[0, 1:3])
    torch.testing.assert_close(single, tiles, atol=1e-4, rtol=1e-4)


def test_ad_pixels_keep_bytes_and_normalise_as_the_image_processor(tiny_model_dir, small_world_dir) -> None:
    """Bytes in memory, the processor's float views out: the tower's input does not change."""
    _, processor = load_model(tiny_model_dir)
    creatives = pd.read_parquet(small_world_dir / "creatives.parquet")
    paths = [str(small_world_dir / p) for p in creatives["image_path"].head(3)]
    pixels = ad_pixels(processor, paths, side=32)
    expected = processor.image_processor([open_ad(p, 32) for p in paths], return_tensors="pt")["pixel_values"]
    torch.testing.assert_close(pixels.normalised(), expected[:, 0], atol=1e-5, rtol=1e-5)
    chosen = pixels.select(np.array([False, True, True]))
    torch.testing.assert_close(chosen.normalised(), pixels.normalised(torch.tensor([1, 2])))
    assert len(chosen) == 2


def test_it_learns_the_words_and_trains_only_the_vision_side(tiny_model_dir, small_world_dir) -> None:
    llava, processor = load_model(tiny_model_dir)
    before = {n: p.detach().clone() for n, p in llava.named_parameters()}
    config = PerceptionConfig(
        enabled=True, epochs=30.0, learning_rate=3e-3, batch_size=32, held_out_share=0.25
    )
    reader, summary = train_perception(llava, processor, small_world_dir, config, image_side=32, seed=0)
    assert summary["held_out_word_f1"] > summary["held_out_word_f1_before"] + 0.1
    assert reader.logits(llava, torch.zeros(3, 3, 32, 32)).shape == (3, len(reader.vocabulary))
    assert summary["ads"] + summary["held_out_ads"] == 240 and summary["held_out_ads"] == 60
    changed = {n for n, p in llava.named_parameters() if not torch.equal(p, before[n])}
    assert any("vision_tower" in n for n in changed) and any("multi_modal_projector" in n for n in changed)
    assert not any("language_model" in n or "lm_head" in n for n in changed)


def test_borrowed_ads_add_images_of_the_training_products_only(
    tmp_path, tiny_model_dir, small_world_dir
) -> None:
    """Borrowed backgrounds are painted around every product, but those of held-out products stay out of
    training, and the held-out F1 is still measured on the held-out products' own creatives."""
    llava, processor = load_model(tiny_model_dir)
    config = PerceptionConfig(
        enabled=True, epochs=1.0, batch_size=64, held_out_share=0.25, borrowed_per_product=2
    )
    borrowed = perception_borrowed(small_world_dir, config, tmp_path / "borrowed", seed=0)
    assert len(borrowed) == 48 * 2
    assert all(Path(p).is_absolute() and Path(p).is_file() for p in borrowed["image_path"])
    _, summary = train_perception(llava, processor, small_world_dir, config, 32, 0, borrowed)
    assert summary["held_out_ads"] == 60 and summary["borrowed_ads"] == 36 * 2
    assert summary["ads"] == 180 + 36 * 2
    empty = perception_borrowed(small_world_dir, PerceptionConfig(), tmp_path / "none", seed=0)
    assert empty.empty and not (tmp_path / "none").exists()


def test_borrowed_ads_need_descriptions_and_say_which_switch_turns_them_off(tmp_path) -> None:
    pd.DataFrame({"creative_id": ["C1"], "product_id": ["P1"], "description": [None]}).to_parquet(
        tmp_path / "creatives.parquet"
    )
    pd.DataFrame({"product_id": ["P1"], "category": ["shoes"], "colour": ["red"]}).to_parquet(
        tmp_path / "catalog.parquet"
    )
    config = PerceptionConfig(enabled=True, borrowed_per_product=2)
    with pytest.raises(UserError, match="curriculum.perception.borrowed_per_product=0"):
        perception_borrowed(tmp_path, config, tmp_path / "borrowed", seed=0)


def test_rm_training_runs_perception_first_and_needs_the_data(
    tmp_path, tiny_model_dir, rm_config, train_pairs, small_world_dir
) -> None:
    config = dataclasses.replace(rm_config, epochs=0.05)
    curriculum = CurriculumConfig(
        perception=PerceptionConfig(enabled=True, epochs=1.0, batch_size=64, borrowed_per_product=1)
    )
    summary = train_with_curriculum(
        tiny_model_dir, train_pairs, config, curriculum, tmp_path / "rm", data_dir=small_world_dir
    )
    assert [s["stage"] for s in summary["stages"]] == ["perception", "pairs"]
    assert summary["stages"][0]["borrowed_ads"] > 0
    with pytest.raises(UserError, match="--world"):
        train_with_curriculum(tiny_model_dir, train_pairs, config, curriculum, tmp_path / "rm2")


def test_config_refuses_bad_values() -> None:
    with pytest.raises(ValueError, match="held_out_share"):
        PerceptionConfig(held_out_share=1.0)
    with pytest.raises(ValueError, match="epochs"):
        PerceptionConfig(epochs=0)
    with pytest.raises(ValueError, match="borrowed_per_product"):
        PerceptionConfig(borrowed_per_product=-1)
