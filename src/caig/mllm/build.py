"""Build, save and load the multimodal LLM (LLaVA-NeXT) of a preset.

- ``tiny``: built from config (small CLIP vision tower, small Llama text model, one grid tile so that an image
  costs few tokens) with a BPE tokenizer trained on the world's text (``caig.mllm.tokenizer``). Random weights:
  pre-training gives it its knowledge.
- ``llava-v1.6-7b``: loaded from ``MLLMConfig.model_path`` (a local directory or a mounted model URI such as a
  PVC path) with ``local_files_only``: never downloaded.

Either way the processor carries the project's one chat template (``caig.mllm.chat``) and uses the PIL
image processor (no torchvision).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
from transformers import (
    AutoProcessor,
    CLIPVisionConfig,
    LlamaConfig,
    LlavaNextConfig,
    LlavaNextForConditionalGeneration,
    LlavaNextProcessor,
)

try:  # transformers >= the image-processor backend split: the PIL backend has its own class
    from transformers.models.llava_next.image_processing_pil_llava_next import (
        LlavaNextImageProcessorPil as PilImageProcessor,
    )
except ImportError:  # older 5.x: the "slow" processor is the PIL/numpy one
    from transformers import LlavaNextImageProcessor as PilImageProcessor

from caig.errors import UserError
from caig.mllm.chat import CHAT_TEMPLATE
from caig.mllm.config import MLLMConfig, TinyModelConfig
from caig.mllm.tokenizer import check_special_tokens, static_corpus, train_tokenizer, world_corpus

log = logging.getLogger("caig.mllm")
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def make_processor(
    tokenizer: Any, image_size: int, patch_size: int, grid_pinpoints: list[list[int]] | None = None
) -> LlavaNextProcessor:
    """A LLaVA-NeXT processor: PIL image processor (no torchvision), CLIP's CLS dropped, our chat template.

    ``grid_pinpoints`` default to one square tile of ``image_size`` (fewest image tokens).
    """
    image_processor = PilImageProcessor(
        size={"shortest_edge": image_size},
        crop_size={"height": image_size, "width": image_size},
        image_grid_pinpoints=grid_pinpoints or [[image_size, image_size]],
    )
    return LlavaNextProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        patch_size=patch_size,
        vision_feature_select_strategy="default",
        chat_template=CHAT_TEMPLATE,
        num_additional_image_tokens=1,
    )


def tiny_grid_pinpoints(tiny: TinyModelConfig) -> list[list[int]]:
    """Grid resolutions (height, width) of the tiny preset: one square tile, or a 1x2 row of two tiles.

    A square image (product, ad) picks the single tile (fewest image tokens); the RM's 2:1 image of two ads
    joined side by side picks the 1x2 grid, so each ad gets a full tile (LLaVA-NeXT "anyres").
    """
    side = tiny.image_size
    return [[side, side], [side, 2 * side]]


def tiny_processor(tiny: TinyModelConfig, world_dir: str | Path | None = None) -> LlavaNextProcessor:
    """The tiny preset's processor: trained tokenizer, PIL image processor with the tiny grid pinpoints."""
    corpus = static_corpus() + (world_corpus(world_dir) if world_dir else [])
    tokenizer = train_tokenizer(corpus, tiny.vocab_size)
    check_special_tokens(tokenizer, {w for text in corpus for w in text.split()})
    return make_processor(tokenizer, tiny.image_size, tiny.patch_size, tiny_grid_pinpoints(tiny))


def tiny_model_config(tiny: TinyModelConfig, processor: LlavaNextProcessor) -> LlavaNextConfig:
    """LLaVA-NeXT config of the tiny preset, sized to the processor's tokenizer."""
    tokenizer = processor.tokenizer
    vision = CLIPVisionConfig(
        hidden_size=tiny.vision_hidden_size,
        intermediate_size=2 * tiny.vision_hidden_size,
        num_hidden_layers=tiny.vision_layers,
        num_attention_heads=tiny.vision_heads,
        image_size=tiny.image_size,
        patch_size=tiny.patch_size,
        projection_dim=tiny.text_hidden_size,
    )
    text = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=tiny.text_hidden_size,
        intermediate_size=tiny.text_intermediate_size,
        num_hidden_layers=tiny.text_layers,
        num_attention_heads=tiny.text_heads,
        num_key_value_heads=tiny.text_heads,
        max_position_embeddings=tiny.max_position_embeddings,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=True,
    )
    return LlavaNextConfig(
        vision_config=vision,
        text_config=text,
        image_token_index=tokenizer.image_token_id,
        image_grid_pinpoints=tiny_grid_pinpoints(tiny),
        vision_feature_select_strategy="default",
        vision_feature_layer=-1,
        tie_word_embeddings=True,
    )


def build_tiny(config: MLLMConfig, world_dir: str | Path | None = None) -> tuple[Any, LlavaNextProcessor]:
    """A freshly initialised tiny LLaVA-NeXT and its processor (seeded: same config, same weights)."""
    processor = tiny_processor(config.tiny, world_dir)
    torch.manual_seed(config.tiny.seed)
    model = LlavaNextForConditionalGeneration(tiny_model_config(config.tiny, processor))
    _set_generation_ids(model, processor)
    n = sum(p.numel() for p in model.parameters())
    log.info("tiny LLaVA-NeXT: %.2fM parameters, vocab %d", n / 1e6, len(processor.tokenizer))
    return model, processor


def model_dir_of(path: str | Path) -> Path:
    """The model directory of a `caig pretrain` output (``DIR/model``), or ``path`` itself when it is one."""
    path = Path(path)
    return path / "model" if (path / "model" / "config.json").is_file() else path


def load_model(path: str | Path, dtype: str = "float32") -> tuple[Any, LlavaNextProcessor]:
    """Load a saved model and processor from a local directory (never from a hub); PEFT adapters merged."""
    path = Path(path)
    if not (path / "config.json").is_file() and not (path / "adapter_config.json").is_file():
        raise UserError(
            f"{path} holds no model (config.json); build one with `caig mllm build --out DIR` "
            "or point mllm.model_path at a local LLaVA-NeXT directory"
        )
    processor = AutoProcessor.from_pretrained(path, local_files_only=True, backend="pil")
    processor.chat_template = CHAT_TEMPLATE
    if (path / "adapter_config.json").is_file():
        raise UserError(
            f"{path} holds LoRA adapters only; load the merged model directory written by pretrain"
        )
    model = LlavaNextForConditionalGeneration.from_pretrained(
        path, local_files_only=True, dtype=DTYPES[dtype]
    )
    _set_generation_ids(model, processor)
    return model, processor


def build_or_load(config: MLLMConfig, world_dir: str | Path | None = None) -> tuple[Any, LlavaNextProcessor]:
    """The preset's model: ``tiny`` built from config, ``llava-v1.6-7b`` loaded from ``model_path``."""
    if config.preset == "tiny":
        return build_tiny(config, world_dir)
    if not config.model_path:
        raise UserError(
            "mllm.model_path is empty; set it to a local LLaVA-v1.6-7B directory or mounted model URI "
            "(e.g. --set mllm.model_path=/models/llava-v1.6-vicuna-7b-hf)"
        )
    return load_model(config.model_path, config.dtype)


def save_model(model: Any, processor: LlavaNextProcessor, out: str | Path) -> Path:
    """Save model and processor so that ``from_pretrained(out)`` (and ``load_model``) loads both."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    processor.save_pretrained(out)
    return out


def _set_generation_ids(model: Any, processor: LlavaNextProcessor) -> None:
    tokenizer = processor.tokenizer
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.bos_token_id = tokenizer.bos_token_id
