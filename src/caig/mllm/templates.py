"""The instruction templates of paper Table 4: 8 for the prompt model (PM), 13 for the reward model (RM).

Wording copied from the paper's Table 4; OCR damage in the paper text (curly and stray quote marks around the
slot, "whijch", a missing space) is normalised so that every template has exactly one ``'{}'`` slot, which
takes the product caption. The task questions used in pre-training (paper Table 3) are defined here too, so
that every string the model is trained on lives in one place and enters the tiny tokenizer's corpus.
"""

from __future__ import annotations

import random

# Table 4, "Prompt Model": ask for a background description (a Stable Diffusion prompt) for a product.
PM_TEMPLATES: tuple[str, ...] = (
    "Design a concise Stable Diffusion prompt that takes the product caption '{}' and product image as "
    "inspiration to generate an appealing advertising image background for this product.",
    "Produce a short diffusion prompt considering the critical information in product caption '{}' and product "
    "image to create an advertisement background.",
    "Generate a short Stable Diffusion prompt that leverage the product caption '{}' and the visual elements of "
    "the product image to output an advertising background that underscores the product's attractiveness.",
    "Provide a succinct text to background diffusion model prompt suitable for this product according to "
    "caption '{}' and product image.",
    "Develop a compact prompt for Stable Diffusion to craft a background for an ad, using the product caption "
    "'{}' and the accompanying product image as creative influences.",
    "Draft a distilled text to image prompt to fabricate an ad background, infusing the essence of '{}' from "
    "the product caption and the picture to accentuate the product's features.",
    "Based on this product image and product caption '{}', formulate a brief diffusion prompt to synthesize a "
    "background tailored for advertising purposes.",
    "Make use of product title '{}' along with its image, assemble a terse stable diffusion model prompt to "
    "render an ad background that complements and highlights the product.",
)

# Table 4, "Reward Model": which half of a side-by-side image (left | right) is the better ad.
RM_TEMPLATES: tuple[str, ...] = (
    "Comparing the left part and right part of this image, which part is more suitable for the product '{}'?",
    "The left and right part of this image is one advertising image for the product '{}', respectively, which "
    "is preferred by the user?",
    "Which part will bring more click-through rate in this image for product '{}'?",
    "Between the left and right sections of this image, which one is more appropriate for showcasing the "
    "product '{}'?",
    "Considering the left and right halves of this image, which side better represents the product '{}'?",
    "Which side of this image, left or right, is more effective for advertising the product '{}'?",
    "For the product '{}', which part of the image, left or right, is more appealing?",
    "When looking at the left and right portions of this image, which part is more suitable for promoting the "
    "product '{}'?",
    "In this image, which side, left or right, is preferred by users for the product '{}'?",
    "Which half of this image, left or right, is more likely to attract user preference for the product '{}'?",
    "Which section of this image, left or right, is expected to generate a higher click-through rate for the "
    "product '{}'?",
    "For the product '{}', which side of the image do users find more engaging, left or right?",
    "Between the left and right sides of this image, which one is anticipated to drive more clicks for the "
    "product '{}'?",
)

# Pre-training task questions (paper Table 3). Image-only questions carry no caption; the questions that
# take the caption get the product attributes appended by f_instruct.
CATEGORY_QUESTION = "What category of product is shown in this image?"
COLOUR_QUESTION = "What colour is the product in this image?"
DESCRIBE_PRODUCT_QUESTION = "Describe the product in this image."
DESCRIBE_BACKGROUND_QUESTION = "Describe the background of this advertising image."
TITLE_QUESTION = "Write a product title for this product based on its image and attributes."
CAPTION_BACKGROUND_QUESTION = (
    "Describe the background of this advertising image of the product with the following attributes."
)
NONE_PROMPT_QUESTION = "Write an eye-catching background description for an advertising image."
IMAGE_PROMPT_QUESTION = (
    "Generate a suitable background description for an advertising image of the product in this image."
)
CAPTION_PROMPT_QUESTION = (
    "Generate a suitable product background description based on the following attributes."
)
REWRITE_QUESTION = "Rewrite the background description '{}' so that the advertising image gets more clicks."

TASK_QUESTIONS: tuple[str, ...] = (
    CATEGORY_QUESTION,
    COLOUR_QUESTION,
    DESCRIBE_PRODUCT_QUESTION,
    DESCRIBE_BACKGROUND_QUESTION,
    TITLE_QUESTION,
    CAPTION_BACKGROUND_QUESTION,
    NONE_PROMPT_QUESTION,
    IMAGE_PROMPT_QUESTION,
    CAPTION_PROMPT_QUESTION,
    REWRITE_QUESTION.replace("'{}'", ""),
)


def fill(template: str, caption: str) -> str:
    """Put a product caption into a template's ``'{}'`` slot (quotes in the caption are kept as they are)."""
    if template.count("{}") != 1:
        raise ValueError(f"a template must have exactly one '{{}}' slot: {template!r}")
    return template.replace("{}", caption)


def pm_question(caption: str, rng: random.Random | None = None, index: int | None = None) -> str:
    """A PM question for this caption: template ``index``, or one drawn with ``rng`` (the paper's pool)."""
    return fill(_pick(PM_TEMPLATES, rng, index), caption)


def rm_question(caption: str, rng: random.Random | None = None, index: int | None = None) -> str:
    """An RM question for this caption: template ``index``, or one drawn with ``rng``."""
    return fill(_pick(RM_TEMPLATES, rng, index), caption)


def _pick(pool: tuple[str, ...], rng: random.Random | None, index: int | None) -> str:
    if index is not None:
        return pool[index % len(pool)]
    return (rng or random).choice(pool)
