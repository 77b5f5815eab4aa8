"""Finding a server's models in the one run layout we write, and merging the last PCPO round's adapter."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from caig.errors import UserError
from caig.profile import load_profile
from caig.serving.locate import find_adapter, find_pm, find_rm, find_world


def test_run_layout(model_run: Path):
    assert find_pm(model_run) == model_run / "pm" / "model"
    assert find_rm(model_run) == model_run / "rm"
    assert find_world(model_run) == model_run / "world"
    assert find_adapter(model_run) is None


def test_another_layout_is_refused_in_one_line_naming_the_layout(model_run: Path, tmp_path: Path):
    """`caig run --local` links its steps' outputs into the one layout; steps.json alone is not read."""
    steps = {"pretrain-pm": {"pm": str(model_run / "pm")}, "train-rm": {"rm": str(model_run / "rm")}}
    (tmp_path / "steps.json").write_text(json.dumps(steps))
    (tmp_path / "pretrain").mkdir()
    (tmp_path / "pretrain" / "model").symlink_to(model_run / "pm" / "model")
    for find in (find_pm, find_rm):
        with pytest.raises(UserError) as refused:
            find(tmp_path)
        message = str(refused.value)
        assert "\n" not in message and "expected the run layout RUN/world/" in message
        assert "RUN/pm/model/ (config.json)" in message and "RUN/rm/ (rm.json)" in message
    assert find_world(tmp_path) is None
    for name in ("pm", "rm", "world"):
        (tmp_path / name).symlink_to(model_run / name)
    assert find_pm(tmp_path) == tmp_path / "pm" / "model"
    assert find_rm(tmp_path) == tmp_path / "rm"
    assert find_world(tmp_path) == tmp_path / "world"


def test_explicit_models_and_errors(model_run: Path, tmp_path: Path):
    assert find_pm(tmp_path, f"file://{model_run / 'pm' / 'model'}") == model_run / "pm" / "model"
    assert find_rm(tmp_path, str(model_run / "rm")) == model_run / "rm"
    with pytest.raises(UserError, match="no prompt model found"):
        find_pm(tmp_path)
    with pytest.raises(UserError, match="no reward model found"):
        find_rm(tmp_path)
    with pytest.raises(UserError, match="remote URI"):
        find_pm(tmp_path, "s3://bucket/pm")
    with pytest.raises(UserError, match="rm.json"):
        find_rm(tmp_path, str(model_run / "pm" / "model"))


def test_pcpo_output_alone_serves_base_plus_last_round(model_run: Path, tmp_path: Path):
    """What the training pipeline registers: pm/model and the PCPO output under pcpo/; the last round is merged."""
    from peft import LoraConfig, get_peft_model

    from caig.mllm.build import load_model
    from caig.serving.pm_service import PromptService

    base, _ = load_model(model_run / "pm" / "model")
    peft = get_peft_model(base, LoraConfig(r=2, lora_alpha=4, target_modules=["q_proj"]))
    for name, param in peft.named_parameters():
        if "lora_B" in name:
            torch.nn.init.normal_(param, std=0.5)  # B starts at zero: make the adapter change something
    for r in (1, 2):
        peft.save_pretrained(tmp_path / "pcpo" / f"round-0{r}" / "adapter")
        (tmp_path / "pcpo" / f"round-0{r}" / "round.json").write_text("{}")
    (tmp_path / "pm").symlink_to(model_run / "pm")
    assert find_adapter(tmp_path) == tmp_path / "pcpo" / "round-02" / "adapter"
    assert find_pm(tmp_path) == tmp_path / "pm" / "model"

    profile = load_profile("local")
    merged = PromptService.from_run(profile, tmp_path).model
    plain_base, _ = load_model(model_run / "pm" / "model")
    key = next(k for k in plain_base.state_dict() if k.endswith("q_proj.weight") and "language_model" in k)
    assert not torch.allclose(merged.state_dict()[key], plain_base.state_dict()[key])
    off = load_profile("local", ["serving.pm_adapter=none"])
    unmerged = PromptService.from_run(off, tmp_path).model
    assert torch.allclose(unmerged.state_dict()[key], plain_base.state_dict()[key])
