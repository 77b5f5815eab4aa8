"""GPU benchmark of the diffusers renderer: SD1.5 + ControlNet (canny) inpainting at 512x512, 30 steps.

The real SD1.5 / ControlNet v1.1 / CLIP ViT-L architecture shapes with random weights, built from configs
(no download). In one job it times:

- naive: the plain diffusers ``StableDiffusionControlNetInpaintPipeline`` as shipped (diffusers' default
  attention), float32, one image per call;
- optimised: ``caig.render.diffusers_backend.DiffusersRenderer`` (the production path) in float16 (or
  bfloat16), SDPA attention, channels-last, batch 1 and batch 8 (torch.compile only with ``--compile``);

and writes images/s for each plus ``speedup`` = optimised batch-8 images/s over naive images/s to
``--out``/render_gpu.json. A warm-up call precedes each timed series. Same weights, same inputs, same
safety checker for both. ``--cpu-smoke`` runs the same code with the tiny preset on CPU.

    PYTHONPATH=src python3 benchmarks/render_gpu.py --out benchmarks/results
    PYTHONPATH=src python3 benchmarks/render_gpu.py --cpu-smoke --out /tmp/render-smoke

Needs torch, diffusers, transformers, numpy and pillow only (plus ``caig.render``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402
from provenance import provenance  # noqa: E402

from caig.render.config import RenderConfig  # noqa: E402
from caig.render.diffusers_backend import DiffusersRenderer  # noqa: E402
from caig.render.diffusers_inputs import make_inputs  # noqa: E402
from caig.render.diffusers_models import build_pipeline  # noqa: E402

PROMPTS = [
    "on white marble, soft daylight, minimalist style",
    "in a city street, neon glow, moody shadows",
    "in a pine forest, golden hour, tabletop shot",
    "on oak wood, warm pastel palette, studio softbox",
    "in a sandy beach, dazzling lens flare",
    "in a photo studio, cinematic style",
    "in a flower garden, with sparkling glitter",
    "on raw concrete, candlelight, luxurious style",
]


def make_product(size: int) -> Image.Image:
    """A synthetic RGBA cut-out: a shaded bottle-like ellipse with a label band on transparency."""
    yy, xx = np.mgrid[0:size, 0:size] / size
    inside = ((xx - 0.5) / 0.22) ** 2 + ((yy - 0.5) / 0.4) ** 2 <= 1
    rgba = np.zeros((size, size, 4), np.uint8)
    rgba[..., 0] = (180 + 60 * xx).astype(np.uint8)
    rgba[..., 1] = (40 + 120 * yy).astype(np.uint8)
    rgba[..., 2] = 90
    rgba[(yy > 0.45) & (yy < 0.55), :3] = 245
    rgba[..., 3] = np.where(inside, 255, 0)
    return Image.fromarray(rgba, mode="RGBA")


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def time_naive(pipe, config: RenderConfig, product: Image.Image, repeats: int, device: torch.device) -> dict:
    """The plain pipeline, fp32, one image per call (the way its docs show it), same inputs as ours."""
    inputs = make_inputs(product, config)

    def call(prompt: str, seed: int, steps: int):
        return pipe(
            prompt=prompt,
            negative_prompt=config.negative_prompt,
            image=inputs.init,
            mask_image=inputs.mask,
            control_image=inputs.control,
            height=config.image_size,
            width=config.image_size,
            num_inference_steps=steps,
            guidance_scale=config.guidance_scale,
            controlnet_conditioning_scale=config.conditioning_scale,
            generator=torch.Generator("cpu").manual_seed(seed),
        ).images[0]

    call(PROMPTS[0], 0, min(3, config.steps))  # warm-up: kernels, allocator, cudnn autotune
    sync(device)
    started = time.perf_counter()
    for i in range(repeats):
        call(PROMPTS[i % len(PROMPTS)], i, config.steps)
    sync(device)
    seconds = time.perf_counter() - started
    return {"images": repeats, "seconds": round(seconds, 3), "images_per_s": round(repeats / seconds, 4)}


def time_renderer(
    renderer: DiffusersRenderer, product: Image.Image, batch: int, repeats: int, device: torch.device
) -> dict:
    """caig's renderer: ``repeats`` calls of ``render_batch`` with ``batch`` descriptions each."""
    prompts = [PROMPTS[i % len(PROMPTS)] for i in range(batch)]
    full = renderer.config
    renderer.config = dataclasses.replace(full, steps=min(3, full.steps))
    renderer.render_batch(product, prompts, list(range(batch)))  # warm-up at this batch size
    renderer.config = full
    sync(device)
    started = time.perf_counter()
    for r in range(repeats):
        images = renderer.render_batch(product, prompts, [r * batch + i for i in range(batch)])
    sync(device)
    seconds = time.perf_counter() - started
    n = batch * repeats
    return {
        "batch": batch,
        "images": n,
        "seconds": round(seconds, 3),
        "images_per_s": round(n / seconds, 4),
        "last_images": images,
    }


def product_kept(image: Image.Image, renderer: DiffusersRenderer, product: Image.Image) -> bool:
    """Sanity check of the optimised output: the product's opaque pixels came through exactly."""
    layer = np.asarray(make_inputs(product, renderer.config).placement.layer)
    opaque = layer[..., 3] == 255
    return bool(np.array_equal(np.asarray(image)[opaque], layer[..., :3][opaque]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="directory for render_gpu.json")
    parser.add_argument("--cpu-smoke", action="store_true", help="tiny preset on CPU, same code path")
    parser.add_argument("--dtype", default="float16", choices=["float16", "bfloat16"], help="optimised dtype")
    parser.add_argument(
        "--compile", action="store_true", help="torch.compile UNet and ControlNet (slow start)"
    )
    parser.add_argument("--naive-repeats", type=int, default=2)
    parser.add_argument("--batch1-repeats", type=int, default=3)
    parser.add_argument("--batch8-repeats", type=int, default=2)
    args = parser.parse_args()

    smoke = args.cpu_smoke
    device = torch.device("cpu" if smoke else "cuda")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("no CUDA GPU visible; use --cpu-smoke to check the script on CPU")
    preset, size, steps = ("tiny", 64, 2) if smoke else ("sd15", 512, 30)
    dtype = "bfloat16" if smoke else args.dtype
    base = RenderConfig(backend="diffusers", image_size=size, steps=steps, device=device.type)

    started = time.perf_counter()
    pipe = build_pipeline(preset, seed=0, device=device)
    build_s = time.perf_counter() - started
    params = {
        k: sum(p.numel() for p in m.parameters())
        for k, m in pipe.components.items()
        if isinstance(m, torch.nn.Module)
    }
    product = make_product(size)

    naive_cfg = dataclasses.replace(base, dtype="float32", batch_size=1, channels_last=False)
    naive = time_naive(pipe, naive_cfg, product, args.naive_repeats, device)
    print("naive", naive, flush=True)

    # The same weights, converted in place for the optimised path (the naive run is done).
    opt_cfg = dataclasses.replace(base, dtype=dtype, batch_size=8, channels_last=True, compile=args.compile)
    renderer = DiffusersRenderer(pipe, opt_cfg, model=f"{preset} (random weights)")
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    b1 = time_renderer(renderer, product, 1, args.batch1_repeats, device)
    print("optimised batch 1", {k: v for k, v in b1.items() if k != "last_images"}, flush=True)
    b8 = time_renderer(renderer, product, 8, args.batch8_repeats, device)
    print("optimised batch 8", {k: v for k, v in b8.items() if k != "last_images"}, flush=True)
    kept = all(product_kept(img, renderer, product) for img in b8.pop("last_images") + b1.pop("last_images"))

    result = {
        **provenance(),
        "benchmark": "render_gpu",
        "smoke": smoke,
        "device": torch.cuda.get_device_name(0) if device.type == "cuda" else platform.processor() or "cpu",
        "torch": torch.__version__,
        "diffusers": __import__("diffusers").__version__,
        "preset": preset,
        "parameters": params,
        "image_size": size,
        "steps": steps,
        "scheduler": base.scheduler,
        "guidance_scale": base.guidance_scale,
        "build_s": round(build_s, 2),
        "naive": {
            **naive,
            "dtype": "float32",
            "batch": 1,
            "how": "plain diffusers pipeline, one image per call",
        },
        "optimised": {
            "dtype": dtype,
            "sdpa": True,
            "channels_last": True,
            "compile": args.compile,
            "batch1": b1,
            "batch8": b8,
            "peak_memory_gb": round(torch.cuda.max_memory_allocated() / 2**30, 2)
            if device.type == "cuda"
            else None,
        },
        "speedup": round(b8["images_per_s"] / naive["images_per_s"], 3),
        "speedup_batch1": round(b1["images_per_s"] / naive["images_per_s"], 3),
        "product_pixels_identical": kept,
        "safety_flagged": renderer.n_flagged,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / ("render_gpu_smoke.json" if smoke else "render_gpu.json")
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
