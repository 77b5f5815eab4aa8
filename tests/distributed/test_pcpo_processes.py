"""PCPO rounds on 2 CPU processes (torchrun, gloo) against 1 process with the same global batch.

Tolerance: per-round losses agree to 1e-4 (absolute), as in test_pretrain_processes: only the order of
floating-point sums differs. The trained adapter weights: at least 99.9% of them agree to 2e-5 and every one to
2% of one Adam step (0.02 x the learning rate, 2e-4). Adam scales each element's step by its own gradient's
size, so where a gradient is near zero a rounding difference in its sum moves the weight by a share of the
learning rate, not of the gradient (measured: 2 of 17,408 weights at 4e-5 to 9e-5 after 4 steps, the rest
within 7e-6). A wrong share, batch or reference moves every weight by far more. The rollout is the same on both
(every process samples the main process's texts; each renders and judges its share of the products), so the
preference pairs are equal, not close. 7 products a round and a global batch of 4 make a last batch of 3:
one process of two trains a padded share (a repeat weighted 0).
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml
from safetensors.torch import load_file
from tests.distributed.conftest import assert_weights_agree, launcher_env, run_caig

from caig.mllm.pretrain import run_pretrain
from caig.pcpo.loop import run_pcpo

pytestmark = pytest.mark.distributed
CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "deepspeed"
RUN = {
    "rounds": 2,
    "products_per_round": 7,
    "batch_size": 4,  # the global batch: 2 + 2 pairs on two processes
    "eval_products": 2,
    "max_new_tokens": 32,  # long enough samples to name a scene or palette, so the RM has ads to tell apart
    "warmup_ratio": 0.0,
    "lora_dropout": 0.0,  # dropout draws differ per process; the comparison needs none
    "learning_rate": 0.01,
}

PRETRAIN = {
    "epochs": 1.0,
    "learning_rate": 0.005,
    "eval_products": 1,
    "eval_max_new_tokens": 2,
    "cpu_threads": 1,
}


def profile_with(profile, **settings):
    return dataclasses.replace(profile, pcpo=dataclasses.replace(profile.pcpo, **{**RUN, **settings}))


@pytest.fixture(scope="module")
def writing_pm(pcpo_profile, pm_dir, tmp_path_factory):
    """The tiny PM pre-trained for one epoch: its samples name scenes and palettes, so the two ads of a
    product differ and the RM has something to choose between (an untrained PM's render alike: ties)."""
    out = tmp_path_factory.mktemp("pcpo-pm-trained")
    tasks = json.loads((pm_dir / "pretrain.json").read_text())["tasks"]
    pretrain = dataclasses.replace(pcpo_profile.pretrain, **PRETRAIN)
    run_pretrain(dataclasses.replace(pcpo_profile, pretrain=pretrain), pm_dir / "model", tasks, out)
    return out


@pytest.fixture(scope="module")
def one_process(pcpo_profile, writing_pm, rm_dir, tmp_path_factory):
    """The 1-process run every 2-process run is compared with (run once)."""
    out = tmp_path_factory.mktemp("pcpo-one") / "run"
    run_pcpo(profile_with(pcpo_profile), writing_pm, rm_dir, out)
    return out


def two_processes(profile, pm_dir: Path, rm_dir: Path, out: Path, deepspeed: str) -> Path:
    """``caig pcpo --gpus 2`` with the same profile, written to a file the child reads."""
    settings = {"deepspeed_config": str(CONFIGS / f"{deepspeed}.json") if deepspeed != "ddp" else ""}
    path = out.parent / "profile.yaml"
    path.write_text(yaml.safe_dump(profile_with(profile, **settings).to_dict()))
    run_caig(["pcpo", "--gpus", "2", "--profile", str(path), "--pm", str(pm_dir), "--rm", str(rm_dir), "--out", str(out)])  # fmt: skip
    return out


def assert_adapters_agree(one: dict[str, torch.Tensor], other: dict[str, torch.Tensor]) -> None:
    """The module docstring's tolerance: 99.9% of the weights within 2e-5, every one within 0.02 x lr."""
    assert_weights_agree(one, other, RUN["learning_rate"], step_share=0.02)


def adapter(run: Path, r: int) -> dict[str, torch.Tensor]:
    return load_file(run / f"round-{r:02d}" / "adapter" / "adapter_model.safetensors")


@pytest.mark.parametrize("engine", ["ddp", "zero3", pytest.param("zero2", marks=pytest.mark.slow)])
def test_two_processes_train_the_rounds_of_one(
    one_process, pcpo_profile, writing_pm, rm_dir, tmp_path, engine
):
    two = two_processes(pcpo_profile, writing_pm, rm_dir, tmp_path / "two", engine)
    single, double = (json.loads((run / "pcpo.json").read_text()) for run in (one_process, two))
    assert len(double["rounds"]) == len(single["rounds"]) == 2
    for a, b in zip(single["rounds"], double["rounds"], strict=True):
        assert b["rollout"] == a["rollout"] and a["rollout"]["pairs"] >= 5
        assert b["training"]["steps"] == a["training"]["steps"] == 2
        for key in ("loss", "dpo_loss", "pcpo_loss", "reward_accuracy"):
            assert b["training"][key] == pytest.approx(a["training"][key], abs=1e-4), key
    assert any(r["rollout"]["pairs"] % RUN["batch_size"] for r in single["rounds"])  # a padded last batch
    for r in (1, 2):
        pairs = [pd.read_parquet(run / f"round-{r:02d}" / "pairs.parquet") for run in (one_process, two)]
        pd.testing.assert_frame_equal(pairs[0], pairs[1])
        one, other = adapter(one_process, r), adapter(two, r)
        assert set(one) == set(other)
        assert_adapters_agree(one, other)
    trained = adapter(one_process, 2)
    assert any(v.abs().max() > 1e-3 for k, v in trained.items() if "lora_B" in k)  # it trained


def test_a_failing_process_fails_the_command_with_its_error(pcpo_profile, writing_pm, rm_dir, tmp_path):
    """A worker's error (here the token budget, checked after the model loads) is the command's exit code."""
    path = tmp_path / "profile.yaml"
    path.write_text(yaml.safe_dump(profile_with(pcpo_profile, max_length=10).to_dict()))
    argv = ["pcpo", "--gpus", "2", "--profile", str(path), "--pm", str(writing_pm), "--rm", str(rm_dir)]
    done = subprocess.run(
        [sys.executable, "-m", "caig", *argv, "--out", str(tmp_path / "run")],
        env=launcher_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode != 0
    assert "error: pcpo.max_length=10 cannot hold" in done.stderr
