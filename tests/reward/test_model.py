"""The heads read the hidden state of the LAST REAL token, whatever the padding side (REFERENCE.md)."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from tests.reward.conftest import pair_slice

from caig.mllm.build import load_model
from caig.reward.data import Collator, encode_pairs
from caig.reward.model import RewardModel, last_real_index, positions_from_mask


def test_last_real_index_right_and_left_padding() -> None:
    right = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 0, 0, 0, 0]])
    left = torch.tensor([[0, 0, 1, 1, 1], [1, 1, 1, 1, 1], [0, 0, 0, 0, 1]])
    assert last_real_index(right).tolist() == [2, 4, 0]
    assert last_real_index(left).tolist() == [4, 4, 4]
    assert positions_from_mask(left)[0].tolist() == [0, 0, 0, 1, 2]


@pytest.fixture(scope="module")
def model_and_examples(tiny_model_dir, rm_config, train_pairs):
    llava, processor = load_model(tiny_model_dir)
    torch.manual_seed(0)
    model = RewardModel(llava).eval()
    # Different templates and products give prompts of different lengths, so padding really differs.
    source = pair_slice(train_pairs, 6)
    config = dataclasses.replace(rm_config, template=-1)
    examples = encode_pairs(source, processor, config, seed=3)
    lengths = {len(e["input_ids"]) for e in examples}
    assert len(lengths) > 1, "test needs examples of different lengths"
    return model, processor, examples


def _outputs(model, batch):
    with torch.no_grad():
        return model(**{k: v for k, v in batch.items() if k not in ("labels", "ctr")})


def test_heads_read_last_real_token_under_right_and_left_padding(model_and_examples) -> None:
    model, processor, examples = model_and_examples
    pad = processor.tokenizer.pad_token_id
    alone = torch.cat([_outputs(model, Collator(pad)([e]))["logits"] for e in examples])
    right = _outputs(model, Collator(pad, "right")(examples))
    left = _outputs(model, Collator(pad, "left")(examples))
    torch.testing.assert_close(right["logits"], alone, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(left["logits"], alone, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(left["ctr"], right["ctr"], atol=1e-5, rtol=1e-4)


def test_index_minus_one_would_read_a_pad_token(model_and_examples) -> None:
    """The official code's index -1 differs from the last real token on right-padded rows (the bug avoided)."""
    model, processor, examples = model_and_examples
    batch = Collator(processor.tokenizer.pad_token_id, "right")(examples)
    inputs = {k: v for k, v in batch.items() if k not in ("labels", "ctr")}
    with torch.no_grad():
        hidden = model.llava.model(**inputs, use_cache=False).last_hidden_state
        ours = model.last_hidden(**inputs)
    padded_rows = batch["attention_mask"][:, -1] == 0
    assert padded_rows.any()
    assert not torch.allclose(hidden[padded_rows, -1], ours[padded_rows], atol=1e-4)


def test_text_head_uses_answer_token_logits(model_and_examples) -> None:
    model, processor, examples = model_and_examples
    text_model = RewardModel(model.llava, head="text", answer_ids=(5, 9)).eval()
    out = _outputs(text_model, Collator(processor.tokenizer.pad_token_id)(examples[:2]))
    torch.testing.assert_close(out["logits"], out["lm_logits"][:, [5, 9]])
    with pytest.raises(ValueError, match="answers"):
        RewardModel(model.llava, head="text")
