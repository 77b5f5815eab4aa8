"""Examples to tensors: the chat template, the image placeholder expanded by the processor, loss on answers.

Labels are ``-100`` on every prompt token (system, question, image tokens, ``ASSISTANT:``) so that the loss is
only on the answer tokens and the closing ``</s>``. Training batches are right-padded; generation batches are
left-padded so that every prompt ends where generation starts.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from PIL import Image

from caig.mllm.chat import render, split_prompt_answer

IGNORE_INDEX = -100
BACKDROP = (128, 128, 128, 255)  # behind transparent product images


def model_image(image: Image.Image) -> Image.Image:
    """The RGB image the model sees: a transparent product image is composited onto mid grey (on black, a
    black product would vanish; on white, a white one)."""
    if image.mode in ("RGBA", "LA") or "transparency" in image.info:
        canvas = Image.new("RGBA", image.size, BACKDROP)
        return Image.alpha_composite(canvas, image.convert("RGBA")).convert("RGB")
    return image.convert("RGB")


def encode_example(
    processor: Any, image: Image.Image | None, question: str, answer: str, max_length: int
) -> dict[str, torch.Tensor]:
    """One training example: ``input_ids``, ``labels`` (answer tokens only) and, with an image, pixels.

    Raises ValueError when the example is longer than ``max_length`` tokens (image tokens included): a
    truncated answer would teach the model to stop early, so the caller must raise the limit instead.
    """
    prompt, completion = split_prompt_answer(processor, question, answer, image is not None)
    images = [model_image(image)] if image is not None else None
    batch = processor(
        images=images, text=[prompt + completion], return_tensors="pt", add_special_tokens=False
    )
    input_ids = batch["input_ids"][0]
    prompt_ids, full_ids = _prompt_and_full_ids(processor.tokenizer, prompt, completion)
    n_expanded = len(input_ids) - len(full_ids)  # extra tokens from expanding <image> to its features
    out = _labelled(input_ids, len(prompt_ids) + n_expanded, max_length)
    if images is not None:
        out["pixel_values"] = batch["pixel_values"][0]
        out["image_sizes"] = batch["image_sizes"][0]
    return out


def _prompt_and_full_ids(tokenizer: Any, prompt: str, completion: str) -> tuple[list[int], list[int]]:
    """The prompt's token ids and the whole example's; refuses a template whose prompt tokens change when
    the answer follows (the labels would mask the wrong tokens)."""
    prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    full_ids = tokenizer(prompt + completion, add_special_tokens=False)["input_ids"]
    if full_ids[: len(prompt_ids)] != prompt_ids:
        raise ValueError(
            "the prompt's tokens change when the answer follows; the chat template must end the "
            "prompt on a token boundary"
        )
    return prompt_ids, full_ids


def _labelled(input_ids: torch.Tensor, n_prompt: int, max_length: int) -> dict[str, torch.Tensor]:
    """``input_ids`` with labels that train on the answer only; refuses an example over ``max_length``."""
    if len(input_ids) > max_length:
        raise ValueError(
            f"example has {len(input_ids)} tokens, above max_length={max_length}; raise "
            "pretrain.max_length or shorten the question"
        )
    labels = input_ids.clone()
    labels[:n_prompt] = IGNORE_INDEX
    return {"input_ids": input_ids, "labels": labels}


def encode_answers(
    processor: Any, image: Image.Image | None, question: str, answers: Sequence[str], max_length: int
) -> list[dict[str, torch.Tensor]]:
    """``encode_example`` of several answers to one image and question, the image processed once.

    The first answer is encoded in full; the others reuse its prompt (image tokens expanded, pixels) and
    tokenize only their own text: the same tensors ``encode_example`` makes (image preprocessing is most of
    its cost: about 60 of 90 ms for a 512-pixel image at LLaVA-v1.6's grid).
    """
    first = encode_example(processor, image, question, answers[0], max_length)
    n_prompt = int((first["labels"] != IGNORE_INDEX).nonzero()[0])
    tokenizer = processor.tokenizer
    out = [first]
    for answer in answers[1:]:
        prompt, completion = split_prompt_answer(processor, question, answer, image is not None)
        prompt_ids, full_ids = _prompt_and_full_ids(tokenizer, prompt, completion)
        input_ids = torch.cat([first["input_ids"][:n_prompt], torch.tensor(full_ids[len(prompt_ids) :])])
        example = _labelled(input_ids, n_prompt, max_length)
        example.update({k: first[k] for k in ("pixel_values", "image_sizes") if k in first})
        out.append(example)
    return out


class Collator:
    """Right-pads a list of encoded examples into a batch; pixels only for examples that have an image."""

    def __init__(self, processor: Any):
        self.pad_id = processor.tokenizer.pad_token_id

    def __call__(self, examples: Sequence[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
        length = max(len(e["input_ids"]) for e in examples)
        input_ids = torch.full((len(examples), length), self.pad_id, dtype=torch.long)
        labels = torch.full((len(examples), length), IGNORE_INDEX, dtype=torch.long)
        attention = torch.zeros((len(examples), length), dtype=torch.long)
        for i, e in enumerate(examples):
            n = len(e["input_ids"])
            input_ids[i, :n], labels[i, :n], attention[i, :n] = e["input_ids"], e["labels"], 1
        batch = {"input_ids": input_ids, "labels": labels, "attention_mask": attention}
        with_image = [e for e in examples if "pixel_values" in e]
        if with_image:
            batch["pixel_values"] = stack_patches([e["pixel_values"] for e in with_image])
            batch["image_sizes"] = torch.stack([e["image_sizes"] for e in with_image])  # (N, 2)
        return batch


def stack_patches(pixel_values: Sequence[torch.Tensor]) -> torch.Tensor:
    """(patches, C, H, W) tensors -> (N, max patches, C, H, W), zero-padded as the LLaVA-NeXT processor pads.

    Images of different aspect ratios (a single ad and two ads joined side by side) have different numbers
    of grid tiles; the model reads only as many as each row's ``image_sizes`` implies.
    """
    most = max(p.shape[0] for p in pixel_values)
    if all(p.shape[0] == most for p in pixel_values):
        return torch.stack(list(pixel_values))
    out = pixel_values[0].new_zeros((len(pixel_values), most, *pixel_values[0].shape[1:]))
    for i, p in enumerate(pixel_values):
        out[i, : p.shape[0]] = p
    return out


def prompt_inputs(
    processor: Any, images: Sequence[Image.Image | None], questions: Sequence[str]
) -> dict[str, torch.Tensor]:
    """A left-padded generation batch: the chat template's prompts (ending ``ASSISTANT:``) with their images.

    Every prompt in one batch must have an image, or none may (the processor pairs images with prompts).
    """
    has_image = [im is not None for im in images]
    if any(has_image) and not all(has_image):
        raise ValueError("a generation batch must have an image for every prompt or for none")
    texts = [render(processor, q, None, has_image[0] if has_image else True) for q in questions]
    rgb = [model_image(im) for im in images] if all(has_image) and images else None
    tokenizer = processor.tokenizer
    side = tokenizer.padding_side
    tokenizer.padding_side = "left"
    try:
        return processor(images=rgb, text=texts, return_tensors="pt", padding=True, add_special_tokens=False)
    finally:
        tokenizer.padding_side = side
