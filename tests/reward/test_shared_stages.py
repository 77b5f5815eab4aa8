"""Shared stages: RMs of one start model, data and seed reuse the perceived tower and the renders, and the RM
they give is the one training afresh gives."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from caig.reward.curriculum.config import CurriculumConfig, PerceptionConfig, TeacherConfig
from caig.reward.curriculum.jobs import train_with_curriculum
from caig.reward.curriculum.shared import fingerprint, load_perceived, shared_dir
from caig.reward.io import HEADS_FILE


@pytest.fixture(scope="module")
def shared_config(rm_config):
    """Perception and the teacher on, each with borrowed renders, everything short: (reward, curriculum)."""
    return dataclasses.replace(rm_config, epochs=0.1), CurriculumConfig(
        perception=PerceptionConfig(enabled=True, epochs=1.0, batch_size=64, borrowed_per_product=1),
        teacher=TeacherConfig(
            enabled=True, epochs=0.1, min_df=1, borrowed_per_product=1, pairs_per_product=2
        ),
    )


def _heads(rm_dir: Path) -> dict[str, torch.Tensor]:
    return load_file(str(rm_dir / HEADS_FILE))


def _vision(rm_dir: Path) -> dict[str, torch.Tensor]:
    weights = {}
    for path in sorted(rm_dir.glob("*.safetensors")):
        weights |= {k: v for k, v in load_file(str(path)).items() if "vision_tower" in k}
    return weights


def test_a_second_rm_reuses_the_tower_and_renders_and_ends_where_training_afresh_ends(
    tmp_path, tiny_model_dir, shared_config, train_pairs, small_world_dir
) -> None:
    shared = tmp_path / "shared"
    afresh = train_with_curriculum(
        tiny_model_dir, train_pairs, *shared_config, tmp_path / "a", small_world_dir
    )
    first = train_with_curriculum(
        tiny_model_dir, train_pairs, *shared_config, tmp_path / "b", small_world_dir, shared=shared
    )
    second = train_with_curriculum(
        tiny_model_dir, train_pairs, *shared_config, tmp_path / "c", small_world_dir, shared=shared
    )
    assert "reused_from" not in afresh["stages"][0] and "reused_from" not in first["stages"][0]
    assert second["stages"][0]["stage"] == "perception"
    assert Path(second["stages"][0]["reused_from"]).parent == shared
    assert len(list(shared.glob("perception-*"))) == 1
    assert len(list(shared.glob("borrowed-*"))) == 1  # perception's and the teacher's: one count, one seed
    assert not list(shared.glob("*.making-*"))  # every result moved into place
    assert second["stages"][0]["trained_seconds"] == first["stages"][0]["seconds"]
    assert not (tmp_path / "c" / "borrowed").exists()  # the teacher's renders came from the shared folder
    vision = [_vision(tmp_path / d) for d in "abc"]
    assert vision[0] and all(torch.equal(vision[0][k], v[k]) for v in vision[1:] for k in vision[0])
    heads = [_heads(tmp_path / d) for d in "abc"]
    for name in ("cls_head", "ctr_head"):
        assert torch.equal(heads[0][name], heads[1][name]) and torch.equal(heads[1][name], heads[2][name])


def test_another_seed_or_start_model_trains_its_own_tower(
    tmp_path, tiny_model_dir, shared_config, train_pairs, small_world_dir
) -> None:
    shared = tmp_path / "shared"
    reward, curriculum = shared_config
    curriculum = dataclasses.replace(curriculum, teacher=TeacherConfig())
    for seed in (0, 1):
        config = dataclasses.replace(reward, seed=seed)
        summary = train_with_curriculum(
            tiny_model_dir,
            train_pairs,
            config,
            curriculum,
            tmp_path / f"s{seed}",
            small_world_dir,
            shared=shared,
        )
        assert "reused_from" not in summary["stages"][0]
    assert len(list(shared.glob("perception-*"))) == 2
    assert len(list(shared.glob("borrowed-*"))) == 2  # renders depend on the seed
    other_model = shutil.copytree(tiny_model_dir, tmp_path / "pretrained")  # Table 1's other start model:
    weights = load_file(str(other_model / "model.safetensors"))  # the same shapes, other weights
    save_file(
        {k: v + 0.01 for k, v in weights.items()}, str(other_model / "model.safetensors"), {"format": "pt"}
    )
    config = reward
    summary = train_with_curriculum(
        other_model, train_pairs, config, curriculum, tmp_path / "p", small_world_dir, shared=shared
    )
    assert "reused_from" not in summary["stages"][0]  # its own tower ...
    assert len(list(shared.glob("perception-*"))) == 3
    assert len(list(shared.glob("borrowed-*"))) == 2  # ... from the same renders
    lora = dataclasses.replace(config, method="lora")  # LoRA freezes the tower: not the full RM's perception
    summary = train_with_curriculum(
        tiny_model_dir, train_pairs, lora, curriculum, tmp_path / "lora", small_world_dir, shared=shared
    )
    assert "reused_from" not in summary["stages"][0] and len(list(shared.glob("perception-*"))) == 4
    made = {"model": tiny_model_dir, "data": small_world_dir, "seed": 0}
    assert shared_dir(shared, "perception", **made) == shared_dir(shared, "perception", **made)
    assert shared_dir(shared, "perception", **made) != shared_dir(shared, "perception", **made | {"seed": 1})
    assert shared_dir(shared, "perception", **made) != shared_dir(
        shared, "perception", **made | {"model": Path(other_model)}
    )


def test_a_result_cut_off_half_way_is_not_read_and_a_rebuilt_model_is_not_the_same(tmp_path) -> None:
    making = tmp_path / "perception-x.making-123"  # a run killed before moving its result into place
    making.mkdir()
    (making / "perceived_tower.safetensors").write_bytes(b"half")
    assert load_perceived(object(), tmp_path / "perception-x") is None
    model = tmp_path / "model"
    model.mkdir()
    (model / "model.safetensors").write_bytes(b"weights")
    before = shared_dir(tmp_path, "perception", model=fingerprint(model))
    (model / "model.safetensors").write_bytes(b"other weights")  # caig pretrain again into the same folder
    assert shared_dir(tmp_path, "perception", model=fingerprint(model)) != before
