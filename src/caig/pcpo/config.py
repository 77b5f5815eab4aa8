"""Config of the PCPO stage: Algorithm 1's rounds, the DPO / PCPO losses and the LoRA policy."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

METHODS = ("pcpo", "dpo", "pcpo-no-visual", "pcpo-no-textual")
LLM_LINEAR_MODULES = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


@dataclass
class PCPOConfig:
    """Preference optimization of the prompt model with the frozen reward model's choices (paper 3.4)."""

    method: Literal["pcpo", "dpo", "pcpo-no-visual", "pcpo-no-textual"] = "pcpo"  # dpo: the baseline
    rounds: int = 5  # Algorithm 1's epochs; each samples, renders, judges, then trains one epoch
    products_per_round: int = 64  # M: products sampled per round (training products only)
    samples_per_product: int = 2  # descriptions generated per product (the paper: two)
    temperature: float = 1.0  # sampling temperature of the PM (paper: 1.0)
    max_new_tokens: int = 40  # longest generated description
    max_length: int = 256  # longest training sequence in tokens (image tokens included)
    beta: float = 0.5  # DPO beta (released code: 0.5)
    beta_p: float = 0.5  # PCPO beta_p
    pcpo_weight: float = 1.0  # weight of the PCPO term (paper Eq. 12: 1)
    mask_ratio: float = 0.75  # visual mismatch: share of patches blacked out
    mask_patch: int = 32  # visual mismatch: patch side in pixels of the product image
    lora_r: int = 128  # LoRA rank (paper r = 128)
    lora_alpha: int = 256  # LoRA alpha (paper 256)
    lora_dropout: float = 0.0  # LoRA dropout
    lora_target_modules: list[str] = field(default_factory=lambda: list(LLM_LINEAR_MODULES))  # LM only
    learning_rate: float = 2e-5  # paper 2e-5
    warmup_ratio: float = 0.1  # of each round's steps: warm-up always ends inside the round
    batch_size: int = 8  # preference pairs per optimizer step, over all processes (each takes its share)
    max_grad_norm: float = 1.0  # gradient clipping
    gradient_checkpointing: bool = False  # trade compute for memory (7B on one GPU)
    deepspeed_config: str = ""  # DeepSpeed ZeRO JSON under --gpus N (zero2.json; zero3.json shards the base)
    seed: int = 0  # sampling, mismatch coin flips, shuffling
    eval_products: int = 60  # held-out products whose descriptions are written after every round

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {', '.join(METHODS)}, got {self.method!r}")
        if self.rounds < 1 or self.products_per_round < 1:
            raise ValueError("rounds and products_per_round must be >= 1")
        if self.samples_per_product != 2:
            raise ValueError("samples_per_product must be 2 (one chosen, one rejected per product)")
        if self.beta <= 0 or self.beta_p <= 0 or self.pcpo_weight < 0:
            raise ValueError("beta and beta_p must be > 0 and pcpo_weight >= 0")
        if not 0 < self.mask_ratio <= 1 or self.mask_patch < 1:
            raise ValueError("mask_ratio must be in (0, 1] and mask_patch >= 1")
        unknown = sorted(set(self.lora_target_modules) - set(LLM_LINEAR_MODULES))
        if unknown:
            raise ValueError(f"lora_target_modules: unknown {unknown}; choose from {LLM_LINEAR_MODULES}")
        if self.learning_rate <= 0 or self.batch_size < 1 or not 0 <= self.warmup_ratio < 1:
            raise ValueError("learning_rate > 0, batch_size >= 1 and warmup_ratio in [0, 1) are required")
