"""Config of the render stage: which background generator, its models and its sampling settings.

Defaults follow the authors' code (REFERENCE.md "Background generation"): SD1.5 + ControlNet v1.1 canny
inpainting, Euler ancestral, 30 steps, guidance 7.5, conditioning scale 1.0, 512x512, product at 0.78 of the
canvas, centred, inpaint mask dilated 20 px, canny thresholds 100/200, safety checker on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Backend = Literal["procedural", "diffusers"]
SchedulerName = Literal["euler_a", "euler", "ddim", "dpmpp_2m", "unipc", "pndm"]
DType = Literal["auto", "float32", "float16", "bfloat16"]

DEFAULT_NEGATIVE_PROMPT = (
    "lowres, worst quality, low quality, blurry, jpeg artifacts, watermark, text, logo, signature, "
    "deformed, duplicate product, nsfw"
)


@dataclass
class RenderConfig:
    """How ads are rendered; the same object reaches PCPO, evaluation, serving and ``caig render``."""

    backend: Backend = "procedural"  # procedural (CPU, the world's renderer) or diffusers (SD + ControlNet)
    base_model: str = ""  # diffusers pipeline directory or file:// URI of the SD1.5 base (diffusers backend)
    controlnet_model: str = ""  # canny ControlNet directory/URI; empty: the base directory's controlnet/
    scheduler: SchedulerName = "euler_a"  # sampler; the authors' code uses Euler ancestral
    steps: int = 30  # denoising steps
    guidance_scale: float = 7.5  # classifier-free guidance; <= 1 turns it off (half the compute)
    conditioning_scale: float = 1.0  # ControlNet residual weight
    negative_prompt: str = DEFAULT_NEGATIVE_PROMPT  # what the background must not show
    image_size: int = 512  # side of the rendered ad, pixels (multiple of 8)
    product_scale: float = 0.78  # longer side of the product as a share of the canvas (paper: 0.78)
    centre: list[float] = field(default_factory=lambda: [0.5, 0.5])  # product centre, fractions (x, y)
    mask_dilation: int = 20  # side of the square the inpaint mask (255 - alpha) is dilated with, pixels
    canny_low: int = 100  # canny hysteresis thresholds on the L1 Sobel gradient (as OpenCV)
    canny_high: int = 200  # upper hysteresis threshold (above canny_low)
    device: str = "auto"  # auto (cuda if present, else cpu), cpu, cuda, cuda:N
    dtype: DType = "auto"  # auto: float16 on cuda, float32 on cpu
    batch_size: int = 8  # images per pipeline call in render_batch
    channels_last: bool = True  # channels-last memory format for UNet, ControlNet and VAE (faster on GPU)
    compile: bool = False  # torch.compile the UNet and ControlNet (pays only for long-running servers)
    safety_checker: bool = True  # run the SD safety checker (paper A.6); off only for debugging
    seed: int = 0  # default seed when a caller gives none

    def __post_init__(self) -> None:
        if self.steps < 1:
            raise ValueError("steps must be at least 1")
        if self.guidance_scale < 0 or self.conditioning_scale < 0:
            raise ValueError("guidance_scale and conditioning_scale must be >= 0")
        if self.image_size < 32 or self.image_size % 8:
            raise ValueError(f"image_size must be a multiple of 8 and at least 32, got {self.image_size}")
        if not 0.05 <= self.product_scale <= 1.0:
            raise ValueError(f"product_scale must be between 0.05 and 1.0, got {self.product_scale}")
        if len(self.centre) != 2 or not all(0.0 <= c <= 1.0 for c in self.centre):
            raise ValueError(f"centre must be two fractions [x, y] between 0 and 1, got {self.centre}")
        if self.mask_dilation < 0:
            raise ValueError("mask_dilation must be >= 0 pixels")
        if not 0 <= self.canny_low < self.canny_high:
            raise ValueError("canny thresholds must satisfy 0 <= canny_low < canny_high")
        if self.batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        if self.device != "auto" and self.device.split(":")[0] not in ("cpu", "cuda", "mps"):
            raise ValueError(f"device must be auto, cpu, cuda, cuda:N or mps, got '{self.device}'")
