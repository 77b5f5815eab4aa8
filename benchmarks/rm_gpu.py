"""GPU benchmark of one RM training step at the paper's shape: LLaVA-v1.6-7B (Vicuna-7B + CLIP ViT-L/14-336).

Random weights built from configs (no download), bf16, LoRA r=128 / alpha=256 on the language model's
q/k/v/o/gate/up/down, gradient checkpointing, the RM exactly as ``caig.reward`` builds it
(``caig.reward.model.build_reward_model``: classification + CTR heads on the last real token) and its loss
(``caig.reward.loss.reward_loss``, CE + 0.5 MSE). Each sample is two 512x512 ads joined side by side
(1024x512): LLaVA-NeXT's anyres turns it into a base view plus two 336x336 tiles. Inputs are synthetic token
ids with the right number of image tokens (the tokenizer is not needed for timing).

Writes ``rm_gpu.json`` to ``--out``: samples/s per batch size, achieved TFLOP/s (model FLOPs: forward of
the vision tower, forward + input-gradient backward of the LM, no recompute counted; and hardware FLOPs
with the checkpointing recompute), the model FLOPs' share of the GPU's dense bf16 peak (the goal: 45%), and
peak memory.

Selective checkpointing (``--checkpointed-layers 32,24,16``): how many of the LM's 32 decoder layers keep
gradient checkpointing, the others store their activations (less recompute, more memory). The default,
every layer, is what ``caig.reward`` trains with (``reward.gradient_checkpointing``); the others are a
measurement, not yet a setting.

    PYTHONPATH=src python3 benchmarks/rm_gpu.py --out benchmarks/results
    PYTHONPATH=src python3 benchmarks/rm_gpu.py --out DIR --checkpointed-layers 32,24,16,0  # GPU, a sweep
    PYTHONPATH=src python3 benchmarks/rm_gpu.py --cpu-smoke --out /tmp/rm-gpu-smoke

Needs torch, transformers, peft, numpy and pillow only (plus ``caig.reward``'s model, inputs, loss, config).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402
from mllm_gpu import SHAPES, created_in  # noqa: E402
from provenance import peak_bf16_tflops, provenance  # noqa: E402
from transformers import CLIPVisionConfig, LlamaConfig, LlavaNextConfig, LlavaNextForConditionalGeneration  # noqa: E402

from caig.reward.config import RewardConfig  # noqa: E402
from caig.reward.loss import reward_loss  # noqa: E402
from caig.reward.model import build_reward_model  # noqa: E402

IMAGE_TOKEN = 32000  # LLaVA-v1.6-vicuna's <image> id (vocab 32064)


def llava_config(smoke: bool) -> LlavaNextConfig:
    """LLaVA-v1.6-Vicuna-7B's shapes (or tiny ones for the CPU smoke run), from ``mllm_gpu.SHAPES``.

    The vocabulary is always 32064 so that the <image> id 32000 exists in the smoke model too.
    """
    shape = SHAPES["cpu-smoke" if smoke else "7b"]
    return LlavaNextConfig(
        vision_config=CLIPVisionConfig(**shape["vision"]),
        text_config=LlamaConfig(**{**shape["text"], "vocab_size": 32064, "max_position_embeddings": 4096}),
        image_token_index=IMAGE_TOKEN,
        image_grid_pinpoints=shape["pinpoints"],
        vision_feature_select_strategy="default",
        vision_feature_layer=shape["vision_feature_layer"],
    )


def build(smoke: bool, device: str, dtype: torch.dtype):
    """The RM (LoRA + checkpointing) on ``device`` in ``dtype``; heads in float32 as in training."""
    config = llava_config(smoke)
    with created_in(dtype, device):
        llava = LlavaNextForConditionalGeneration(config)
    rm_config = RewardConfig(
        method="lora",
        lora_r=8 if smoke else 128,
        lora_alpha=16 if smoke else 256,
        lora_dropout=0.05,
        gradient_checkpointing=True,
        bf16=dtype == torch.bfloat16,
    )
    model = build_reward_model(llava, None, rm_config)
    model.train()
    return model, config, rm_config


def make_batch(model, config: LlavaNextConfig, batch: int, text_tokens: int, device: str, dtype: torch.dtype):
    """Synthetic side-by-side inputs: pixel patches of a 2:1 image, its image-token count, prompt tokens."""
    side = config.vision_config.image_size
    height, width = 512, 1024  # two 512x512 ads joined left | right
    n_patches = 3  # base view + 2 tiles for a 2:1 image with the pinpoints above
    pixel_values = torch.randn(batch, n_patches, 3, side, side, device=device, dtype=dtype)
    image_sizes = torch.tensor([[height, width]] * batch, device=device)
    n_image = count_image_tokens(model, pixel_values[:1], image_sizes[:1])
    ids = torch.randint(3, 31000, (batch, 1 + n_image + text_tokens), device=device)
    ids[:, 0] = 1
    ids[:, 1 : 1 + n_image] = IMAGE_TOKEN
    mask = torch.ones_like(ids)
    mask[1:, -5:] = 0  # some right padding: the heads must read the last real token
    labels = torch.randint(0, 2, (batch,), device=device)
    ctr = torch.rand(batch, 2, device=device) * 0.1
    return {
        "input_ids": ids,
        "attention_mask": mask,
        "pixel_values": pixel_values,
        "image_sizes": image_sizes,
        "labels": labels,
        "ctr": ctr,
    }, n_image


def count_image_tokens(model, pixel_values: torch.Tensor, image_sizes: torch.Tensor) -> int:
    """Image features LLaVA-NeXT makes of one image (base view + unpadded tiles + row newlines)."""
    with torch.no_grad():
        try:
            feats = model.llava.model.get_image_features(pixel_values, image_sizes, return_dict=True)
            feats = feats.pooler_output
        except (TypeError, AttributeError):  # older transformers return the list directly
            feats = model.llava.model.get_image_features(pixel_values, image_sizes)
    return int(feats[0].shape[0])


def checkpoint_layers(model, count: int | None) -> int:
    """Keep gradient checkpointing on the first ``count`` decoder layers of the LM (None: all), off on the
    rest; returns how many are checkpointed."""
    layers = model.llava.model.language_model.layers
    count = len(layers) if count is None else min(count, len(layers))
    for i, layer in enumerate(layers):
        layer.gradient_checkpointing = i < count
    return count


def flops_per_step(
    config: LlavaNextConfig, batch: int, n_image: int, text_tokens: int, checkpointed: int | None = None
) -> dict[str, float]:
    """Model FLOPs of one LoRA step: vision forward, LM forward + input-gradient backward (2x forward);
    hardware FLOPs add the recompute of the ``checkpointed`` layers (default all)."""
    t, v = config.text_config, config.vision_config
    seq = 1 + n_image + text_tokens
    lm_params = t.num_hidden_layers * (4 * t.hidden_size**2 + 3 * t.hidden_size * t.intermediate_size)
    lm_attn = t.num_hidden_layers * 4 * seq * t.hidden_size  # per token: QK^T and AV (full square counted)
    lm_fwd = batch * seq * (2 * lm_params + lm_attn)
    vis_tokens = (v.image_size // v.patch_size) ** 2 + 1
    vis_params = v.num_hidden_layers * (4 * v.hidden_size**2 + 2 * v.hidden_size * v.intermediate_size)
    vis_fwd = batch * 3 * vis_tokens * (2 * vis_params + v.num_hidden_layers * 4 * vis_tokens * v.hidden_size)
    model = vis_fwd + 3 * lm_fwd  # forward + backward through activations (LoRA: no frozen weight grads)
    share = 1.0 if checkpointed is None else checkpointed / t.num_hidden_layers
    return {
        "model_flops": float(model),
        "hardware_flops": float(model + share * lm_fwd),
        "sequence_tokens": seq,
    }


def time_steps(model, rm_config, batch, steps: int, device: str) -> float:
    """Seconds per optimizer step (mean over ``steps`` after one warm-up step)."""
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=2e-5)
    inputs = {k: v for k, v in batch.items() if k not in ("labels", "ctr")}

    def step() -> None:
        with torch.autocast(device_type=device, dtype=torch.bfloat16, enabled=device == "cuda"):
            out = model(**inputs)
        loss = reward_loss(out["logits"], out["ctr"], batch["labels"], batch["ctr"], 1.0, 0.5)["loss"]
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    step()
    if device == "cuda":
        torch.cuda.synchronize()
    started = time.perf_counter()
    for _ in range(steps):
        step()
    if device == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - started) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--cpu-smoke", action="store_true", help="tiny shapes on CPU, same code path")
    parser.add_argument("--batches", default="4,8", help="batch sizes to time")
    parser.add_argument("--steps", type=int, default=5, help="timed steps per batch size")
    parser.add_argument("--text-tokens", type=int, default=96, help="prompt tokens besides the image")
    parser.add_argument(
        "--checkpointed-layers",
        default="all",
        help="comma list: how many LM layers keep gradient checkpointing ('all': every one, as caig trains)",
    )
    args = parser.parse_args()
    device = "cpu" if args.cpu_smoke else "cuda"
    dtype = torch.float32 if args.cpu_smoke else torch.bfloat16
    torch.manual_seed(0)
    model, config, rm_config = build(args.cpu_smoke, device, dtype)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    result = {
        **provenance(),
        "device": torch.cuda.get_device_name() if device == "cuda" else platform.processor() or "cpu",
        "torch": torch.__version__,
        "shape": "tiny (cpu smoke)" if args.cpu_smoke else "llava-v1.6-7b",
        "dtype": str(dtype),
        "lora_r": rm_config.lora_r,
        "gradient_checkpointing": True,
        "parameters": total,
        "trainable_parameters": trainable,
        "runs": [],
    }
    device_name = result["device"]
    peak = peak_bf16_tflops(device_name) if device == "cuda" else None
    result["peak_bf16_tflops"] = peak
    settings = [None if c == "all" else int(c) for c in args.checkpointed_layers.split(",")]
    for size in [int(b) for b in args.batches.split(",")]:
        for setting in settings:
            checkpointed = checkpoint_layers(model, setting)
            if device == "cuda":
                torch.cuda.empty_cache()
                torch.cuda.reset_peak_memory_stats()
            batch, n_image = make_batch(model, config, size, args.text_tokens, device, dtype)
            run = {"batch": size, "checkpointed_layers": checkpointed, "image_tokens": n_image}
            try:
                seconds = time_steps(model, rm_config, batch, args.steps, device)
            except torch.OutOfMemoryError:
                run["out_of_memory"] = True
                model.zero_grad(set_to_none=True)
                result["runs"].append(run)
                print(json.dumps(run), flush=True)
                del batch
                continue
            flops = flops_per_step(
                config, size, n_image, args.text_tokens, None if setting is None else checkpointed
            )
            model_tflops = flops["model_flops"] / seconds / 1e12
            run.update(
                {
                    "sequence_tokens": flops["sequence_tokens"],
                    "seconds_per_step": round(seconds, 4),
                    "samples_per_s": round(size / seconds, 3),
                    "model_tflops_per_s": round(model_tflops, 2),
                    "hardware_tflops_per_s": round(flops["hardware_flops"] / seconds / 1e12, 2),
                    "model_flops_utilization": round(model_tflops / peak, 3) if peak else None,
                }
            )
            if device == "cuda":
                run["peak_memory_gb"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
            result["runs"].append(run)
            print(json.dumps(run), flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "rm_gpu.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
