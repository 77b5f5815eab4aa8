"""GPU smoke of the llava-v1.6-7b preset's pre-training code path: one LoRA step in bf16 with gradient
checkpointing on a LLaVA-NeXT of the 7B shape (Vicuna-7B text, CLIP ViT-L/14-336 vision, the v1.6 grid
pinpoints), with random weights (nothing is downloaded). Records tokens/s and peak GPU memory.

Same code as ``caig pretrain``: ``caig.mllm.build.make_processor`` + ``LlavaNextForConditionalGeneration``,
``caig.mllm.pretrain.lora_wrap`` (LoRA r128/alpha256 on q/k/v/o/gate/up/down of the language model only),
``TaskDataset`` -> ``encode_example`` (chat template, loss on answer tokens) -> ``Collator`` and
``caig.mllm.pretrain.train`` (the HF Trainer with the pretrain config).

    PYTHONPATH=src python3 benchmarks/mllm_gpu.py --out benchmarks/results            # GPU
    PYTHONPATH=src python3 benchmarks/mllm_gpu.py --out /tmp/mllm-smoke --cpu-smoke   # same path, tiny shapes
"""

from __future__ import annotations

import argparse
import contextlib
import json
import platform
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import torch
from PIL import Image, ImageDraw
from provenance import provenance
from transformers import (
    CLIPVisionConfig,
    LlamaConfig,
    LlavaNextConfig,
    LlavaNextForConditionalGeneration,
    TrainerCallback,
)

from caig.mllm.build import make_processor
from caig.mllm.config import PretrainConfig
from caig.mllm.dataset import TaskDataset
from caig.mllm.instruct import pm_prompt
from caig.mllm.pretrain import lora_wrap, train
from caig.mllm.tokenizer import static_corpus, train_tokenizer

# (text, vision, image side, patch, pinpoints) of LLaVA-v1.6-vicuna-7b, and a tiny stand-in for --cpu-smoke.
SHAPES = {
    "7b": dict(
        text=dict(
            hidden_size=4096,
            intermediate_size=11008,
            num_hidden_layers=32,
            num_attention_heads=32,
            num_key_value_heads=32,
            max_position_embeddings=4096,
            vocab_size=32064,
        ),
        vision=dict(
            hidden_size=1024,
            intermediate_size=4096,
            num_hidden_layers=24,
            num_attention_heads=16,
            image_size=336,
            patch_size=14,
            projection_dim=768,
        ),
        image=336,
        patch=14,
        pinpoints=[[336, 672], [672, 336], [672, 672], [1008, 336], [336, 1008]],
        vision_feature_layer=-2,
    ),
    "cpu-smoke": dict(
        text=dict(
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=4,
            max_position_embeddings=2048,
            vocab_size=1024,
        ),
        vision=dict(
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=2,
            image_size=28,
            patch_size=14,
            projection_dim=64,
        ),
        image=28,
        patch=14,
        pinpoints=[[28, 56], [56, 28], [56, 56]],
        vision_feature_layer=-2,
    ),
}


class StepTimer(TrainerCallback):
    """Wall time of every optimizer step (CUDA-synchronised)."""

    def __init__(self) -> None:
        self.times: list[float] = []
        self._start = 0.0

    def on_step_begin(self, args, state, control, **kwargs):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        self._start = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        self.times.append(time.perf_counter() - self._start)


@contextlib.contextmanager
def created_in(dtype: torch.dtype, device: str) -> Iterator[None]:
    """Modules built inside get their parameters in ``dtype`` on ``device`` directly (no float32 copy on the
    host first); the default dtype is restored after."""
    default = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            yield
    finally:
        torch.set_default_dtype(default)


def build_model(shape: dict, processor, dtype: torch.dtype, device: str):
    """A random-init LLaVA-NeXT of the given shape, created directly in ``dtype`` on ``device``."""
    tok = processor.tokenizer
    text = LlamaConfig(
        **shape["text"],
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
    )
    vision = CLIPVisionConfig(**shape["vision"])
    config = LlavaNextConfig(
        vision_config=vision,
        text_config=text,
        image_token_index=tok.image_token_id,
        image_grid_pinpoints=shape["pinpoints"],
        vision_feature_select_strategy="default",
        vision_feature_layer=shape["vision_feature_layer"],
    )
    with created_in(dtype, device):
        return LlavaNextForConditionalGeneration(config)


def write_examples(root: Path, n: int, side: int) -> pd.DataFrame:
    """``n`` prompt-generation examples (a PM template + f_instruct -> a background) with drawn product images."""
    rows = []
    for i in range(n):
        image = Image.new("RGB", (side, side), (240, 240, 236))
        ImageDraw.Draw(image).ellipse(
            [side // 4, side // 4, 3 * side // 4, 3 * side // 4], fill=(200, 30, 40)
        )
        path = f"p{i}.png"
        image.save(root / path)
        product = {
            "title": f"classic red coffee mug {i}",
            "category": "coffee mug",
            "tags": ["ceramic", "red"],
            "colour": "red",
            "price": 19.99,
        }
        rows.append(
            {
                "task": "prompt_generation",
                "group": "prompt_generation",
                "product_id": f"P{i:05d}",
                "image_path": path,
                "question": pm_prompt(product, index=i),
                "answer": "in a kitchen counter on white marble, with coffee beans, warm beige palette, "
                "soft daylight, tabletop shot, minimalist style",
            }
        )
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="directory for mllm_gpu.json")
    parser.add_argument("--cpu-smoke", action="store_true", help="tiny shapes on CPU, same code path")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--steps", type=int, default=3, help="optimizer steps; the first is warm-up")
    args = parser.parse_args()
    shape = SHAPES["cpu-smoke" if args.cpu_smoke else "7b"]
    device = "cpu" if args.cpu_smoke else "cuda"
    if device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("no CUDA device; run with --cpu-smoke on a CPU machine")
    started = time.perf_counter()
    tokenizer = train_tokenizer(static_corpus(), shape["text"]["vocab_size"])
    processor = make_processor(tokenizer, shape["image"], shape["patch"], shape["pinpoints"])
    model = build_model(shape, processor, torch.bfloat16, device)
    n_params = sum(p.numel() for p in model.parameters())
    config = PretrainConfig(
        method="lora",
        lora_r=128,
        lora_alpha=256,
        learning_rate=2e-4,
        bf16=True,
        gradient_checkpointing=True,
        batch_size=args.batch_size,
        epochs=1.0,
        max_length=4096,
        save_steps=10_000,
        logging_steps=1,
        warmup_ratio=0.0,
    )
    model = lora_wrap(model, config)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    build_s = time.perf_counter() - started
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        examples = write_examples(root, args.batch_size * args.steps, shape["image"])
        dataset = TaskDataset(examples, root, processor, config.max_length)
        tokens_per_step = [
            sum(len(dataset[i]["input_ids"]) for i in range(s * args.batch_size, (s + 1) * args.batch_size))
            for s in range(args.steps)
        ]
        if device == "cuda":
            torch.cuda.reset_peak_memory_stats()
        timer = StepTimer()
        result = train(model, processor, dataset, config, root / "run", callbacks=[timer])
    timed = timer.times[1:] or timer.times
    timed_tokens = tokens_per_step[1:] if len(timer.times) > 1 else tokens_per_step
    report = {
        **provenance(),
        "benchmark": "mllm_gpu",
        "mode": "cpu-smoke" if args.cpu_smoke else "7b",
        "device": torch.cuda.get_device_name() if device == "cuda" else platform.processor() or "cpu",
        "torch": torch.__version__,
        "parameters": n_params,
        "trainable_lora_parameters": trainable,
        "lora": {"r": config.lora_r, "alpha": config.lora_alpha, "targets": config.lora_target_modules},
        "dtype": "bfloat16",
        "gradient_checkpointing": True,
        "batch_size": args.batch_size,
        "tokens_per_step": tokens_per_step,
        "step_seconds": timer.times,
        "tokens_per_second": sum(timed_tokens) / sum(timed),
        "samples_per_second": args.batch_size * len(timed) / sum(timed),
        "peak_memory_gb": torch.cuda.max_memory_allocated() / 2**30 if device == "cuda" else None,
        "losses": [h["loss"] for h in result["loss_curve"]],
        "build_seconds": build_s,
        "total_seconds": time.perf_counter() - started,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    name = "mllm_gpu_cpu_smoke.json" if args.cpu_smoke else "mllm_gpu.json"
    (args.out / name).write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
