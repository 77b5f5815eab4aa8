"""The RM input: images side by side, the Table 4 prompt with caption and attributes switches."""

from __future__ import annotations

import dataclasses

import pandas as pd
import pytest
from PIL import Image

from caig.errors import UserError
from caig.mllm.templates import RM_TEMPLATES
from caig.reward.config import RewardConfig, RewardRecipeConfig
from caig.reward.data import read_pairs
from caig.reward.inputs import answer_token_ids, join_side_by_side, rm_question

PRODUCT = {
    "title": "classic red sneakers",
    "category": "sneakers",
    "tags": ["sport", "red"],
    "colour": "red",
    "price": 49.99,
}


def test_join_side_by_side_left_then_right() -> None:
    left = Image.new("RGB", (100, 100), (255, 0, 0))
    right = Image.new("RGBA", (40, 40), (0, 0, 255, 255))
    joined = join_side_by_side(left, right, 16)
    assert joined.size == (32, 16) and joined.mode == "RGB"
    assert joined.getpixel((3, 8)) == (255, 0, 0) and joined.getpixel((28, 8)) == (0, 0, 255)


def test_question_switches() -> None:
    full = rm_question(PRODUCT, RewardConfig(), 0)
    assert "'classic red sneakers'" in full and "Product Category: 'sneakers'" in full and "$49.99" in full
    bare = rm_question(PRODUCT, RewardConfig(use_caption=False, use_attributes=False), 0)
    assert bare == RM_TEMPLATES[0].replace(" '{}'", "")
    assert "{}" not in bare and "sneakers" not in bare
    caption_only = rm_question(PRODUCT, RewardConfig(use_attributes=False), 2)
    assert "classic red sneakers" in caption_only and "Product Category" not in caption_only


def test_every_template_without_caption_reads_cleanly() -> None:
    config = RewardConfig(use_caption=False, use_attributes=False)
    for i in range(len(RM_TEMPLATES)):
        question = rm_question(PRODUCT, config, i)
        assert "'" not in question and "{}" not in question


def test_answer_tokens_differ(tiny_model_dir) -> None:
    from caig.mllm.build import load_model

    _, processor = load_model(tiny_model_dir)
    left, right = answer_token_ids(processor)
    assert left != right
    assert processor.tokenizer.decode([left]).strip() == "left"


def test_config_validation() -> None:
    with pytest.raises(ValueError, match="point_weight"):
        RewardConfig(head="text")
    with pytest.raises(ValueError, match="attributes"):
        RewardConfig(attributes=["weight"])
    assert dataclasses.replace(RewardConfig(), head="text", point_weight=0.0).head == "text"


def test_read_pairs_errors(tmp_path) -> None:
    with pytest.raises(UserError, match="caig data pairs"):
        read_pairs(tmp_path / "nope.parquet")
    pd.DataFrame({"product_id": ["P0"]}).to_parquet(tmp_path / "bad.parquet")
    with pytest.raises(UserError, match="lack column"):
        read_pairs(tmp_path / "bad.parquet")
    pd.DataFrame(
        {
            "product_id": ["P0"],
            "left_creative_id": ["a"],
            "right_creative_id": ["b"],
            "left_ctr": [0.1],
            "right_ctr": [0.2],
            "label": ["up"],
        }
    ).to_parquet(tmp_path / "label.parquet")
    with pytest.raises(UserError, match="label other than"):
        read_pairs(tmp_path / "label.parquet")


def test_read_pairs_checks_soft_labels(tmp_path) -> None:
    base = {
        "product_id": ["P0", "P0", "P0"],
        "left_creative_id": ["a", "a", "b"],
        "right_creative_id": ["b", "c", "c"],
        "left_ctr": [0.1] * 3,
        "right_ctr": [0.2] * 3,
        "label": ["right", "left", "left"],
    }
    pd.DataFrame({**base, "p_right": [0.9, 0.2, 0.5]}).to_parquet(tmp_path / "ok.parquet")
    assert read_pairs(tmp_path / "ok.parquet")["p_right"].tolist() == [0.9, 0.2, 0.5]
    pd.DataFrame({**base, "p_right": [1.5, 0.2, None]}).to_parquet(tmp_path / "range.parquet")
    with pytest.raises(UserError, match=r"2 pair\(s\) have p_right outside \[0, 1\] or missing"):
        read_pairs(tmp_path / "range.parquet")
    pd.DataFrame({**base, "p_right": [0.2, 0.2, 0.5]}).to_parquet(tmp_path / "contra.parquet")
    with pytest.raises(UserError, match=r"1 pair\(s\) have a label that contradicts p_right"):
        read_pairs(tmp_path / "contra.parquet")


def test_joined_image_gives_each_ad_its_own_tile_and_square_images_keep_their_tokens(tiny_model_dir) -> None:
    """The tiny preset's 1x2 grid pinpoint: the RM's 2:1 image is base + two tiles, one ad per tile, while a
    square image (the PM's input) costs exactly what it cost with the single square tile."""
    from caig.mllm.build import load_model, make_processor
    from caig.mllm.config import TinyModelConfig

    _, processor = load_model(tiny_model_dir)
    tiny = TinyModelConfig()
    side = tiny.image_size
    assert processor.image_processor.image_grid_pinpoints == [[side, side], [side, 2 * side]]
    single = make_processor(processor.tokenizer, side, tiny.patch_size)  # the old one-tile processor
    image_id = processor.tokenizer.image_token_id

    def image_tokens(proc, image):
        batch = proc(text=["<image>\nq"], images=[image], return_tensors="pt")
        return int((batch["input_ids"] == image_id).sum()), batch

    square = Image.new("RGB", (128, 128), (10, 200, 10))
    assert image_tokens(processor, square)[0] == image_tokens(single, square)[0] == 10
    left, right = Image.new("RGB", (128, 128), (255, 0, 0)), Image.new("RGB", (128, 128), (0, 0, 255))
    n, batch = image_tokens(
        processor, join_side_by_side(left, right, RewardConfig(image_side=side).image_side)
    )
    assert n == 14  # base view (4) + two tiles of 2x2 patches (8) + one newline per feature row (2)
    assert batch["image_sizes"].tolist() == [[side, 2 * side]]
    tiles = batch["pixel_values"][0]  # (base, left tile, right tile, 3, side, side)
    assert tiles.shape[0] == 3
    red, blue = tiles[1].mean(dim=(1, 2)), tiles[2].mean(dim=(1, 2))
    assert red[0] > red[2] and blue[2] > blue[0]  # the first tile is the left ad, the second the right one


def test_image_after_text_sits_at_a_fixed_distance_from_the_scored_token(tiny_model_dir) -> None:
    """``recipe.image_position: after_text`` ends every prompt with the image and then the same few tokens, whatever
    the caption's length, so a small model can tell which image tokens are the left ad's; the paper's
    ``before_text`` puts a caption of varying length between them."""
    from caig.mllm.build import load_model
    from caig.reward.data import encode_one
    from caig.reward.inputs import rm_prompt

    _, processor = load_model(tiny_model_dir)
    long_title = {**PRODUCT, "title": "classic red sneakers for long walks in the city and the park"}
    image = join_side_by_side(Image.new("RGB", (32, 32)), Image.new("RGB", (32, 32), (9, 9, 9)), 32)
    image_id = processor.tokenizer.image_token_id

    def gap(product, position: str) -> int:
        config = RewardConfig(recipe=RewardRecipeConfig(image_position=position), template=0)
        prompt = rm_prompt(processor, product, config, 0)
        ids = encode_one(processor, prompt, image, 512)["input_ids"].tolist()
        last_image = max(i for i, t in enumerate(ids) if t == image_id)
        return len(ids) - 1 - last_image

    assert (
        rm_prompt(processor, PRODUCT, RewardConfig(recipe=RewardRecipeConfig(image_position="after_text")), 0)
        .rstrip()
        .endswith("<image>\n ASSISTANT:")
    )
    assert gap(PRODUCT, "after_text") == gap(long_title, "after_text")
    assert gap(PRODUCT, "before_text") < gap(long_title, "before_text")
    with pytest.raises(ValueError, match="image_position"):
        RewardRecipeConfig(image_position="middle")  # type: ignore[arg-type]
