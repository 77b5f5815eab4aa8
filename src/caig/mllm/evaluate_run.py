"""Which products pretrain evaluates on, and the evaluation call with the profile's settings (evaluation only)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from caig.mllm.evaluate import evaluate_pm
from caig.profile import Profile
from caig.world.loaded import World, load_world


def evaluation_set(
    tasks_dir: str | Path, world_dir: str | Path, eval_world_dir: str | Path | None, limit: int
) -> tuple[World, list[str]]:
    """(world, product ids): the task mix's held-out products, or the first ``limit`` of another world."""
    if eval_world_dir is not None:
        world = load_world(eval_world_dir)
        return world, world.catalog["product_id"].tolist()[:limit]
    products = pd.read_parquet(Path(tasks_dir) / "products.parquet")
    heldout = products.loc[products["split"] == "heldout", "product_id"].tolist()
    return load_world(world_dir), heldout[:limit]


def run_evaluation(
    model: Any, processor: Any, world: World, product_ids: list[str], profile: Profile
) -> dict[str, Any]:
    """``evaluate_pm`` with the profile's attributes, temperature, length and system prompt."""
    config = profile.pretrain
    return evaluate_pm(
        model,
        processor,
        world,
        product_ids,
        profile.mllm.instruct_attributes,
        temperature=config.eval_temperature,
        max_new_tokens=config.eval_max_new_tokens,
        seed=config.seed,
    )
