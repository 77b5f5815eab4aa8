"""Recipes, up-front encoding and per-batch encoding: the same batches either way, and the memory limit decides."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from tests.reward.conftest import pair_slice

from caig.errors import UserError
from caig.mllm.build import load_model
from caig.reward.config import RewardRecipeConfig
from caig.reward.data import (
    Collator,
    EncodingCollator,
    SwapPairCollator,
    encode_pairs,
    encode_recipes,
    pair_recipes,
)
from caig.reward.trainer import pair_examples


def _assert_same_batch(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0)


def test_encoding_collator_gives_the_batch_of_up_front_encoding(
    tiny_model_dir, rm_config, train_pairs
) -> None:
    _, processor = load_model(tiny_model_dir)
    source = pair_slice(train_pairs, 5)
    recipes = pair_recipes(source, processor, rm_config, swap=True, seed=4)
    assert all(len(r.image_paths) == 2 for r in recipes)
    eager = Collator(processor.tokenizer.pad_token_id)(
        encode_pairs(source, processor, rm_config, swap=True, seed=4)
    )
    _assert_same_batch(EncodingCollator(processor, rm_config)(recipes), eager)
    assert torch.equal(
        eager["labels"],
        1 - torch.tensor((source.pairs["label"] == "right").to_numpy(), dtype=eager["labels"].dtype),
    )


@pytest.mark.parametrize("swap_consistent", [False, True])
def test_stage_examples_encode_up_front_within_the_limit_and_per_batch_above(
    tiny_model_dir, rm_config, train_pairs, swap_consistent
) -> None:
    """``encode_up_front_gb`` 0 keeps recipes (nothing encoded in memory); the batches are the same."""
    _, processor = load_model(tiny_model_dir)
    source = pair_slice(train_pairs, 6)
    kw = {
        "recipe": RewardRecipeConfig(
            swap_consistent_training=swap_consistent, train_both_orders=not swap_consistent
        )
    }
    up_front, collate_up_front = pair_examples(source, processor, dataclasses.replace(rm_config, **kw))
    per_batch, collate_per_batch = pair_examples(
        source, processor, dataclasses.replace(rm_config, encode_up_front_gb=0.0, **kw)
    )
    assert len(up_front) == len(per_batch) == (6 if swap_consistent else 12)
    inner = collate_per_batch.collate if swap_consistent else collate_per_batch
    assert isinstance(inner, EncodingCollator)
    assert isinstance(collate_up_front, SwapPairCollator) == swap_consistent
    first = per_batch[0]["ab"] if swap_consistent else per_batch[0]
    assert not hasattr(first, "keys") or "pixel_values" not in first  # a Recipe, not an encoded example
    _assert_same_batch(collate_per_batch(per_batch[1:4]), collate_up_front(up_front[1:4]))
    assert len(encode_recipes(pair_recipes(source, processor, rm_config)[:2], processor, rm_config)) == 2


def test_per_batch_stages_refuse_missing_images_and_long_prompts_before_training(
    tmp_path, tiny_model_dir, rm_config, train_pairs
) -> None:
    """Encoding per batch would find a bad example only when drawn: the checks run up front instead."""
    _, processor = load_model(tiny_model_dir)
    source = pair_slice(train_pairs, 4)
    per_batch = dataclasses.replace(rm_config, encode_up_front_gb=0.0)
    pairs = source.pairs.copy()
    pairs.loc[2, "right_image_path"] = str(tmp_path / "gone.png")
    with pytest.raises(UserError, match="1 ad image.*gone.png"):
        pair_examples(dataclasses.replace(source, pairs=pairs), processor, per_batch)
    up_front, _ = pair_examples(source, processor, rm_config)  # the same prompts, encoded: the true lengths
    longest = max(len(e["input_ids"]) for e in up_front)
    with pytest.raises(UserError, match=f"{longest} tokens, above reward.max_length={longest - 1}"):
        pair_examples(source, processor, dataclasses.replace(per_batch, max_length=longest - 1))
    examples, _ = pair_examples(source, processor, dataclasses.replace(per_batch, max_length=longest))
    assert len(examples) == len(up_front) and not hasattr(examples[0], "keys")  # recipes, checked
