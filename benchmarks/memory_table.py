"""Per-GPU memory of the model states for 7B training at 1, 2, 4 and 8 GPUs under ZeRO-2, ZeRO-3 and ZeRO-3
with CPU offload, from DeepSpeed's own estimators; the table in docs/distributed.md.

Run: python benchmarks/memory_table.py  (prints the table, writes benchmarks/results/memory_table.json)

Model states only (bf16 weights and gradients, fp32 master weights and Adam moments): activations, the
CUDA context and allocator fragmentation come on top. Full fine-tuning: every parameter trains, DeepSpeed's
estimator as it is. LoRA: the estimator for the adapters (the trainable parameters), plus the frozen bf16
weights (2 bytes each): whole on every GPU under ZeRO-2, a 1/N slice under ZeRO-3, none on the GPU when
ZeRO-3 offloads parameters.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from deepspeed.runtime.zero.stage3 import estimate_zero3_model_states_mem_needs
from deepspeed.runtime.zero.stage_1_and_2 import estimate_zero2_model_states_mem_needs

sys.path.insert(0, str(Path(__file__).resolve().parent))
from provenance import provenance  # noqa: E402

TOTAL_PARAMS = 7_060_000_000  # LLaVA-v1.6-vicuna-7B: Vicuna-7B + CLIP ViT-L/14-336 (~0.3B) + projector
HIDDEN, INTERMEDIATE, LAYERS, VOCAB = 4096, 11008, 32, 32000
LARGEST_LAYER = VOCAB * HIDDEN  # embed_tokens / lm_head: what ZeRO-3 gathers at once at most
LORA_R = 128
GPUS = (1, 2, 4, 8)
SETUPS = ("zero2", "zero3", "zero3_offload")


def lora_params(r: int = LORA_R) -> int:
    """Trainable LoRA parameters on the LM's q/k/v/o/gate/up/down projections: r x (in + out) per layer."""
    shapes = [(HIDDEN, HIDDEN)] * 4 + [(HIDDEN, INTERMEDIATE)] * 2 + [(INTERMEDIATE, HIDDEN)]
    return LAYERS * sum(r * (a + b) for a, b in shapes)


def state_bytes(setup: str, trainable: int, frozen: int, gpus: int) -> tuple[int, int]:
    """(per-GPU, per-node CPU) model-state bytes of ``setup`` on ``gpus`` GPUs of one node."""
    if setup == "zero2":
        cpu, gpu = estimate_zero2_model_states_mem_needs(trainable, gpus, 1, cpu_offload=False)
        return gpu + 2 * frozen, cpu
    offload = setup == "zero3_offload"
    cpu, gpu, _ = estimate_zero3_model_states_mem_needs(
        trainable, LARGEST_LAYER, gpus, 1, cpu_offload=offload, cpu_offload_params=offload
    )
    return (gpu, cpu + 2 * frozen) if offload else (gpu + 2 * frozen // gpus, cpu)


def gib(n: int) -> float:
    return round(n / 2**30, 1)


def table() -> list[dict[str, Any]]:
    """One row per (method, setup): GiB per GPU at each GPU count."""
    lora = lora_params()
    methods = {"full": (TOTAL_PARAMS, 0), f"lora_r{LORA_R}": (lora, TOTAL_PARAMS)}
    return [
        {
            "method": method,
            "setup": setup,
            "trainable_params": trainable,
            "gib_per_gpu": {str(n): gib(state_bytes(setup, trainable, frozen, n)[0]) for n in GPUS},
            "cpu_gib_per_node": {str(n): gib(state_bytes(setup, trainable, frozen, n)[1]) for n in GPUS},
        }
        for method, (trainable, frozen) in methods.items()
        for setup in SETUPS
    ]


def markdown(rows: list[dict[str, Any]]) -> str:
    head = (
        "| method | DeepSpeed config | " + " | ".join(f"{n} GPU" for n in GPUS) + " | CPU RAM (1 / 8 GPUs) |"
    )
    lines = [head, "|" + "---|" * (3 + len(GPUS))]
    for row in rows:
        cells = " | ".join(f"{row['gib_per_gpu'][str(n)]:.1f} GiB" for n in GPUS)
        cpu = row["cpu_gib_per_node"]
        lines.append(
            f"| {row['method']} | configs/deepspeed/{row['setup']}.json | {cells} | {cpu['1']} / {cpu['8']} GiB |"
        )
    return "\n".join(lines)


def main() -> None:
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args()  # --help, nothing else
    rows = table()
    print(markdown(rows))
    out = Path(__file__).resolve().parent / "results" / "memory_table.json"
    result = {
        **provenance(),
        "total_params": TOTAL_PARAMS,
        "lora_trainable_params": lora_params(),
        "largest_layer_params": LARGEST_LAYER,
        "note": "model states only (weights, gradients, Adam); activations not included; CPU RAM per node",
        "rows": rows,
    }
    out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
