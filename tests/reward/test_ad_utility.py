"""The ad-utility stage: single ads, the description teacher's utility as the CTR head's target."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
import torch

from caig.errors import UserError
from caig.mllm.build import load_model
from caig.reward.config import RewardConfig, RewardRecipeConfig
from caig.reward.curriculum.ad_utility import ad_utility_source, encode_ads, held_out_fit
from caig.reward.curriculum.config import AdUtilityConfig, CurriculumConfig, TeacherConfig
from caig.reward.curriculum.jobs import train_with_curriculum
from caig.reward.curriculum.side_warmup import mean_luminance
from caig.reward.curriculum.stages import build_stages, teacher_and_ads
from caig.reward.model import build_reward_model
from caig.reward.scoring import RewardScorer


@pytest.fixture(scope="module")
def teacher_ads(tmp_path_factory, rm_config, train_pairs, small_world_dir):
    curriculum = CurriculumConfig(teacher=TeacherConfig(min_df=1))
    return teacher_and_ads(
        train_pairs, rm_config, curriculum, small_world_dir, tmp_path_factory.mktemp("ads")
    )


def test_utilities_are_the_teachers_standardised_and_held_out_by_product(teacher_ads, train_pairs) -> None:
    teacher, ads = teacher_ads
    source = ad_utility_source(teacher, ads, train_pairs.products, held_out_share=0.25, seed=0)
    table = source.ads
    assert len(table) == len(ads) == 240 and table.index.equals(ads.index)
    assert abs(table["utility"].mean()) < 1e-9 and table["utility"].std(ddof=0) == pytest.approx(1.0)
    raw = teacher.utility(ads["description"], ads)
    assert np.corrcoef(raw, table["utility"])[0, 1] == pytest.approx(1.0)  # same order, rescaled
    held = table.groupby("product_id")["held_out"].agg(["min", "max"])
    assert (held["min"] == held["max"]).all()  # a product's ads are all in or all out
    assert table["held_out"].sum() == 60  # a quarter of the 30 products (8 ads each)


def test_each_ad_is_encoded_alone_with_its_utility_twice(tiny_model_dir, teacher_ads, train_pairs) -> None:
    teacher, ads = teacher_ads
    source = ad_utility_source(teacher, ads, train_pairs.products, held_out_share=0.0, seed=0)
    _, processor = load_model(tiny_model_dir)
    config = RewardConfig(image_side=32, recipe=RewardRecipeConfig(image_position="after_text"))
    examples = encode_ads(source.ads.head(5), source.products, processor, config, seed=0)
    assert len(examples) == 5
    for example, utility in zip(examples, source.ads["utility"].head(5)):
        torch.testing.assert_close(example["ctr"], torch.tensor([utility, utility], dtype=torch.float32))
        assert float(example["labels"]) == 0.5
        assert example["pixel_values"].shape[-2:] == (32, 32)
        assert tuple(example["image_sizes"].tolist()) == (32, 32)  # one ad, not a joined pair
    image_token = processor.tokenizer.convert_tokens_to_ids(processor.image_token)
    assert int((examples[0]["input_ids"] == image_token).sum()) == 10  # base view + one tile, one ad


def test_the_stage_trains_the_ctr_head_on_its_targets_and_measures_held_out_products(
    tmp_path, tiny_model_dir, rm_config, train_pairs, small_world_dir
) -> None:
    config = dataclasses.replace(rm_config, recipe=RewardRecipeConfig(image_position="after_text"))
    curriculum = CurriculumConfig(
        teacher=TeacherConfig(min_df=1),
        ad_utility=AdUtilityConfig(
            enabled=True, epochs=4.0, learning_rate=1e-3, batch_size=8, held_out_share=0.25
        ),
    )
    stage = build_stages(train_pairs, config, curriculum, small_world_dir, tmp_path)[0]
    assert stage.name == "ad-utility"
    assert (
        stage.config.ce_weight == 0 and stage.config.point_weight == 1 and stage.config.recipe.ctr_scale == 1
    )
    # A target the tiny model learns in a few steps (how bright the ad is) in place of the teacher's
    # utility, which needs thousands of ads: the stage must fit it and generalise to the held-out products.
    ads = stage.source.ads
    brightness = np.array([mean_luminance(p, 32) for p in ads["image_path"]])
    ads["utility"] = (brightness - brightness.mean()) / brightness.std()
    llava, processor = load_model(tiny_model_dir)
    model = build_reward_model(llava, processor, stage.config)
    before = held_out_fit(model, stage.source, processor, stage.config)["held_out_utility_corr"]
    summary, _ = stage.fit(model, processor, tmp_path)
    assert summary["pairs"] == 180 and summary["steps"] == 4 * 23  # 180 training ads, 8 per step
    assert summary["held_out_utility_corr"] > 0.6 and summary["held_out_utility_corr"] > before + 0.3
    held = ads[ads["held_out"]]
    examples = encode_ads(held, stage.source.products, processor, stage.config, seed=None)
    predicted = RewardScorer(model, processor, stage.config).ctr(examples).mean(axis=1)
    assert np.corrcoef(predicted, held["utility"])[0, 1] == pytest.approx(
        summary["held_out_utility_corr"], abs=1e-3
    )


def test_held_out_fit_reads_own_creatives_and_differences_within_each_product(
    tiny_model_dir, teacher_ads, train_pairs
) -> None:
    """Borrowed backgrounds count in the first correlation only; the third takes each product's mean out."""
    teacher, ads = teacher_ads
    ads = ads.assign(borrowed=np.arange(len(ads)) % 3 == 0)  # a third marked borrowed
    source = ad_utility_source(teacher, ads, train_pairs.products, held_out_share=0.5, seed=0)
    assert source.ads["borrowed"].sum() == 80
    llava, processor = load_model(tiny_model_dir)
    config = RewardConfig(image_side=32, recipe=RewardRecipeConfig(image_position="after_text"))
    model = build_reward_model(llava, processor, config)
    held = source.ads[source.ads["held_out"]]
    examples = encode_ads(held, source.products, processor, config, seed=None)
    predicted = pd.Series(RewardScorer(model, processor, config).ctr(examples).mean(axis=1), index=held.index)
    own = held[~held["borrowed"]]
    centre = own.groupby("product_id")["utility"].transform("mean")
    centred_prediction = predicted[own.index] - predicted[own.index].groupby(own["product_id"]).transform(
        "mean"
    )
    fit = held_out_fit(model, source, processor, config)
    assert fit["held_out_utility_corr"] == pytest.approx(
        np.corrcoef(predicted, held["utility"])[0, 1], abs=1e-4
    )
    assert fit["held_out_own_utility_corr"] == pytest.approx(
        np.corrcoef(predicted[own.index], own["utility"])[0, 1], abs=1e-4
    )
    assert fit["held_out_within_product_corr"] == pytest.approx(
        np.corrcoef(centred_prediction, own["utility"] - centre)[0, 1], abs=1e-4
    )
    assert len({round(v, 6) for v in fit.values()}) == 3  # three different sets of numbers


def test_borrowed_backgrounds_are_marked_among_the_teachers_ads(
    tmp_path, rm_config, train_pairs, small_world_dir
) -> None:
    curriculum = CurriculumConfig(teacher=TeacherConfig(min_df=1, borrowed_per_product=1))
    _, ads = teacher_and_ads(train_pairs, rm_config, curriculum, small_world_dir, tmp_path)
    assert ads["borrowed"].sum() == ads["product_id"].nunique() == len(ads) - 240
    assert ads.loc[ads["borrowed"]].index.str.startswith("B").all()
    assert not ads.loc[~ads["borrowed"]].index.str.startswith("B").any()


def test_stages_in_order_and_the_data_is_needed(
    tmp_path, tiny_model_dir, rm_config, train_pairs, small_world_dir
):
    config = dataclasses.replace(rm_config, epochs=0.05)
    curriculum = CurriculumConfig(
        teacher=TeacherConfig(enabled=True, min_df=1, epochs=0.05),
        ad_utility=AdUtilityConfig(enabled=True, epochs=0.2),
    )
    summary = train_with_curriculum(
        tiny_model_dir, train_pairs, config, curriculum, tmp_path / "rm", data_dir=small_world_dir
    )
    assert [s["stage"] for s in summary["stages"]] == ["ad-utility", "teacher", "pairs"]
    assert {"held_out_utility_corr", "held_out_own_utility_corr", "held_out_within_product_corr"} <= set(
        summary["stages"][0]
    )
    with pytest.raises(UserError, match="--world"):
        build_stages(
            train_pairs,
            rm_config,
            CurriculumConfig(ad_utility=AdUtilityConfig(enabled=True)),
            None,
            tmp_path,
        )


def test_config_refuses_bad_values() -> None:
    with pytest.raises(ValueError, match="held_out_share"):
        AdUtilityConfig(held_out_share=1.0)
    with pytest.raises(ValueError, match="batch_size"):
        AdUtilityConfig(batch_size=0)


def test_an_unreadable_ad_is_an_error_naming_it(tiny_model_dir, teacher_ads, train_pairs) -> None:
    teacher, ads = teacher_ads
    source = ad_utility_source(teacher, ads, train_pairs.products, held_out_share=0.0, seed=0)
    broken = source.ads.head(2).copy()
    broken.iloc[1, broken.columns.get_loc("image_path")] = "missing/C999999.png"
    _, processor = load_model(tiny_model_dir)
    with pytest.raises(UserError, match="missing/C999999.png"):
        encode_ads(broken, source.products, processor, RewardConfig(image_side=32), seed=0)
