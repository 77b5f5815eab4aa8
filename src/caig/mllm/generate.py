"""Generation with the model's chat template: the prompt model's background descriptions, short answers."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from PIL import Image

from caig.mllm.encode import prompt_inputs


@torch.no_grad()
def generate(
    model: Any,
    processor: Any,
    images: Sequence[Image.Image | None],
    questions: Sequence[str],
    max_new_tokens: int = 40,
    temperature: float = 0.0,
    batch_size: int = 16,
    seed: int | None = None,
) -> list[str]:
    """Answers to ``questions`` (one per image), greedy when ``temperature == 0``, else sampled.

    Returns the decoded new tokens only (special tokens dropped, whitespace stripped), in input order.
    """
    if len(images) != len(questions):
        raise ValueError(f"got {len(images)} images for {len(questions)} questions")
    if seed is not None:
        torch.manual_seed(seed)
    was_training = model.training
    model.eval()
    answers: list[str] = []
    sampling = (
        {"do_sample": True, "temperature": temperature, "top_k": 0, "top_p": 1.0}
        if temperature > 0
        else {"do_sample": False}
    )
    for start in range(0, len(questions), batch_size):
        batch = prompt_inputs(
            processor, images[start : start + batch_size], questions[start : start + batch_size]
        )
        batch = {k: v.to(model.device) for k, v in batch.items()}
        if "pixel_values" in batch:
            batch["pixel_values"] = batch["pixel_values"].to(model.dtype)
        out = model.generate(
            **batch, max_new_tokens=max_new_tokens, **sampling, pad_token_id=processor.tokenizer.pad_token_id
        )
        new = out[:, batch["input_ids"].shape[1] :]
        answers += [a.strip() for a in processor.batch_decode(new, skip_special_tokens=True)]
    model.train(was_training)
    return answers
