"""The checks before any training starts: DeepSpeed config file, JSON, ZeRO stage, what cannot shard, GPUs."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import click
import pandas as pd
import pytest

from caig.cli import main
from caig.cli.launch import command_argv
from caig.distributed import (
    ALLOW_CPU,
    check_gpus,
    load_deepspeed_config,
    torchrun_command,
)
from caig.errors import UserError
from caig.mllm.config import PretrainConfig
from caig.mllm.pretrain import check_sharding
from caig.reward.config import RewardConfig
from caig.reward.curriculum.config import CurriculumConfig, PerceptionConfig
from caig.reward.curriculum.jobs import check_deepspeed as reward_deepspeed

CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "deepspeed"


@pytest.mark.parametrize(("name", "stage", "offload"), [("zero2", 2, False), ("zero3", 3, False), ("zero3_offload", 3, True)])  # fmt: skip
def test_shipped_configs_load_with_their_stage(name, stage, offload):
    config = load_deepspeed_config("pretrain.deepspeed_config", str(CONFIGS / f"{name}.json"))
    assert (config.zero_stage, config.offload) == (stage, offload)
    text = json.loads((CONFIGS / f"{name}.json").read_text())
    assert text["train_micro_batch_size_per_gpu"] == "auto" and text["gradient_accumulation_steps"] == "auto"


def test_empty_means_no_deepspeed():
    assert load_deepspeed_config("reward.deepspeed_config", "") is None


def test_a_missing_file_names_the_key_and_the_shipped_configs(tmp_path):
    with pytest.raises(UserError) as err:
        load_deepspeed_config("reward.deepspeed_config", str(tmp_path / "nope.json"))
    message = str(err.value)
    assert message.startswith("reward.deepspeed_config=") and "no such file" in message
    assert "configs/deepspeed/zero3.json" in message and "\n" not in message


def test_json_that_does_not_parse_says_line_and_column(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{\n  "zero_optimization": {"stage": 2,}\n}\n')
    with pytest.raises(
        UserError, match=r"^pretrain.deepspeed_config=.*bad.json: not JSON at line 2 column 36"
    ):
        load_deepspeed_config("pretrain.deepspeed_config", str(bad))


@pytest.mark.parametrize("stage", [4, -1, "3", True])
def test_a_stage_deepspeed_does_not_have_is_refused(tmp_path, stage):
    path = tmp_path / "ds.json"
    path.write_text(json.dumps({"zero_optimization": {"stage": stage}}))
    with pytest.raises(UserError, match=r"zero_optimization.stage=.* is not a ZeRO stage; use 0, 1, 2 or 3"):
        load_deepspeed_config("pcpo.deepspeed_config", str(path))


def test_zero3_refuses_an_rm_curriculum_stage_that_trains_outside_the_engine():
    config = RewardConfig(deepspeed_config=str(CONFIGS / "zero3.json"))
    curriculum = CurriculumConfig(perception=PerceptionConfig(enabled=True))
    with pytest.raises(UserError) as err:
        reward_deepspeed(config, curriculum)
    message = str(err.value)
    assert message.startswith("reward.deepspeed_config=") and "ZeRO stage 3" in message
    assert "curriculum.perception.enabled=true" in message and "outside the DeepSpeed engine" in message
    assert "zero2.json" in message
    # the same curriculum under ZeRO-2 (no sharded parameters) and the plain RM under ZeRO-3 both start
    zero2 = dataclasses.replace(config, deepspeed_config=str(CONFIGS / "zero2.json"))
    assert reward_deepspeed(zero2, curriculum)
    assert reward_deepspeed(config, CurriculumConfig()).zero_stage == 3


def _examples(with_text_only: bool) -> pd.DataFrame:
    rows = [{"task": "category", "image_path": "a.png"}]
    if with_text_only:
        rows.append({"task": "caption_prompt", "image_path": None})
    return pd.DataFrame(rows)


def test_text_only_examples_cannot_shard_where_a_process_would_skip_the_vision_tower():
    zero3 = load_deepspeed_config("pretrain.deepspeed_config", str(CONFIGS / "zero3.json"))
    zero2 = load_deepspeed_config("pretrain.deepspeed_config", str(CONFIGS / "zero2.json"))
    lora, full = PretrainConfig(method="lora"), PretrainConfig(method="full")
    with pytest.raises(UserError, match=r"cannot train text-only examples \(caption_prompt: 1\).*pretrain.tasks.caption_prompt=0"):  # fmt: skip
        check_sharding(lora, zero3, _examples(True), world_size=2)
    with pytest.raises(UserError, match=r"ZeRO-2, full, 2 processes.*or pretrain.method=lora"):
        check_sharding(full, zero2, _examples(True), world_size=2)
    check_sharding(lora, zero2, _examples(True), world_size=2)  # LoRA's layers run in every batch
    check_sharding(full, None, _examples(True), world_size=2)  # DDP finds unused parameters
    check_sharding(full, zero3, _examples(True), world_size=1)  # one process: nothing to match
    check_sharding(full, zero3, _examples(False), world_size=2)


def test_more_gpus_than_the_machine_has_is_refused():
    with pytest.raises(UserError, match=r"^--gpus 4: this machine has 2 GPU\(s\); ask for at most 2$"):
        check_gpus(4, device_count=2)
    check_gpus(2, device_count=2)


def test_cpu_processes_only_on_request(monkeypatch):
    monkeypatch.delenv(ALLOW_CPU, raising=False)
    with pytest.raises(UserError, match=rf"no GPU; set {ALLOW_CPU}=1 to run 2 CPU processes"):
        check_gpus(2, device_count=0)
    monkeypatch.setenv(ALLOW_CPU, "1")
    check_gpus(2, device_count=0)
    check_gpus(1, device_count=0)


def test_cli_refuses_a_bad_config_in_one_line_before_any_process_starts(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv(ALLOW_CPU, "1")
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    model = tmp_path / "m"
    model.mkdir()
    argv = [
        "pretrain",
        "--gpus",
        "2",
        "--model",
        str(model),
        "--tasks",
        str(model),
        "--out",
        str(tmp_path / "o"),
    ]
    with pytest.raises(SystemExit) as done:
        main([*argv, "--set", f"pretrain.deepspeed_config={bad}"])
    assert done.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert (
        len(err) == 1
        and err[0].startswith("error: pretrain.deepspeed_config=")
        and "line 1 column 2" in err[0]
    )
    assert not (tmp_path / "o").exists()


def test_the_relaunched_command_is_the_parsed_one_without_gpus(tmp_path):
    @click.group()
    def caig():
        pass

    seen = {}

    @caig.command("pretrain")
    @click.option("--gpus", type=int, default=1)
    @click.option("--set", "overrides", multiple=True)
    @click.option("--model", type=click.Path(path_type=Path))
    @click.option("--quiet/--loud", default=False)
    def pretrain(**kwargs):
        seen["argv"] = command_argv(click.get_current_context())

    caig.main(
        ["pretrain", "--gpus", "2", "--set", "a=1", "--set", "b=2", "--model", "m", "--quiet"],
        standalone_mode=False,
    )
    assert seen["argv"] == [
        "pretrain",
        "--set",
        "a=1",
        "--set",
        "b=2",
        "--model",
        str(Path("m").resolve()),
        "--quiet",
    ]
    assert torchrun_command(2, ["pretrain"])[1:5] == [
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc-per-node=2",
    ]


def test_a_launched_command_leaves_its_process_group_when_it_ends(monkeypatch):
    """Under a launcher (LOCAL_RANK set) the command runs here, then its process group is destroyed, also when
    the command fails: its threads stop before the interpreter exits."""
    import torch.distributed as dist
    from tests.serving.conftest import free_port

    from caig.cli.launch import gpus_option

    rendezvous = {
        "LOCAL_RANK": "0",
        "RANK": "0",
        "WORLD_SIZE": "1",
        "MASTER_ADDR": "127.0.0.1",
        ALLOW_CPU: "1",
    }
    for key, value in {**rendezvous, "MASTER_PORT": str(free_port())}.items():
        monkeypatch.setenv(key, value)
    joined = []

    @click.command()
    @click.option("--profile", default="local")
    @click.option("--fail", is_flag=True)
    @gpus_option(lambda profile, gpus, params: None)
    def train(profile, fail):
        dist.init_process_group(backend="gloo")
        joined.append(dist.is_initialized())
        if fail:
            raise RuntimeError("training failed")

    train.main(["--gpus", "2"], standalone_mode=False)
    assert joined == [True] and not dist.is_initialized()
    with pytest.raises(RuntimeError, match="training failed"):
        train.main(["--gpus", "2", "--fail"], standalone_mode=False)
    assert joined == [True, True] and not dist.is_initialized()
