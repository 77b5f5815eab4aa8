"""The RM input: images side by side, the Table 4 prompt with caption and attributes switches."""

from __future__ import annotations

import dataclasses

import pandas as pd
import pytest
from PIL import Image

from caig.errors import UserError
from caig.mllm.templates import RM_TEMPLATES
from caig.reward.config import RewardConfig
from caig.reward.inputs import answer_token_ids, join_side_by_side, rm_question
from caig.reward.pairs_dataset import read_pairs

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
