"""Encoding: loss only on answer tokens, padding, mixed image/text batches; batched generation."""

from __future__ import annotations

import pytest
import torch

from caig.mllm.encode import IGNORE_INDEX, Collator, encode_example, prompt_inputs
from caig.mllm.generate import generate
from caig.world.loaded import load_world


@pytest.fixture(scope="module")
def images(small_world_dir):
    world = load_world(small_world_dir)
    return [world.product_image(pid) for pid in world.catalog["product_id"][:3]]


def test_labels_cover_only_the_answer_and_eos(tiny, images):
    _, processor = tiny
    example = encode_example(processor, images[0], "What colour is the product in this image?", "white", 256)
    answer_ids = example["input_ids"][example["labels"] != IGNORE_INDEX]
    assert processor.tokenizer.decode(answer_ids) == " white</s>"
    assert (example["input_ids"] == processor.tokenizer.image_token_id).sum() > 0
    assert example["pixel_values"].shape[-2:] == (32, 32)


def test_too_long_example_is_an_error_not_a_truncation(tiny, images):
    _, processor = tiny
    with pytest.raises(ValueError, match="max_length"):
        encode_example(processor, images[0], "a question", "word " * 100, 64)


def test_collator_pads_right_and_stacks_pixels_of_image_examples_only(tiny, images):
    model, processor = tiny
    batch = Collator(processor)(
        [
            encode_example(processor, images[0], "Q one?", "red", 256),
            encode_example(processor, None, "A much longer question without any image at all?", "blue", 256),
        ]
    )
    assert batch["pixel_values"].shape[0] == 1
    pad = processor.tokenizer.pad_token_id
    lengths = batch["attention_mask"].sum(1)
    assert (batch["input_ids"][0, lengths[0] :] == pad).all() and (
        batch["labels"][0, lengths[0] :] == IGNORE_INDEX
    ).all()
    with torch.no_grad():
        assert torch.isfinite(model(**batch).loss)


def test_generation_batch_is_left_padded_and_matches_one_by_one(tiny, images):
    model, processor = tiny
    questions = ["Q?", "A longer question about the product?", "Colour?"]
    batch = prompt_inputs(processor, images, questions)
    assert (batch["attention_mask"][:, -1] == 1).all()
    together = generate(model, processor, images, questions, max_new_tokens=5)
    alone = [generate(model, processor, [im], [q], max_new_tokens=5)[0] for im, q in zip(images, questions)]
    assert together == alone
    with pytest.raises(ValueError, match="image for every prompt"):
        prompt_inputs(processor, [images[0], None], ["a", "b"])


def test_collator_pads_tiles_of_a_joined_pair_and_a_single_ad(tiny, images):
    """A pair joined side by side has one grid tile more than a single ad; the batch pads, the model reads
    each row's own tiles, so the single ad's loss is the same alone and beside the pair."""
    from caig.reward.inputs import join_side_by_side

    model, processor = tiny
    single = encode_example(processor, images[0], "Q one?", "red", 256)
    joined = encode_example(
        processor, join_side_by_side(images[1], images[2], 32), "Which side?", "left", 256
    )
    assert joined["pixel_values"].shape[0] == single["pixel_values"].shape[0] + 1
    batch = Collator(processor)([single, joined])
    assert batch["pixel_values"].shape[:2] == (2, joined["pixel_values"].shape[0])
    assert (batch["pixel_values"][0, single["pixel_values"].shape[0] :] == 0).all()
    with torch.no_grad():
        out = model(**batch)
        alone = model(**Collator(processor)([single]))
    n = len(single["input_ids"])
    assert torch.allclose(out.logits[0, :n], alone.logits[0, :n], atol=1e-5)
