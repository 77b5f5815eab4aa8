"""GPU latency of the PM and RM serving calls at LLaVA-v1.6-7B shapes (random weights, bf16), in process.

What ``caig serve pm|rm`` runs per V1 request, minus HTTP: ``payloads.instances`` on the body, then
``PromptService.describe`` (decode the base64 product PNG, the PM prompt, ``caig.mllm.generate``: 2
descriptions of exactly 40 new tokens, sampled at temperature 0.7) and ``RewardService.rank`` (decode two
base64 ads, one pair scored in both orders by ``RewardScorer.pair_matrix``, Bradley-Terry). The KServe door
(``caig.serving.generative_models``) only adds the V1/V2 conversion and a worker thread; kserve is not needed
here. The PM and the RM share one random-init LLaVA-NeXT of the 7B shape (Vicuna-7B + CLIP ViT-L/14-336,
the v1.6 anyres grid), built directly on the GPU (as ``benchmarks/mllm_gpu.py`` does).

Writes ``serving_gpu.json`` (p50/p90/p99/mean seconds per call, tokens, peak memory) to ``--out``.

    PYTHONPATH=src python3 benchmarks/serving_gpu.py --out benchmarks/results
    PYTHONPATH=src python3 benchmarks/serving_gpu.py --cpu-smoke --out /tmp/serving-gpu-smoke

Needs torch, transformers, peft, numpy, pandas, pyarrow and pillow (no kserve, diffusers, feast or kfp).
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import os
import platform
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from mllm_gpu import SHAPES, build_model  # noqa: E402
from PIL import Image, ImageDraw  # noqa: E402
from provenance import provenance  # noqa: E402

from caig.mllm.build import make_processor  # noqa: E402
from caig.mllm.tokenizer import static_corpus, train_tokenizer  # noqa: E402
from caig.reward.config import RewardConfig  # noqa: E402
from caig.reward.model import build_reward_model  # noqa: E402
from caig.reward.scoring import RewardScorer  # noqa: E402
from caig.serving import payloads  # noqa: E402
from caig.serving.config import ServingConfig  # noqa: E402
from caig.serving.pm_service import PromptService  # noqa: E402
from caig.serving.rm_service import RewardService  # noqa: E402

PRODUCT = {
    "title": "classic red sneakers",
    "category": "sneakers",
    "tags": ["sport", "red", "canvas"],
    "colour": "red",
    "price": 49.99,
}


def png_b64(image: Image.Image) -> str:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def product_png(side: int, seed: int) -> str:
    """A product cut-out: a coloured shape on a transparent canvas (RGBA), as base64 PNG."""
    rng = np.random.default_rng(seed)
    image = Image.new("RGBA", (side, side), (0, 0, 0, 0))
    colour = tuple(int(c) for c in rng.integers(0, 255, 3)) + (255,)
    ImageDraw.Draw(image).ellipse((side // 5, side // 4, 4 * side // 5, 3 * side // 4), fill=colour)
    return png_b64(image)


def ad_png(side: int, seed: int) -> str:
    """A rendered ad stand-in: random RGB noise (the RM's cost does not depend on the content)."""
    pixels = np.random.default_rng(seed).integers(0, 255, (side, side, 3), dtype=np.uint8)
    return png_b64(Image.fromarray(pixels))


def timed(call, n: int, warmup: int, device: str) -> list[float]:
    for _ in range(warmup):
        call()
    seconds = []
    for _ in range(n):
        if device == "cuda":
            torch.cuda.synchronize()
        started = time.perf_counter()
        call()
        if device == "cuda":
            torch.cuda.synchronize()
        seconds.append(time.perf_counter() - started)
    return seconds


def summary(seconds: list[float]) -> dict[str, float]:
    s = np.asarray(seconds)
    return {
        "calls": len(s),
        "p50_s": float(np.percentile(s, 50)),
        "p90_s": float(np.percentile(s, 90)),
        "p99_s": float(np.percentile(s, 99)),
        "mean_s": float(s.mean()),
        "min_s": float(s.min()),
        "max_s": float(s.max()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="directory for serving_gpu.json")
    parser.add_argument("--cpu-smoke", action="store_true", help="tiny shapes on CPU, same code path")
    parser.add_argument("--pm-calls", type=int, default=20, help="timed PM calls (after 2 warm-up calls)")
    parser.add_argument("--rm-calls", type=int, default=40, help="timed RM calls (after 2 warm-up calls)")
    parser.add_argument("--new-tokens", type=int, default=40, help="new tokens per description")
    parser.add_argument("--image-side", type=int, default=512, help="side of the product and ad images")
    args = parser.parse_args()
    smoke = args.cpu_smoke
    shape = SHAPES["cpu-smoke" if smoke else "7b"]
    device = "cpu" if smoke else "cuda"
    if device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("no CUDA device; run with --cpu-smoke on a CPU machine")
    pm_calls, rm_calls = (3, 3) if smoke else (args.pm_calls, args.rm_calls)
    new_tokens = 4 if smoke else args.new_tokens
    side = 64 if smoke else args.image_side
    dtype = torch.float32 if smoke else torch.bfloat16
    started = time.perf_counter()
    torch.manual_seed(0)

    tokenizer = train_tokenizer(static_corpus(), shape["text"]["vocab_size"])
    processor = make_processor(tokenizer, shape["image"], shape["patch"], shape["pinpoints"])
    llava = build_model(shape, processor, dtype, device).eval()
    # Random weights would stop at a sampled end-of-sequence: force exactly new_tokens per description.
    llava.generation_config.min_new_tokens = new_tokens
    config = ServingConfig(
        device=device, descriptions=2, temperature=0.7, max_new_tokens=new_tokens, max_image_side=4096
    )
    attributes = ["title", "category", "tags", "colour", "price"]
    pm = PromptService(llava, processor, config, attributes)
    rm_config = RewardConfig(method="full", gradient_checkpointing=False, max_length=8192, eval_batch_size=2)
    reward = build_reward_model(llava, processor, rm_config).to(dtype).eval()
    rm = RewardService(RewardScorer(reward, processor, rm_config), config)
    build_s = time.perf_counter() - started
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()

    pm_bodies = iter(
        {"instances": [{"product": PRODUCT, "image": product_png(side, i), "n": 2, "seed": i}]}
        for i in range(10_000)
    )
    lengths: list[int] = []

    def pm_call() -> None:
        answer = pm.describe(payloads.instances(next(pm_bodies), config))
        lengths.extend(
            len(tokenizer(d, add_special_tokens=False).input_ids) for d in answer[0]["descriptions"]
        )

    rm_body = {"instances": [{"product": PRODUCT, "images": [ad_png(side, 1), ad_png(side, 2)]}]}
    pairs: list[float] = []

    def rm_call() -> None:
        pairs.append(rm.rank(payloads.instances(rm_body, config))[0]["p_first_better"])

    pm_seconds = timed(pm_call, pm_calls, 2, device)
    rm_seconds = timed(rm_call, rm_calls, 2, device)
    report = {
        **provenance(),
        "benchmark": "serving_gpu",
        "mode": "cpu-smoke" if smoke else "7b",
        "device": torch.cuda.get_device_name() if device == "cuda" else platform.processor() or "cpu",
        "torch": torch.__version__,
        "dtype": str(dtype).removeprefix("torch."),
        "parameters": sum(p.numel() for p in llava.parameters()),
        "pm": {
            "call": "PromptService.describe: 1 product (base64 PNG), n=2 descriptions, temperature 0.7",
            "new_tokens_per_description": new_tokens,
            "image_side": side,
            "decoded_tokens_mean": float(np.mean(lengths)) if lengths else None,
            **summary(pm_seconds),
            "seconds": pm_seconds,
        },
        "rm": {
            "call": "RewardService.rank: 1 pair (two base64 PNG ads), both orders in one batch of 2",
            "image_side": side,
            "p_first_better": pairs[-1],
            **summary(rm_seconds),
            "seconds": rm_seconds,
        },
        "peak_memory_gb": torch.cuda.max_memory_allocated() / 2**30 if device == "cuda" else None,
        "build_seconds": build_s,
        "total_seconds": time.perf_counter() - started,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    name = "serving_gpu_cpu_smoke.json" if smoke else "serving_gpu.json"
    (args.out / name).write_text(json.dumps(report, indent=2))
    print(json.dumps({k: v for k, v in report.items() if k not in ("pm", "rm")}, indent=2))
    for key in ("pm", "rm"):
        print(key, json.dumps({k: v for k, v in report[key].items() if k != "seconds"}))


if __name__ == "__main__":
    main()
