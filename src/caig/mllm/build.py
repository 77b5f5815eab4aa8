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
from caig.mllm.chat import chat_template, is_ours
from caig.mllm.config import MLLMConfig, ModelSizes, TinyModelConfig
from caig.mllm.tokenizer import check_special_tokens, static_corpus, train_tokenizer, world_corpus

log = logging.getLogger("caig.mllm")
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def make_processor(
    tokenizer: Any,
    image_size: int,
    patch_size: int,
    grid_pinpoints: list[list[int]] | None = None,
    system: str = "",
) -> LlavaNextProcessor:
    """A LLaVA-NeXT processor: PIL image processor (no torchvision), CLIP's CLS dropped, our chat template
    with ``system`` as its system prompt.

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
        chat_template=chat_template(system),
        num_additional_image_tokens=1,
    )


# LLaVA-v1.6 (llava-v1.6-vicuna-7b): CLIP ViT-L/14 at 336 px, "anyres" over these grid resolutions (height,
# width). A processor with these settings counts the production model's image tokens exactly, with no weights.
LLAVA_V16_IMAGE_SIZE = 336
LLAVA_V16_PATCH_SIZE = 14
LLAVA_V16_GRID_PINPOINTS = [[336, 672], [672, 336], [672, 672], [1008, 336], [336, 1008]]


def llava_v16_processor(tokenizer: Any, system: str = "") -> LlavaNextProcessor:
    """A processor with LLaVA-v1.6's image settings and our chat template, for any tokenizer."""
    return make_processor(
        tokenizer, LLAVA_V16_IMAGE_SIZE, LLAVA_V16_PATCH_SIZE, LLAVA_V16_GRID_PINPOINTS, system
    )


def tiny_grid_pinpoints(tiny: TinyModelConfig) -> list[list[int]]:
    """Grid resolutions (height, width) of the tiny preset: one square tile, or a 1x2 row of two tiles.

    A square image (product, ad) picks the single tile (fewest image tokens); the RM's 2:1 image of two ads
    joined side by side picks the 1x2 grid, so each ad gets a full tile (LLaVA-NeXT "anyres").
    """
    side = tiny.image_size
    return [[side, side], [side, 2 * side]]


def tiny_processor(
    tiny: TinyModelConfig, world_dir: str | Path | None = None, system: str = ""
) -> LlavaNextProcessor:
    """The tiny preset's processor: trained tokenizer, PIL image processor with the tiny grid pinpoints."""
    corpus = _corpus(world_dir, system)
    tokenizer = train_tokenizer(corpus, tiny.vocab_size)
    check_special_tokens(tokenizer, {w for text in corpus for w in text.split()})
    return make_processor(tokenizer, tiny.image_size, tiny.patch_size, tiny_grid_pinpoints(tiny), system)


def random_model_config(
    sizes: ModelSizes,
    processor: LlavaNextProcessor,
    image_size: int,
    patch_size: int,
    grid_pinpoints: list[list[int]],
    v16: bool = False,
) -> LlavaNextConfig:
    """A LLaVA-NeXT config at ``sizes``, sized to the processor's tokenizer.

    ``v16`` takes LLaVA-v1.6-vicuna's architecture choices: features from the vision tower's second-to-last
    layer and an lm_head of its own; the tiny preset reads the last layer and ties the head to the embeddings.
    """
    tokenizer = processor.tokenizer
    vision = CLIPVisionConfig(
        hidden_size=sizes.vision_hidden_size,
        intermediate_size=2 * sizes.vision_hidden_size,
        num_hidden_layers=sizes.vision_layers,
        num_attention_heads=sizes.vision_heads,
        image_size=image_size,
        patch_size=patch_size,
        projection_dim=sizes.text_hidden_size,
    )
    text = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=sizes.text_hidden_size,
        intermediate_size=sizes.text_intermediate_size,
        num_hidden_layers=sizes.text_layers,
        num_attention_heads=sizes.text_heads,
        num_key_value_heads=sizes.text_heads,
        max_position_embeddings=sizes.max_position_embeddings,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=not v16,
    )
    return LlavaNextConfig(
        vision_config=vision,
        text_config=text,
        image_token_index=tokenizer.image_token_id,
        image_grid_pinpoints=grid_pinpoints,
        vision_feature_select_strategy="default",
        vision_feature_layer=-2 if v16 else -1,
        tie_word_embeddings=not v16,
    )


def tiny_model_config(tiny: TinyModelConfig, processor: LlavaNextProcessor) -> LlavaNextConfig:
    """LLaVA-NeXT config of the tiny preset, sized to the processor's tokenizer."""
    return random_model_config(tiny, processor, tiny.image_size, tiny.patch_size, tiny_grid_pinpoints(tiny))


def build_tiny(config: MLLMConfig, world_dir: str | Path | None = None) -> tuple[Any, LlavaNextProcessor]:
    """A freshly initialised tiny LLaVA-NeXT and its processor (seeded: same config, same weights)."""
    processor = tiny_processor(config.tiny, world_dir, config.system_prompt)
    return _random_model(tiny_model_config(config.tiny, processor), processor, config.tiny.seed, "tiny")


def build_random_v16(
    config: MLLMConfig, world_dir: str | Path | None = None
) -> tuple[Any, LlavaNextProcessor]:
    """LLaVA-v1.6-7b's architecture and processor at ``mllm.random_weights`` sizes, random weights: every
    image costs the production model's token count (CLIP-L/336 patches, the v1.6 grid pinpoints)."""
    sizes = config.random_weights
    if sizes is None:
        raise UserError("mllm.random_weights is not set; it gives the sizes of a random llava-v1.6-7b")
    corpus = _corpus(world_dir, config.system_prompt)
    tokenizer = train_tokenizer(corpus, sizes.vocab_size)
    check_special_tokens(tokenizer, {w for text in corpus for w in text.split()})
    processor = llava_v16_processor(tokenizer, config.system_prompt)
    model_config = random_model_config(
        sizes, processor, LLAVA_V16_IMAGE_SIZE, LLAVA_V16_PATCH_SIZE, LLAVA_V16_GRID_PINPOINTS, v16=True
    )
    return _random_model(model_config, processor, sizes.seed, "random llava-v1.6-7b")


def _corpus(world_dir: str | Path | None, system: str) -> list[str]:
    return static_corpus() + (world_corpus(world_dir) if world_dir else []) + ([system] if system else [])


def _random_model(
    model_config: LlavaNextConfig, processor: LlavaNextProcessor, seed: int, name: str
) -> tuple[Any, LlavaNextProcessor]:
    torch.manual_seed(seed)
    model = LlavaNextForConditionalGeneration(model_config)
    _set_generation_ids(model, processor)
    n = sum(p.numel() for p in model.parameters())
    log.info("%s LLaVA-NeXT: %.2fM parameters, vocab %d", name, n / 1e6, len(processor.tokenizer))
    return model, processor


def model_dir_of(path: str | Path) -> Path:
    """The model directory of a `caig pretrain` output (``DIR/model``), or ``path`` itself when it is one."""
    path = Path(path)
    return path / "model" if (path / "model" / "config.json").is_file() else path


def load_model(
    path: str | Path, dtype: str = "float32", system: str | None = None
) -> tuple[Any, LlavaNextProcessor]:
    """Load a saved model and processor from a local directory (never from a hub).

    A model saved by caig keeps the chat template it was trained with (its system prompt included); a
    checkpoint of another origin (the published LLaVA-v1.6) gets ours with ``system`` as the system prompt.
    ``system`` given for a caig model must equal the one it carries: a model is never served or trained on
    another prompt than its own.
    """
    path = Path(path)
    if not (path / "config.json").is_file() and not (path / "adapter_config.json").is_file():
        raise UserError(
            f"{path} holds no model (config.json); build one with `caig mllm build --out DIR` "
            "or point mllm.model_path at a local LLaVA-NeXT directory"
        )
    processor = AutoProcessor.from_pretrained(path, local_files_only=True, backend="pil")
    if not is_ours(processor.chat_template):
        processor.chat_template = chat_template(system or "")
    elif system is not None and processor.chat_template != chat_template(system):
        raise UserError(
            f"{path} was trained with another system prompt than mllm.system_prompt={system!r}; "
            "use the model's own (leave mllm.system_prompt as it was when the model was built) or rebuild it"
        )
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
    """The preset's model: ``tiny`` built from config, ``llava-v1.6-7b`` loaded from ``model_path`` (or built at
    ``random_weights`` sizes for smoke runs)."""
    if config.preset == "tiny":
        return build_tiny(config, world_dir)
    if config.random_weights is not None:
        return build_random_v16(config, world_dir)
    if not config.model_path:
        raise UserError(
            "mllm.model_path is empty; set it to a local LLaVA-v1.6-7B directory or mounted model URI "
            "(e.g. --set mllm.model_path=/models/llava-v1.6-vicuna-7b-hf)"
        )
    return load_model(config.model_path, config.dtype, config.system_prompt)


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
