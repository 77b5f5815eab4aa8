"""The 7B RM's full fine-tuning step on ONE GPU under DeepSpeed ZeRO-3 with CPU offload (parameters and
optimizer states in host memory): samples/s, peak GPU memory and peak host memory.

The paper trains the RM with full fine-tuning on 8 GPUs; on one 80 GB card the model states alone
(weights, gradients, Adam: ~113 GiB for LLaVA-v1.6-7B) do not fit, and ``configs/deepspeed/zero3_offload.json``
keeps them in host memory. The model is built with random weights from configs under ``deepspeed.zero.Init``
(no whole copy ever materialises), the RM exactly as ``caig.reward.model.build_reward_model`` builds it with
``method: full``, its loss (``caig.reward.loss.reward_loss``), and the batch of ``rm_gpu.py`` (two 512x512
ads side by side, synthetic token ids with the right number of image tokens). DeepSpeed's own estimator
(``docs/distributed.md``) puts the host memory at ~177 GiB with its 1.5x buffer; a machine with less may
fail to allocate, which the result then records.

    PYTHONPATH=src python3 benchmarks/rm_zero3_offload_gpu.py --out benchmarks/results
    PYTHONPATH=src python3 benchmarks/rm_zero3_offload_gpu.py --cpu-smoke --out /tmp/z3-smoke

Writes ``rm_zero3_offload_gpu.json`` (with ``provenance()``).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402
from provenance import provenance  # noqa: E402
from rm_gpu import flops_per_step, llava_config, make_batch  # noqa: E402
from transformers import LlavaNextForConditionalGeneration  # noqa: E402

from caig.distributed import load_deepspeed_config, resolved_deepspeed_config, single_process_environment  # noqa: E402
from caig.reward.config import RewardConfig  # noqa: E402
from caig.reward.loss import reward_loss  # noqa: E402
from caig.reward.model import build_reward_model  # noqa: E402

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "deepspeed" / "zero3_offload.json"


def engine(smoke: bool, batch: int, dtype: torch.dtype):
    """The RM (full fine-tuning, checkpointing) inside a ZeRO-3 + offload engine."""
    import deepspeed

    config = llava_config(smoke)
    ds = load_deepspeed_config("reward.deepspeed_config", str(CONFIG))
    settings = resolved_deepspeed_config(
        ds,
        micro_batch=batch,
        world_size=1,
        max_grad_norm=1.0,
        dtype=dtype,
        hidden_size=config.text_config.hidden_size,
    )
    settings["optimizer"] = {
        "type": "AdamW",
        "params": {"lr": 2e-6, "weight_decay": 0.0},
    }  # DeepSpeed's CPU Adam
    rm_config = RewardConfig(method="full", gradient_checkpointing=True, bf16=dtype == torch.bfloat16)
    with deepspeed.zero.Init(config_dict_or_path=settings, dtype=dtype):
        llava = LlavaNextForConditionalGeneration(config)
        model = build_reward_model(llava, None, rm_config)
    model.train()
    wrapped, *_ = deepspeed.initialize(model=model, config=settings, model_parameters=model.parameters())
    return wrapped, model, config


def step(wrapped, batch: dict) -> None:
    inputs = {k: v for k, v in batch.items() if k not in ("labels", "ctr")}
    out = wrapped(**inputs)
    loss = reward_loss(out["logits"], out["ctr"], batch["labels"], batch["ctr"], 1.0, 0.5)["loss"]
    wrapped.backward(loss)
    wrapped.step()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--cpu-smoke", action="store_true", help="tiny shapes on CPU, same code path")
    parser.add_argument("--batch", type=int, default=4, help="samples per step")
    parser.add_argument("--steps", type=int, default=3, help="timed steps after one warm-up step")
    parser.add_argument("--text-tokens", type=int, default=96, help="prompt tokens besides the image")
    args = parser.parse_args()
    if not args.cpu_smoke and not torch.cuda.is_available():
        raise SystemExit("no CUDA device; run with --cpu-smoke on a CPU machine")
    single_process_environment()
    device = "cpu" if args.cpu_smoke else "cuda"
    dtype = torch.float32 if args.cpu_smoke else torch.bfloat16
    torch.manual_seed(0)
    result = {
        **provenance(),
        "inputs": {
            "config": "configs/deepspeed/zero3_offload.json",
            "batch": args.batch,
            "steps": args.steps,
        },
        "device": torch.cuda.get_device_name() if device == "cuda" else "cpu",
        "shape": "tiny (cpu smoke)" if args.cpu_smoke else "llava-v1.6-7b",
        "method": "full fine-tuning, ZeRO-3, parameters and optimizer offloaded to CPU, 1 GPU",
    }
    try:
        wrapped, model, config = engine(args.cpu_smoke, args.batch, dtype)
        import deepspeed

        with deepspeed.zero.GatheredParameters([model.llava.model.image_newline]):  # read outside a forward
            batch, n_image = make_batch(model, config, args.batch, args.text_tokens, device, dtype)
        step(wrapped, batch)  # warm-up
        if device == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        started = time.perf_counter()
        for _ in range(args.steps):
            step(wrapped, batch)
        if device == "cuda":
            torch.cuda.synchronize()
        seconds = (time.perf_counter() - started) / args.steps
        flops = flops_per_step(config, args.batch, n_image, args.text_tokens)
        result.update(
            sequence_tokens=flops["sequence_tokens"],
            seconds_per_step=round(seconds, 3),
            samples_per_s=round(args.batch / seconds, 3),
            peak_gpu_memory_gib=round(torch.cuda.max_memory_allocated() / 2**30, 2)
            if device == "cuda"
            else None,
        )
    except (RuntimeError, MemoryError) as err:  # host memory too small for the offloaded states: recorded
        result["error"] = f"{type(err).__name__}: {str(err)[:500]}"
    result["peak_host_rss_gib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "rm_zero3_offload_gpu.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
