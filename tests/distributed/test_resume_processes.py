"""A 2-process ZeRO-3 pre-training killed after a checkpoint resumes from its sharded checkpoint to the result
of a run never killed (1e-4 absolute, as in test_pretrain_processes)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import psutil
import pytest
import torch
from tests.distributed.conftest import launcher_env

from .test_pretrain_processes import CONFIGS, GLOBAL_BATCH, RUN, one_process, weights

pytestmark = [pytest.mark.distributed, pytest.mark.slow]


def kill_tree(proc: subprocess.Popen) -> None:
    """SIGKILL the command, torchrun and both workers (torchrun starts them in sessions of their own)."""
    family = [*psutil.Process(proc.pid).children(recursive=True), psutil.Process(proc.pid)]
    for member in family:
        member.send_signal(signal.SIGKILL)
    psutil.wait_procs(family, timeout=30)
    proc.wait()


def test_killed_zero3_run_resumes_from_its_sharded_checkpoint(small_profile, model_dir, image_mix, tmp_path):
    settings = {**RUN, "epochs": 0.5, "save_steps": 2, "method": "lora"}
    single = one_process(small_profile, model_dir, image_mix, tmp_path / "one", **settings)
    out = tmp_path / "two"
    sets = {**settings, "batch_size": GLOBAL_BATCH // 2, "deepspeed_config": str(CONFIGS / "zero3.json")}
    argv = [
        "pretrain",
        "--gpus",
        "2",
        "--model",
        str(model_dir),
        "--tasks",
        str(image_mix),
        "--out",
        str(out),
    ]
    argv += [x for k, v in sets.items() for x in ("--set", f"pretrain.{k}={v}")]
    env = launcher_env()
    command = [sys.executable, "-m", "caig", *argv]
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        deadline = time.monotonic() + 240
        while not list((out / "checkpoints").glob("checkpoint-*/trainer_state.json")):
            assert proc.poll() is None, "the run ended before its first checkpoint"
            assert time.monotonic() < deadline, "no checkpoint within 240 s"
            time.sleep(0.1)
    finally:
        kill_tree(proc)
    assert not (out / "pretrain.json").exists()
    shards = list((out / "checkpoints").glob("checkpoint-*/global_step*/*optim_states.pt"))
    assert len(shards) >= 2  # one optimizer shard per process: the checkpoint is sharded
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    resumed = json.loads((out / "pretrain.json").read_text())
    assert resumed["resumed_from"] is not None and resumed["global_step"] == single["global_step"]
    one, two = weights(tmp_path / "one"), weights(out)
    for key, value in one.items():
        torch.testing.assert_close(two[key], value, atol=1e-4, rtol=0)
