"""The production renderer: SD1.5 + canny ControlNet inpainting around the untouched product (paper 3.1).

Same interface as :class:`caig.render.procedural.ProceduralRenderer`: ``render(product, description, seed)``
and ``render_batch(product, descriptions, seeds)`` return RGB PIL images. Per image: the description is
cleaned into a prompt, the product placed (scale, centre), the background painted where 255 - alpha
(dilated) is white with the canny edges of the product as control, the original product pasted back with the
undilated alpha (its opaque pixels are exactly the placed product's), the safety checker run, and the
AI-generated label attached. A batch is one pipeline call per ``batch_size`` images with one CPU generator
per image, so an image depends on its own seed only, not on its batch.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import torch
from PIL import Image

from caig.errors import UserError
from caig.render.config import RenderConfig
from caig.render.diffusers_inputs import InpaintInputs, make_inputs
from caig.render.label import label_image
from caig.render.placement import paste_back
from caig.render.prompt import check_batch, check_description

log = logging.getLogger(__name__)

SCHEDULERS = {
    "euler_a": "EulerAncestralDiscreteScheduler",
    "euler": "EulerDiscreteScheduler",
    "ddim": "DDIMScheduler",
    "dpmpp_2m": "DPMSolverMultistepScheduler",
    "unipc": "UniPCMultistepScheduler",
    "pndm": "PNDMScheduler",
}


def resolve_device(name: str) -> torch.device:
    """``auto`` is cuda when a GPU is visible, else cpu; an absent GPU asked for by name is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"render.device={name} but no CUDA GPU is visible; use --set render.device=cpu")
    return torch.device(name)


def resolve_dtype(name: str, device: torch.device) -> torch.dtype:
    """``auto`` is float16 on GPUs and float32 on CPUs (float16 kernels are missing or slow there)."""
    if name == "auto":
        return torch.float16 if device.type == "cuda" else torch.float32
    if name == "float16" and device.type == "cpu":
        raise UserError("render.dtype=float16 does not run on CPU; use float32 or bfloat16 there")
    return getattr(torch, name)


class DiffusersRenderer:
    """Renders ads with a loaded ``StableDiffusionControlNetInpaintPipeline`` set up from ``config``."""

    name = "diffusers"

    def __init__(self, pipeline: Any, config: RenderConfig, model: str = ""):
        self.config = config
        self.model = model or config.base_model
        self.device = resolve_device(config.device)
        self.dtype = resolve_dtype(config.dtype, self.device)
        self.pipe = _prepare(pipeline, config, self.device, self.dtype)
        self.n_flagged = 0  # images the safety checker blanked, over this renderer's life
        factor = self.pipe.vae_scale_factor * 2 ** (len(self.pipe.unet.config.block_out_channels) - 1)
        if config.image_size % factor:
            raise UserError(
                f"render.image_size={config.image_size} does not fit this model: it must be a "
                f"multiple of {factor} (VAE factor x UNet depth), e.g. {factor * (config.image_size // factor or 1)}"
            )

    @classmethod
    def from_config(cls, config: RenderConfig) -> DiffusersRenderer:
        """Load base model and ControlNet from the directories or ``file://`` URIs the config names."""
        from caig.render.diffusers_models import load_pipeline

        return cls(load_pipeline(config), config)

    def render(self, product: Image.Image, description: str, seed: int | None = None) -> Image.Image:
        """One ad of ``image_size`` pixels; the same seed gives the same image."""
        check_description(description)
        return self.render_batch(product, [description], [self.config.seed if seed is None else seed])[0]

    def render_batch(
        self, product: Image.Image, descriptions: list[str], seeds: list[int] | None = None
    ) -> list[Image.Image]:
        """Several backgrounds for one product, ``batch_size`` per pipeline call, one seed per image."""
        seeds = (
            list(range(self.config.seed, self.config.seed + len(descriptions))) if seeds is None else seeds
        )
        prompts, seeds = check_batch(descriptions, seeds)
        inputs = make_inputs(product, self.config)
        images: list[Image.Image] = []
        step = self.config.batch_size
        for start in range(0, len(prompts), step):
            images += self._generate(inputs, prompts[start : start + step], seeds[start : start + step])
        return images

    def _generate(self, inputs: InpaintInputs, prompts: list[str], seeds: list[int]) -> list[Image.Image]:
        c = self.config
        started = time.perf_counter()
        n = len(prompts)
        with torch.inference_mode():
            # One init/mask/control per prompt: the pipeline then VAE-encodes each with its own generator,
            # so an image's random draws do not depend on its neighbours in the batch.
            out = self.pipe(
                prompt=prompts,
                negative_prompt=[c.negative_prompt] * n,
                image=[inputs.init] * n,
                mask_image=[inputs.mask] * n,
                control_image=[inputs.control] * n,
                height=c.image_size,
                width=c.image_size,
                num_inference_steps=c.steps,
                guidance_scale=c.guidance_scale,
                controlnet_conditioning_scale=c.conditioning_scale,
                generator=[torch.Generator("cpu").manual_seed(s) for s in seeds],
                output_type="pil",
            )
        seconds = (time.perf_counter() - started) / n
        flags = out.nsfw_content_detected or [None] * n
        return [
            self._finish(img, inputs, p, s, f, seconds)
            for img, p, s, f in zip(out.images, prompts, seeds, flags, strict=True)
        ]

    def _finish(
        self,
        generated: Image.Image,
        inputs: InpaintInputs,
        prompt: str,
        seed: int,
        flagged: bool | None,
        seconds: float,
    ) -> Image.Image:
        if flagged:
            self.n_flagged += 1
            log.warning("safety checker flagged the background for %r (seed %d); it is blanked", prompt, seed)
        ad = paste_back(generated, inputs.placement)
        safety = "off" if flagged is None else ("flagged" if flagged else "passed")
        facts = {
            "model": self.model,
            "controlnet": self.config.controlnet_model or "(base model's)",
            "seed": seed,
            "box": list(inputs.placement.box),
            "safety": safety,
            "steps": self.config.steps,
            "scheduler": self.config.scheduler,
            "seconds": round(seconds, 4),
        }
        return label_image(ad, self.name, prompt, facts)


def _prepare(pipe: Any, config: RenderConfig, device: torch.device, dtype: torch.dtype) -> Any:
    """Scheduler, device, dtype, SDPA attention, channels-last and compile, as the config says."""
    import diffusers
    from diffusers.models.attention_processor import AttnProcessor2_0

    scheduler_cls = getattr(diffusers, SCHEDULERS[config.scheduler])
    pipe.scheduler = scheduler_cls.from_config(pipe.scheduler.config)
    level = diffusers.utils.logging.get_verbosity()
    diffusers.utils.logging.set_verbosity_error()  # "modules that should be kept in float32: []" x3
    try:
        pipe.to(device=device, dtype=dtype)
    finally:
        diffusers.utils.logging.set_verbosity(level)
    pipe.unet.set_attn_processor(AttnProcessor2_0())
    pipe.controlnet.set_attn_processor(AttnProcessor2_0())
    if config.channels_last:
        for module in (pipe.unet, pipe.controlnet, pipe.vae):
            module.to(memory_format=torch.channels_last)
    if config.compile:
        pipe.unet = torch.compile(pipe.unet)
        pipe.controlnet = torch.compile(pipe.controlnet)
    if not config.safety_checker and pipe.safety_checker is not None:
        pipe.safety_checker = None
        log.warning("render.safety_checker is off: generated backgrounds are not screened")
    elif config.safety_checker and pipe.safety_checker is None:
        raise UserError(
            "render.safety_checker is on but the model has no safety_checker/; add one to the "
            "model directory (or set render.safety_checker=false for debugging only)"
        )
    pipe.set_progress_bar_config(disable=True)
    return pipe
