"""SD1.5 + canny ControlNet inpainting pipelines: built from configs (``tiny`` for tests and the demo,
``sd15`` with the real architecture shapes and random weights for GPU benchmarks), saved, and loaded from a
local directory or ``file://`` URI. Nothing here downloads from a hub: loading uses ``local_files_only``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch

from caig.errors import UserError
from caig.render.diffusers_tokenizer import build_tokenizer

log = logging.getLogger(__name__)

SD_SCHEDULER = {
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "num_train_timesteps": 1000,
    "steps_offset": 1,
}
NEVER_FLAG = 1.0  # a concept threshold no cosine similarity exceeds: a random checker that never flags

# Architecture presets. sd15: runwayml/stable-diffusion-v1-5 + lllyasviel/control_v11p_sd15_canny shapes,
# the safety checker is CLIP ViT-L/14's vision tower. tiny: the same layout, a few thousand times smaller.
PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "sd15": {
        "unet": dict(
            block_out_channels=(320, 640, 1280, 1280),
            layers_per_block=2,
            cross_attention_dim=768,
            attention_head_dim=8,
            sample_size=64,
        ),
        "vae": dict(block_out_channels=(128, 256, 512, 512), layers_per_block=2, sample_size=512),
        "text": dict(
            hidden_size=768,
            intermediate_size=3072,
            num_attention_heads=12,
            num_hidden_layers=12,
            projection_dim=768,
            vocab_size=49408,
        ),
        "vision": dict(
            hidden_size=1024,
            intermediate_size=4096,
            num_attention_heads=16,
            num_hidden_layers=24,
            image_size=224,
            patch_size=14,
        ),
        "safety": dict(projection_dim=768),
    },
    "tiny": {
        "unet": dict(
            block_out_channels=(32, 64),
            layers_per_block=1,
            cross_attention_dim=32,
            attention_head_dim=4,
            sample_size=8,
            down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
            up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        ),
        "vae": dict(block_out_channels=(32, 32, 32, 32), layers_per_block=1, sample_size=64),
        "text": dict(
            hidden_size=32,
            intermediate_size=37,
            num_attention_heads=4,
            num_hidden_layers=2,
            projection_dim=32,
        ),
        "vision": dict(
            hidden_size=32,
            intermediate_size=37,
            num_attention_heads=4,
            num_hidden_layers=2,
            image_size=32,
            patch_size=4,
        ),
        "safety": dict(projection_dim=16),
    },
}


def _feature_extractor_class() -> type:
    """CLIP's image processor without torchvision where transformers offers one (it does from 5.x)."""
    try:
        from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

        return CLIPImageProcessorPil
    except ImportError:
        from transformers import CLIPImageProcessor

        return CLIPImageProcessor


def build_safety_checker(preset: dict[str, dict[str, Any]]) -> tuple[torch.nn.Module, Any]:
    """A random-weight safety checker and its image processor; thresholds set so it never flags."""
    from diffusers.pipelines.stable_diffusion.safety_checker import StableDiffusionSafetyChecker
    from transformers import CLIPConfig

    config = CLIPConfig(vision_config=preset["vision"], **preset["safety"])
    checker = StableDiffusionSafetyChecker(config).eval()
    with torch.no_grad():
        checker.concept_embeds.normal_()
        checker.special_care_embeds.normal_()
    set_safety_threshold(checker, NEVER_FLAG)
    side = preset["vision"]["image_size"]
    extractor = _feature_extractor_class()(
        size={"shortest_edge": side}, crop_size={"height": side, "width": side}
    )
    return checker, extractor


def set_safety_threshold(checker: torch.nn.Module, threshold: float) -> None:
    """Set every concept threshold of a safety checker (cosine similarity above it flags the image).

    Real checkpoints carry learned thresholds; a random checker needs one chosen: ``NEVER_FLAG`` (1.0) for
    tiny and benchmark pipelines, and e.g. -1.0 in tests to see that flagged images are handled.
    """
    with torch.no_grad():
        checker.concept_embeds_weights.fill_(threshold)
        checker.special_care_embeds_weights.fill_(threshold)


def build_pipeline(
    preset: str = "tiny", seed: int = 0, safety_checker: bool = True, device: str | torch.device = "cpu"
) -> Any:
    """A ``StableDiffusionControlNetInpaintPipeline`` with random weights from a preset's configs (fp32)."""
    from diffusers import (
        AutoencoderKL,
        ControlNetModel,
        EulerAncestralDiscreteScheduler,
        StableDiffusionControlNetInpaintPipeline,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel

    if preset not in PRESETS:
        raise UserError(f"unknown pipeline preset '{preset}'; choose one of: {', '.join(PRESETS)}")
    p = PRESETS[preset]
    tokenizer = build_tokenizer()
    text_kwargs = {"vocab_size": len(tokenizer), **p["text"]}
    text_kwargs.update(
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        max_position_embeddings=77,
    )
    with torch.random.fork_rng(devices=[]), torch.device(device):
        torch.manual_seed(seed)
        unet = UNet2DConditionModel(**p["unet"])
        controlnet = ControlNetModel.from_unet(unet)
        vae = AutoencoderKL(
            down_block_types=("DownEncoderBlock2D",) * len(p["vae"]["block_out_channels"]),
            up_block_types=("UpDecoderBlock2D",) * len(p["vae"]["block_out_channels"]),
            latent_channels=4,
            **p["vae"],
        )
        text_encoder = CLIPTextModel(CLIPTextConfig(**text_kwargs))
        checker, extractor = build_safety_checker(p) if safety_checker else (None, None)
    pipe = StableDiffusionControlNetInpaintPipeline(
        vae=vae,
        text_encoder=text_encoder.eval(),
        tokenizer=tokenizer,
        unet=unet,
        controlnet=controlnet,
        scheduler=EulerAncestralDiscreteScheduler(**SD_SCHEDULER),
        safety_checker=checker,
        feature_extractor=extractor,
        requires_safety_checker=safety_checker,
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


def save_pipeline(pipe: Any, out: str | Path) -> Path:
    """Save a pipeline as a diffusers directory (ControlNet in ``controlnet/``), loadable offline."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    pipe.save_pretrained(out, safe_serialization=True)
    return out


def resolve_model_path(uri: str, key: str) -> Path:
    """A local directory from a path or ``file://`` URI; remote URIs are mounted by the platform, not us."""
    if not uri:
        raise UserError(
            f"{key} is empty; set it to a diffusers model directory (--set {key}=DIR), "
            "e.g. one written by `caig render build-tiny --out DIR`"
        )
    scheme, sep, rest = uri.partition("://")
    if sep and scheme != "file":
        raise UserError(
            f"{key}={uri}: caig loads models from local directories only; let KServe's storage "
            "initializer or a volume mount put the model on disk and pass that path"
        )
    path = Path(rest if sep else uri).expanduser()
    if not (path / "model_index.json").is_file() and not (path / "config.json").is_file():
        raise UserError(
            f"{key}={uri}: no diffusers model there (no model_index.json or config.json); "
            "pass a directory saved with save_pretrained, e.g. by `caig render build-tiny`"
        )
    return path


def load_pipeline(config: Any) -> Any:
    """Load the inpainting pipeline a ``RenderConfig`` names, from local files only, in float32.

    ``base_model`` is a diffusers directory of an SD1.5 checkpoint (e.g. majicMIX realistic converted with
    diffusers' conversion script); ``controlnet_model`` a ControlNet directory, or empty to use the base
    directory's ``controlnet/`` (as ``caig render build-tiny`` writes it).
    """
    base = resolve_model_path(config.base_model, "render.base_model")  # fail fast, before heavy imports
    controlnet = (
        resolve_model_path(config.controlnet_model, "render.controlnet_model")
        if config.controlnet_model
        else None
    )

    import diffusers
    import transformers
    from diffusers import ControlNetModel, StableDiffusionControlNetInpaintPipeline

    kwargs: dict[str, Any] = {}
    if controlnet is not None:
        kwargs["controlnet"] = ControlNetModel.from_pretrained(controlnet, local_files_only=True)
    elif not (base / "controlnet").is_dir():
        raise UserError(
            f"render.base_model={config.base_model} has no controlnet/ and render.controlnet_model "
            "is empty; set render.controlnet_model to a canny ControlNet directory"
        )
    if not config.safety_checker:
        kwargs.update(safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    elif not (base / "safety_checker").is_dir():
        raise UserError(
            f"render.safety_checker is on but {base} has no safety_checker/; add the SD safety "
            "checker to the model directory (or set render.safety_checker=false for debugging only)"
        )
    log.info("loading diffusers pipeline from %s", base)
    diffusers.utils.logging.disable_progress_bar()
    transformers.utils.logging.disable_progress_bar()
    return StableDiffusionControlNetInpaintPipeline.from_pretrained(base, local_files_only=True, **kwargs)


def build_tiny(out: str | Path, seed: int = 0) -> dict[str, Any]:
    """Build the ``tiny`` pipeline (random weights, with a never-flagging safety checker) and save it to
    ``out`` for tests and the demo; returns a summary with parameter counts."""
    pipe = build_pipeline("tiny", seed=seed)
    save_pipeline(pipe, out)
    params = {
        name: sum(p.numel() for p in module.parameters())
        for name, module in pipe.components.items()
        if isinstance(module, torch.nn.Module)
    }
    return {
        "out": str(out),
        "preset": "tiny",
        "seed": seed,
        "parameters": params,
        "use": f"--set render.backend=diffusers --set render.base_model={out}",
    }
