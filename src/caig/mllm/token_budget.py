"""Sequence limits checked against what the processor really produces, before any training starts.

A LLaVA-NeXT image costs many tokens (LLaVA-v1.6 at 336 px: a 512x512 product image 2,928, a 1024x512 RM pair
1,752), so a ``max_length`` that looks generous can be unable to hold one example. Every count here comes
from the processor itself (its image processor, grid pinpoints and chat template), never from a formula
written by hand; a limit that cannot hold an example is a ``UserError`` that names the profile key, the value
needed and why.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache
from typing import Any

from PIL import Image

from caig.errors import UserError
from caig.mllm.chat import render


def image_tokens(processor: Any, width: int, height: int) -> int:
    """How many tokens the processor expands one ``width`` x ``height`` image into."""
    return _image_tokens(processor, int(width), int(height))


@lru_cache(maxsize=256)
def _image_tokens(processor: Any, width: int, height: int) -> int:
    image = Image.new("RGB", (width, height))
    batch = processor(images=[image], text=[processor.image_token], add_special_tokens=False)
    return sum(int(t == processor.image_token_id) for t in batch["input_ids"][0])


def largest_image_tokens(processor: Any) -> int:
    """The most tokens any image can cost: the processor tiles an image on one of its grid resolutions, and
    an image of exactly that resolution (no padding to remove) costs the most for it."""
    pinpoints = processor.image_processor.image_grid_pinpoints
    return max(image_tokens(processor, width, height) for height, width in pinpoints)


def text_tokens(processor: Any, texts: Iterable[str]) -> list[int]:
    """Token counts of already rendered texts (the image placeholder counts as one token)."""
    texts = list(texts)
    if not texts:
        return []
    return [len(ids) for ids in processor.tokenizer(texts, add_special_tokens=False)["input_ids"]]


def prompt_tokens(
    processor: Any,
    questions: Iterable[str],
    image_size: tuple[int, int] | None,
    answers: Iterable[str] | None = None,
    image_last: bool = False,
) -> list[int]:
    """Length of each chat-rendered question (with its answer, if given) with the image's tokens expanded."""
    questions = list(questions)
    answers = list(answers) if answers is not None else [None] * len(questions)
    has_image = image_size is not None
    texts = [render(processor, q, a, has_image, image_last) for q, a in zip(questions, answers, strict=True)]
    extra = image_tokens(processor, *image_size) - 1 if has_image else 0
    return [n + extra for n in text_tokens(processor, texts)]


def check_limit(key: str, limit: int, needed: int, why: str) -> None:
    """A ``UserError`` when ``limit`` (the value of profile key ``key``) is below ``needed`` tokens."""
    if needed > limit:
        raise UserError(
            f"{key}={limit} cannot hold {why}: it needs {needed} tokens (image tokens counted by the model's "
            f"processor); set {key} to at least {needed} in the profile or with --set {key}={needed}"
        )
