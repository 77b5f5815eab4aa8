"""Wrap a LLaVA-NeXT as an RM: LoRA on the language model (optional), gradient checkpointing, the two heads.

Kept apart from the trainer so that the GPU benchmark builds the RM exactly as training does, with torch,
transformers and peft only.
"""

from __future__ import annotations

from typing import Any

import torch

from caig.reward.config import RewardConfig
from caig.reward.inputs import answer_token_ids
from caig.reward.model import RewardModel


def lora_target_regex(modules: list[str]) -> str:
    """LoRA targets: the named linear layers of the language model only (not CLIP's q/k/v, not the projector)."""
    return rf".*language_model.*\.({'|'.join(modules)})$"


def use_cpu_threads(config: RewardConfig) -> None:
    """On CPU, set torch's thread count from the config (more threads than cores slow tiny ops down)."""
    if config.cpu_threads and not torch.cuda.is_available():
        torch.set_num_threads(config.cpu_threads)


def build_reward_model(llava: Any, processor: Any, config: RewardConfig) -> RewardModel:
    """Wrap a LLaVA-NeXT as an RM: heads seeded by ``config.seed``, LoRA injected when ``method == lora``."""
    if config.method == "lora":
        from peft import LoraConfig, inject_adapter_in_model

        lora = LoraConfig(
            r=config.lora_r,
            lora_alpha=config.lora_alpha,
            lora_dropout=config.lora_dropout,
            target_modules=lora_target_regex(config.lora_target_modules),
        )
        llava = inject_adapter_in_model(lora, llava)
        for name, param in llava.named_parameters():
            param.requires_grad = "lora_" in name
    if config.gradient_checkpointing:
        llava.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    answer_ids = answer_token_ids(processor) if config.head == "text" else None
    torch.manual_seed(config.seed)
    model = RewardModel(llava, config.head, answer_ids)
    return model.to(next(llava.parameters()).device)
