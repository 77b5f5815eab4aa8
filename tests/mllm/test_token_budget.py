"""Sequence limits against the processor's real counts: LLaVA-v1.6's image tokens and every production limit."""

from __future__ import annotations

import pytest

from caig.errors import UserError
from caig.mllm.build import llava_v16_processor
from caig.mllm.instruct import pm_prompt, rm_prompt
from caig.mllm.templates import PM_TEMPLATES, RM_TEMPLATES
from caig.mllm.token_budget import check_limit, image_tokens, largest_image_tokens, prompt_tokens
from caig.mllm.tokenizer import static_corpus, train_tokenizer
from caig.profile import load_profile

# A long real-world title (paper Figure 7) and full attributes: the longest prompt a catalog is likely to have.
LONG_PRODUCT = {
    "title": "OlarHike Big White Goose Sleeping Pillow for Adults, Companion Sleeping Leg Pillow, Long Plush "
    "Toy Doll, Birthday Gift for Her",
    "category": "pillow",
    "tags": ["plush", "gift", "sleep", "bedroom", "white"],
    "colour": "white",
    "price": 129.99,
}
LONG_ANSWER = " ".join(["a cosy sunlit bedroom with white linen, a wooden nightstand and soft shadows"] * 2)


@pytest.fixture(scope="module")
def production():
    return load_profile("production")


@pytest.fixture(scope="module")
def v16(production):
    """LLaVA-v1.6's processor settings (CLIP-L/336, the v1.6 grid pinpoints) and the production system prompt.

    No weights and no Vicuna tokenizer here: a BPE of 1,200 tokens trained on our own text stands in; with a
    40x smaller vocabulary it splits text into more tokens than Vicuna's, so the text counts are upper bounds.
    """
    return llava_v16_processor(train_tokenizer(static_corpus(), 1200), production.mllm.system_prompt)


def test_llava_v16_image_tokens_are_counted_by_the_processor(v16):
    assert image_tokens(v16, 512, 512) == 2928  # 672x672 grid: 48x48 + 48 row breaks + 576 base view
    assert image_tokens(v16, 1024, 512) == 1752  # an RM pair: 672x336 grid: 48x24 + 24 + 576
    assert largest_image_tokens(v16) == 2928  # no image of any shape costs more


def test_every_production_limit_holds_its_longest_example(production, v16):
    side = production.world.image_size
    pm = [pm_prompt(LONG_PRODUCT, index=i) for i in range(len(PM_TEMPLATES))]
    pretrain = max(prompt_tokens(v16, pm, (side, side), [LONG_ANSWER] * len(pm)))
    assert pretrain > 2928 and production.pretrain.max_length >= pretrain
    rollout = max(prompt_tokens(v16, pm, (side, side))) + production.pcpo.max_new_tokens + 1
    assert production.pcpo.max_length >= rollout
    rm_side = production.reward.image_side
    rm = [rm_prompt(LONG_PRODUCT, index=i) for i in range(len(RM_TEMPLATES))]
    assert production.reward.max_length >= max(prompt_tokens(v16, rm, (2 * rm_side, rm_side)))


def test_the_old_production_limits_are_refused_with_the_value_needed(v16):
    side = 512
    needed = max(prompt_tokens(v16, [pm_prompt(LONG_PRODUCT, index=0)], (side, side), [LONG_ANSWER]))
    with pytest.raises(UserError, match=rf"pretrain.max_length=2048 cannot hold .* needs {needed} tokens"):
        check_limit("pretrain.max_length", 2048, needed, "the longest task example")
    check_limit("pretrain.max_length", needed, needed, "the longest task example")  # exactly enough passes
