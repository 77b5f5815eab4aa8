"""Fixtures of the multi-process tests: a tiny saved model and two task mixes of the small world, one with
text-only examples (``caption_prompt``) and one with an image in every example."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

# The PCPO stage's fixtures (a tiny PM with its task split, an RM beside it, the shrunk profile), for
# test_pcpo_processes: made available to this folder's tests as pytest finds them, by name.
from tests.pcpo.conftest import pcpo_profile, pm_dir, rm_dir  # noqa: F401 (fixtures, found by name)

from caig.data.tasks import build_task_mix
from caig.distributed import ALLOW_CPU
from caig.mllm.config import TaskMixConfig

IMAGES = TaskMixConfig(
    category=1, colour=0, describe_product=0, describe_background=0, title=0, prompt_generation=1,
    caption_prompt=0, rewrite=0, caption_background=0, none_prompt=0, image_prompt=0, min_impressions=100,
)  # fmt: skip


def launcher_env() -> dict[str, str]:
    """The environment of a ``caig ... --gpus N`` child: processes on CPU allowed, no progress bars, and none
    of a surrounding launcher's rendezvous variables (the child starts its own torchrun)."""
    env = {**os.environ, ALLOW_CPU: "1", "TQDM_DISABLE": "1"}
    for key in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(key, None)
    return env


def assert_weights_agree(
    one: dict[str, torch.Tensor], other: dict[str, torch.Tensor], learning_rate: float, step_share: float
) -> None:
    """Trained weights of two runs that differ only in the order of their floating-point sums: at least 99.9%
    of them within 2e-5, and every one within ``step_share`` of one Adam step (``learning_rate``). Adam scales
    each element's step by its own gradient's size, so where a gradient is near zero a rounding difference in
    its sum moves the weight by a share of the learning rate, not of the gradient; a wrong share, batch or
    loss moves nearly every weight by far more."""
    assert set(one) == set(other)
    diff = torch.cat([(other[key] - value).abs().flatten().float() for key, value in one.items()])
    close = (diff <= 2e-5).float().mean().item()
    assert close >= 0.999, f"{close:.4%} of the weights within 2e-5 (max difference {diff.max():.2e})"
    bound = step_share * learning_rate
    assert diff.max() <= bound, f"max weight difference {diff.max():.2e} > {step_share} x lr = {bound:.1e}"


def run_caig(argv: list[str]) -> None:
    """``caig argv`` in a child process under ``launcher_env``; a failure shows its last error lines."""
    done = subprocess.run([sys.executable, "-m", "caig", *argv], env=launcher_env(), capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]


@pytest.fixture(scope="session")
def model_dir(tiny_model_dir: Path) -> Path:
    """The session's saved, untrained tiny model (tests/conftest.py). Read-only for tests."""
    return tiny_model_dir


@pytest.fixture(scope="session")
def image_mix(tmp_path_factory: pytest.TempPathFactory, small_world_dir: Path) -> Path:
    """A task mix where every example has an image (what ZeRO-3 needs on several processes)."""
    out = tmp_path_factory.mktemp("mix-images")
    build_task_mix(small_world_dir, out, IMAGES)
    return out


@pytest.fixture(scope="session")
def text_mix(tmp_path_factory: pytest.TempPathFactory, small_world_dir: Path) -> Path:
    """A task mix with text-only examples (caption_prompt: attributes, no image)."""
    out = tmp_path_factory.mktemp("mix-text")
    build_task_mix(small_world_dir, out, dataclasses.replace(IMAGES, caption_prompt=1))
    return out
