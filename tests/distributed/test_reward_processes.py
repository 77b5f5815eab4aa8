"""The RM on 2 CPU processes under ZeRO-3 (torchrun, gloo) against 1 process with the same global batch.

Tolerance as for pre-training: loss curve and every saved weight (backbone and heads) to 1e-4 absolute
(measured: losses to 1e-5, weights 3.5e-5).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from tests.distributed.conftest import run_caig

from caig.data.event_pairs import pairs_from_events

pytestmark = [pytest.mark.distributed, pytest.mark.slow]
CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "deepspeed"
RUN = {
    "image_side": 32,
    "epochs": 1.0,
    "logging_steps": 1,
    "recipe.train_both_orders": "false",
    "recipe.head_lr_scale": 10,  # the heads' own rate must hold under DeepSpeed too (it once fell to one rate)
    "warmup_ratio": 0.0,
}


def rm_train(model_dir: Path, world: Path, pairs: Path, out: Path, gpus: int, **settings) -> dict:
    argv = ["rm", "train", "--gpus", str(gpus), "--pairs", str(pairs), "--model", str(model_dir)]
    argv += ["--world", str(world), "--out", str(out)]
    argv += [x for k, v in {**RUN, **settings}.items() for x in ("--set", f"reward.{k}={v}")]
    argv += ["--set", "curriculum.side_warmup.enabled=false"]  # the RM's own step: no curriculum stage
    run_caig(argv)
    return json.loads((out / "train.json").read_text())


def saved(rm_dir: Path) -> dict[str, torch.Tensor]:
    return {f"{f.name}:{k}": v for f in sorted(rm_dir.glob("*.safetensors")) for k, v in load_file(f).items()}


def test_zero3_rm_matches_one_process(model_dir, small_world_dir, small_profile, tmp_path):
    pairs, _ = pairs_from_events(small_world_dir, small_profile.reward.train_pairs, seed=0)
    pairs.iloc[:32].to_parquet(tmp_path / "pairs.parquet")
    args = (model_dir, small_world_dir, tmp_path / "pairs.parquet")
    single = rm_train(*args, tmp_path / "one", 1, batch_size=8)
    double = rm_train(*args, tmp_path / "two", 2, batch_size=4, deepspeed_config=str(CONFIGS / "zero3.json"))
    assert double["steps"] == single["steps"] == 4
    for a, b in zip(single["loss_curve"], double["loss_curve"], strict=True):
        assert b["loss"] == pytest.approx(a["loss"], abs=1e-4)
    one, two = saved(tmp_path / "one"), saved(tmp_path / "two")
    assert set(one) == set(two) and any("rm_heads" in k for k in one)
    for key, value in one.items():
        torch.testing.assert_close(two[key], value, atol=1e-4, rtol=0)
