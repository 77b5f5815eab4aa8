"""Table 4 templates, f_instruct and the one chat template."""

from __future__ import annotations

import random

import pytest

from caig.mllm.build import make_processor
from caig.mllm.chat import render, split_prompt_answer
from caig.mllm.instruct import f_instruct, pm_prompt, rm_prompt
from caig.mllm.templates import PM_TEMPLATES, RM_TEMPLATES, fill

PRODUCT = {
    "title": "classic red sneakers",
    "category": "sneakers",
    "tags": ["sport", "red"],
    "colour": "red",
    "price": 49.99,
}


def test_table4_has_8_pm_and_13_rm_templates_with_one_slot():
    assert len(PM_TEMPLATES) == 8 and len(set(PM_TEMPLATES)) == 8
    assert len(RM_TEMPLATES) == 13 and len(set(RM_TEMPLATES)) == 13
    assert all(t.count("'{}'") == 1 for t in PM_TEMPLATES + RM_TEMPLATES)
    assert "left" in " ".join(RM_TEMPLATES) and all("prompt" in t for t in PM_TEMPLATES)


def test_fill_rejects_a_template_without_one_slot():
    with pytest.raises(ValueError, match="slot"):
        fill("no slot here", "x")


def test_f_instruct_joins_attributes_in_order():
    text = f_instruct("Generate a background.", PRODUCT)
    assert text == (
        "Generate a background. Product Title: 'classic red sneakers', Product Category: 'sneakers', "
        "Tags: 'sport, red', Colour: 'red', Price: '$49.99'"
    )
    assert f_instruct("Q?", PRODUCT, ["colour"]) == "Q? Colour: 'red'"
    with pytest.raises(ValueError, match="missing attribute"):
        f_instruct("Q?", {"title": "x"})


def test_pm_and_rm_prompts_carry_the_caption():
    rng = random.Random(0)
    assert "'classic red sneakers'" in pm_prompt(PRODUCT, rng=rng)
    assert rm_prompt(PRODUCT, index=2).startswith("Which part will bring more click-through rate")


def test_chat_template_training_text_extends_the_generation_prompt(tiny):
    _, processor = tiny
    prompt, completion = split_prompt_answer(processor, "What colour?", "red")
    assert prompt == "<s>USER: <image>\nWhat colour? ASSISTANT:"
    assert completion == " red</s>"

    briefed = make_processor(processor.tokenizer, 32, 16, system='Be "brief".')
    assert render(briefed, "Q", image=False) == '<s>Be "brief". USER: Q ASSISTANT:'
