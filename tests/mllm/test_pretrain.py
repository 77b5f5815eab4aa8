"""Pre-training: multi-task SFT on the small world's task mix, LoRA, resume after a kill, the CLI."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from transformers import LlavaNextForConditionalGeneration

from caig.cli import main
from caig.data.tasks import build_task_mix
from caig.mllm.build import load_model
from caig.mllm.config import TaskMixConfig
from caig.mllm.pretrain import lora_wrap, run_pretrain

FAST = {
    "epochs": 1.0,
    "eval_products": 4,
    "eval_max_new_tokens": 8,
    "logging_steps": 2,
    "save_steps": 4,
    "cpu_threads": 1,
    "batch_size": 8,
}
MIX = TaskMixConfig(
    category=1,
    colour=0,
    describe_product=0,
    describe_background=0,
    title=0,
    prompt_generation=1,
    caption_prompt=1,
    rewrite=0,
    caption_background=0,
    none_prompt=0,
    image_prompt=0,
    min_impressions=100,
)


def fast_profile(profile, **pretrain):
    return dataclasses.replace(
        profile, pretrain=dataclasses.replace(profile.pretrain, **{**FAST, **pretrain})
    )


@pytest.fixture(scope="module")
def tasks_dir(small_world_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("mix")
    build_task_mix(small_world_dir, out, MIX)
    return out


@pytest.fixture(scope="module")
def pretrained(small_profile, tiny_model_dir, tasks_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("pretrain")
    here = os.getcwd()
    os.chdir(tasks_dir.parent)  # a relative --tasks, as users type it
    try:
        return run_pretrain(fast_profile(small_profile), tiny_model_dir, Path(tasks_dir.name), out), out
    finally:
        os.chdir(here)


def test_pretrain_writes_loss_curve_and_before_after_metrics(pretrained):
    report, out = pretrained
    assert json.loads((out / "pretrain.json").read_text()) == report
    curve = [p["loss"] for p in report["loss_curve"]]
    assert len(curve) >= 3 and curve[-1] < curve[0]
    for when in ("before", "after"):
        assert report[when]["n_products"] == 4 and report[when]["n_descriptions"] == 8
        assert 0 <= report[when]["category_accuracy"] <= 1 and 0 <= report[when]["match_rate"] <= 1
    assert report["match_rate_gain"] == pytest.approx(
        report["after"]["match_rate"] - report["before"]["match_rate"]
    )
    assert report["resumed_from"] is None and report["global_step"] > 0
    assert Path(report["tasks"]).is_absolute()  # read later (PCPO) from any working directory


def test_pretrained_model_loads_and_changed(pretrained, tiny_model_dir):
    _, out = pretrained
    before = LlavaNextForConditionalGeneration.from_pretrained(tiny_model_dir).state_dict()
    after, _ = load_model(out / "model")
    changed = [k for k, v in after.state_dict().items() if not torch.equal(v, before[k])]
    assert any("vision_tower" in k for k in changed) and any("language_model" in k for k in changed)


def test_lora_adapts_only_the_language_models_linear_layers(tiny_model_dir, small_profile):
    model, _ = load_model(tiny_model_dir)
    wrapped = lora_wrap(
        model, dataclasses.replace(small_profile.pretrain, method="lora", lora_r=4, lora_alpha=8)
    )
    adapted = {n.split(".lora_A")[0] for n, _ in wrapped.named_parameters() if ".lora_A" in n}
    assert adapted and all("language_model" in n for n in adapted)
    assert {n.rsplit(".", 1)[1] for n in adapted} == {
        "q_proj",
        "k_proj",
        "v_proj",
        "o_proj",
        "gate_proj",
        "up_proj",
        "down_proj",
    }
    trainable = [n for n, p in wrapped.named_parameters() if p.requires_grad]
    assert all("lora_" in n for n in trainable)


def test_lora_pretraining_merges_adapters_and_keeps_the_vision_tower(
    small_profile, tiny_model_dir, tasks_dir, tmp_path
):
    profile = fast_profile(small_profile, method="lora", lora_r=4, lora_alpha=8, epochs=0.5, eval_products=1)
    run_pretrain(profile, tiny_model_dir, tasks_dir, tmp_path)
    base = LlavaNextForConditionalGeneration.from_pretrained(tiny_model_dir).state_dict()
    merged = LlavaNextForConditionalGeneration.from_pretrained(tmp_path / "model").state_dict()
    assert set(merged) == set(base)  # no lora_ keys left
    assert all(torch.equal(merged[k], base[k]) for k in base if "vision_tower" in k)
    assert any(not torch.equal(merged[k], base[k]) for k in base if "q_proj" in k)


def test_killed_run_resumes_from_its_last_checkpoint(tiny_model_dir, tasks_dir, tmp_path):
    out = tmp_path / "run"
    sets = [
        "pretrain.epochs=3.0",
        "pretrain.save_steps=2",
        "pretrain.logging_steps=1",
        "pretrain.batch_size=8",
        "pretrain.eval_products=2",
        "pretrain.eval_max_new_tokens=4",
        "pretrain.cpu_threads=1",
    ]
    argv = ["pretrain", "--model", str(tiny_model_dir), "--tasks", str(tasks_dir), "--out", str(out)]
    argv += [x for s in sets for x in ("--set", s)]
    env = {**os.environ, "TQDM_DISABLE": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "caig", *argv], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        checkpoint = _wait_for(
            lambda: sorted((out / "checkpoints").glob("checkpoint-*/trainer_state.json")), proc
        )
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL  # killed mid-run, not finished
    assert not (out / "pretrain.json").exists()
    main(argv)
    report = json.loads((out / "pretrain.json").read_text())
    assert report["resumed_from"] is not None
    resumed_step = int(report["resumed_from"].split("-")[1])
    assert resumed_step >= int(checkpoint[0].parent.name.split("-")[1]) >= 2
    assert report["global_step"] > resumed_step
    assert any(p["step"] <= resumed_step for p in report["loss_curve"])  # the curve before the kill is kept


def test_cli_reports_a_missing_task_mix(tiny_model_dir, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(
            [
                "pretrain",
                "--model",
                str(tiny_model_dir),
                "--tasks",
                str(tmp_path),
                "--out",
                str(tmp_path / "o"),
            ]
        )
    assert exit_info.value.code == 2
    assert "caig mllm tasks" in capsys.readouterr().err


def _wait_for(found, proc, timeout: float = 300.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = found()
        if result:
            return result
        if proc.poll() is not None:
            pytest.fail(f"pretrain exited with {proc.returncode} before writing a checkpoint")
        time.sleep(0.1)
    pytest.fail("no checkpoint within the timeout")


@pytest.mark.slow
def test_deepspeed_zero2_runs_the_same_code_path_on_cpu(tiny_model_dir, tasks_dir, tmp_path):
    pytest.importorskip("deepspeed")
    config = Path(__file__).resolve().parents[2] / "configs" / "deepspeed" / "zero2.json"
    sets = [
        f"pretrain.deepspeed_config={config}",
        "pretrain.epochs=0.3",
        "pretrain.logging_steps=1",
        "pretrain.batch_size=8",
        "pretrain.eval_products=1",
        "pretrain.eval_max_new_tokens=2",
        "pretrain.cpu_threads=1",
    ]
    argv = ["pretrain", "--model", str(tiny_model_dir), "--tasks", str(tasks_dir), "--out", str(tmp_path)]
    argv += [x for s in sets for x in ("--set", s)]
    env = {
        **os.environ,
        "TQDM_DISABLE": "1",
        "RANK": "0",
        "LOCAL_RANK": "0",
        "WORLD_SIZE": "1",
        "MASTER_ADDR": "127.0.0.1",
        "MASTER_PORT": str(29500 + os.getpid() % 1000),
    }
    done = subprocess.run(
        [sys.executable, "-m", "caig", *argv], env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads((tmp_path / "pretrain.json").read_text())
    assert report["distributed"] == {"deepspeed": True, "zero_stage": 2, "world_size": 1}
    assert report["global_step"] >= 2 and len(report["loss_curve"]) >= 2
    LlavaNextForConditionalGeneration.from_pretrained(tmp_path / "model")


def test_pretrain_on_real_data_skips_the_oracle_and_never_imports_it(
    small_world_dir, tiny_model_dir, tmp_path
):
    """No world.json (imported logs): training runs, the oracle evaluation is skipped with its reason, and the
    process never imports ``caig.world.oracle``."""
    import shutil

    data = tmp_path / "data"
    shutil.copytree(small_world_dir, data, ignore=shutil.ignore_patterns("world.json", "events"))
    mix = tmp_path / "mix"
    shutil.copytree(_mix_of(small_world_dir, tmp_path), mix)
    summary = json.loads((mix / "tasks.json").read_text())
    (mix / "tasks.json").write_text(json.dumps({**summary, "world_dir": str(data)}))
    script = (
        "import sys, json, dataclasses\n"
        "from caig.profile import load_profile\n"
        "from caig.mllm.pretrain import run_pretrain\n"
        "p = load_profile('local')\n"
        f"p = dataclasses.replace(p, pretrain=dataclasses.replace(p.pretrain, **{FAST!r}))\n"
        f"r = run_pretrain(p, {str(tiny_model_dir)!r}, {str(mix)!r}, {str(tmp_path / 'out')!r})\n"
        "print(json.dumps({'oracle': [m for m in sys.modules if m == 'caig.world.oracle'], 'evaluation': r['evaluation'],"
        " 'before': r['before'], 'steps': r['global_step']}))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["oracle"] == [] and result["before"] is None and result["steps"] > 0
    assert "no world.json" in result["evaluation"]["skipped"]


def _mix_of(world_dir: Path, tmp_path: Path) -> Path:
    out = tmp_path / "mix-src"
    build_task_mix(world_dir, out, MIX)
    return out


def test_a_limit_that_cannot_hold_an_example_stops_before_training(
    small_profile, tiny_model_dir, tasks_dir, tmp_path
):
    from caig.errors import UserError

    with pytest.raises(
        UserError, match=r"pretrain.max_length=16 cannot hold the longest task example: it needs \d+"
    ):
        run_pretrain(fast_profile(small_profile, max_length=16), tiny_model_dir, tasks_dir, tmp_path)
    assert not (tmp_path / "checkpoints").exists() and not (tmp_path / "eval_before.json").exists()


def test_cli_names_an_impossible_limit_in_one_line(tiny_model_dir, tasks_dir, tmp_path, capsys):
    argv = ["pretrain", "--model", str(tiny_model_dir), "--tasks", str(tasks_dir), "--out", str(tmp_path)]
    with pytest.raises(SystemExit) as done:
        main([*argv, "--set", "pretrain.max_length=16"])
    assert done.value.code == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "pretrain.max_length=16 cannot hold the longest task example" in errors[0]
    assert "set pretrain.max_length to at least" in errors[0]
