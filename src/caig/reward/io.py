"""A trained RM on disk: ``save_reward_model`` writes it, ``load_reward_model`` reads it back.

The RM directory is self-contained: the backbone (LoRA adapters merged) loadable with ``from_pretrained``,
``rm_heads.safetensors`` (the classification and CTR heads) and ``rm.json`` (the ``RewardConfig`` it was
trained with, and whatever else the training recorded beside it, e.g. the curriculum's settings). Scoring,
serving, PCPO and the priors read RMs through this module only.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from safetensors.torch import load_file, save_file

from caig.errors import UserError
from caig.mllm.build import load_model, save_model
from caig.reward.config import RewardConfig, upgrade_saved_reward
from caig.reward.inputs import answer_token_ids
from caig.reward.model import RewardModel, training_device, use_cpu_threads
from caig.typed_config import as_dict, build_config

HEADS_FILE, META_FILE = "rm_heads.safetensors", "rm.json"


def save_reward_model(
    model: RewardModel,
    processor: Any,
    config: RewardConfig,
    out: str | Path,
    recorded: dict[str, Any] | None = None,
) -> Path:
    """Save backbone (LoRA merged), heads and ``rm.json`` (the RewardConfig it was trained with, and the
    ``recorded`` sections beside it)."""
    out = Path(out)
    llava = model.llava
    if config.method == "lora":
        llava = _merge_lora(llava)
    if config.gradient_checkpointing:
        llava.gradient_checkpointing_disable()
    save_model(llava, processor, out)
    save_file(
        {
            "cls_head": model.cls_head.weight.detach().contiguous().cpu(),
            "ctr_head": model.ctr_head.weight.detach().contiguous().cpu(),
        },
        str(out / HEADS_FILE),
    )
    meta = {"reward": as_dict(config), "head": config.head, **(recorded or {})}
    (out / META_FILE).write_text(json.dumps(meta, indent=2))
    return out


def _merge_lora(llava: Any) -> Any:
    """Fold LoRA deltas into the base weights and restore plain Linear layers."""
    from peft.tuners.lora import LoraLayer

    for name, module in list(llava.named_modules()):
        if isinstance(module, LoraLayer):
            module.merge()
            parent_name, _, child = name.rpartition(".")
            setattr(llava.get_submodule(parent_name), child, module.get_base_layer())
    return llava


def read_rm_json(rm_dir: str | Path) -> dict[str, Any]:
    """``rm.json`` of an RM saved by ``save_reward_model``: ``reward``, ``head`` and what else was recorded."""
    path = Path(rm_dir) / META_FILE
    if not path.is_file():
        raise UserError(f"{rm_dir} holds no {META_FILE}; train a reward model with `caig rm train --out DIR`")
    return json.loads(path.read_text())


def load_reward_config(rm_dir: str | Path) -> RewardConfig:
    """The RewardConfig an RM saved by ``save_reward_model`` was trained with (``rm.json``; no weights read).

    An RM saved before ``reward.recipe`` and ``curriculum`` existed kept their settings at the top of
    ``reward``: ``upgrade_saved_reward`` moves the recipe's below ``recipe`` and skips the curriculum's."""
    saved = upgrade_saved_reward(read_rm_json(rm_dir)["reward"])
    return build_config(RewardConfig, saved, "reward", str(Path(rm_dir) / META_FILE))


def load_reward_model(rm_dir: str | Path, device: str | None = None) -> tuple[RewardModel, Any, RewardConfig]:
    """Load an RM saved by ``save_reward_model``: (model in eval mode, processor, its RewardConfig)."""
    rm_dir = Path(rm_dir)
    config = load_reward_config(rm_dir)
    llava, processor = load_model(rm_dir)
    answer_ids = answer_token_ids(processor) if config.head == "text" else None
    model = RewardModel(llava, config.head, answer_ids)
    heads = load_file(str(rm_dir / HEADS_FILE))
    model.cls_head.weight.data.copy_(heads["cls_head"])
    model.ctr_head.weight.data.copy_(heads["ctr_head"])
    device = device or training_device()
    use_cpu_threads(config)
    return model.to(device).eval(), processor, config
