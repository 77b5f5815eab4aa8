"""What the RM reads: two ad images joined side by side (left | right) and the RM prompt (paper Eq. 2).

``C_RM = f_instruct(Q_RM, i_1, ..., i_n)``: a Table 4 RM template with the product caption in its slot
(Table 1 "product caption"), followed by the product's attributes (Table 1 "additional information"). With
the caption switched off, the slot and its quotes are removed ("... for the product?").
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

from PIL import Image

from caig.mllm.chat import render, split_prompt_answer
from caig.mllm.instruct import caption, catalog_attributes, f_instruct
from caig.mllm.templates import RM_TEMPLATES, fill
from caig.reward.config import RewardConfig

ANSWERS = ("left", "right")  # class 0 = the left image is better, class 1 = the right one


def join_side_by_side(left: Image.Image, right: Image.Image, side: int) -> Image.Image:
    """Both ads resized to ``side`` x ``side`` and joined into one RGB image, left | right: (side, 2 * side)."""
    joined = Image.new("RGB", (2 * side, side))
    joined.paste(square_ad(left, side), (0, 0))
    joined.paste(square_ad(right, side), (side, 0))
    return joined


def square_ad(image: Image.Image, side: int) -> Image.Image:
    """One ad as the RM sees one side of a pair: RGB, resized (bicubic) to ``side`` x ``side``."""
    image = image.convert("RGB")
    return image if image.size == (side, side) else image.resize((side, side), Image.Resampling.BICUBIC)


def template_index(config: RewardConfig, rng: random.Random | None) -> int:
    """The configured template, or one drawn from the pool of 13 with ``rng`` (index 0 when scoring)."""
    if config.template >= 0:
        return config.template
    return rng.randrange(len(RM_TEMPLATES)) if rng is not None else 0


def rm_question(product: Mapping[str, Any], config: RewardConfig, index: int) -> str:
    """The RM instruct prompt (Eq. 2) for one product, honouring the caption and attribute switches."""
    template = RM_TEMPLATES[index]
    question = fill(template, caption(product)) if config.use_caption else template.replace(" '{}'", "")
    attributes = catalog_attributes(config.attributes, product.keys()) if config.use_attributes else []
    return f_instruct(question, product, attributes)


def rm_prompt(processor: Any, product: Mapping[str, Any], config: RewardConfig, index: int) -> str:
    """The full model input text ``<s>USER: <image>\\n{C_RM} ASSISTANT:`` (the one chat template), or with
    ``reward.recipe.image_position: after_text`` ``<s>USER: {C_RM}\\n<image>\\n ASSISTANT:``."""
    after = config.recipe.image_position == "after_text"
    return render(processor, rm_question(product, config, index), None, image_last=after)


def answer_token_ids(processor: Any) -> tuple[int, int]:
    """Token ids of the first token of the answers "left" and "right" after ``ASSISTANT:`` (text head)."""
    ids = []
    for answer in ANSWERS:
        _, completion = split_prompt_answer(processor, "q", answer)
        ids.append(processor.tokenizer(completion, add_special_tokens=False)["input_ids"][0])
    if ids[0] == ids[1]:
        raise ValueError(
            "the tokenizer starts 'left' and 'right' with the same token; the text head cannot tell them"
        )
    return ids[0], ids[1]
