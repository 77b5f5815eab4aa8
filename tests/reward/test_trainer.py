"""RM training with the HF Trainer (full and LoRA), saving and loading, and the Table 1 ablation runner."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from tests.reward.conftest import pair_slice

from caig.reward.ablation import TABLE1_ROWS, run_ablation
from caig.reward.curriculum.config import (
    AdUtilityConfig,
    CurriculumConfig,
    SideWarmupConfig,
    TeacherConfig,
    check_curriculum,
)
from caig.reward.curriculum.stages import build_stages, curriculum_for_row, recorded
from caig.reward.data import Collator, encode_pairs
from caig.reward.io import load_reward_model
from caig.reward.model import RewardModel
from caig.reward.scoring import RewardScorer
from caig.reward.trainer import MeasuredStage, train_reward_model, train_stages


def test_full_training_learns_its_pairs_and_round_trips(
    tmp_path, tiny_model_dir, rm_config, train_pairs
) -> None:
    source = pair_slice(train_pairs, 16)
    config = dataclasses.replace(rm_config, epochs=60.0, template=0, learning_rate=3e-3, logging_steps=8)
    summary = train_reward_model(tiny_model_dir, source, config, tmp_path / "rm")
    curve = summary["loss_curve"]
    assert summary["pairs"] == 16 and summary["steps"] == 120 and len(curve) >= 3
    assert curve[-1]["loss"] < curve[0]["loss"]
    assert json.loads((tmp_path / "rm" / "train.json").read_text())["steps"] == 120
    scorer = RewardScorer.from_dir(tmp_path / "rm", device="cpu")
    p_left = scorer.prob_left(encode_pairs(source, scorer.processor, scorer.config))
    accuracy = np.mean((p_left > 0.5) == (source.pairs["label"] == "left").to_numpy())
    assert accuracy >= 0.8  # a trained RM fits the pairs it saw (an untrained one is at chance)


def test_lora_trains_only_adapters_and_heads_and_merges_on_save(
    tmp_path, tiny_model_dir, rm_config, train_pairs
) -> None:
    source = pair_slice(train_pairs, 8)
    config = dataclasses.replace(
        rm_config,
        method="lora",
        lora_r=4,
        lora_alpha=8,
        lora_dropout=0.0,
        learning_rate=1e-2,
        epochs=4.0,
    )
    train_reward_model(tiny_model_dir, source, config, tmp_path / "rm")
    model, processor, loaded = load_reward_model(tmp_path / "rm", device="cpu")
    assert loaded.method == "lora"
    names = [n for n, _ in model.named_parameters()]
    assert not any("lora_" in n for n in names)  # merged into plain Linear layers
    from caig.mllm.build import load_model

    base, _ = load_model(tiny_model_dir)
    base_params = dict(base.named_parameters())
    changed = {n for n, p in model.llava.named_parameters() if not torch.equal(p, base_params[n])}
    assert changed and all("language_model" in n for n in changed)  # vision tower and projector untouched
    assert any("q_proj" in n for n in changed)


def test_text_head_trains_and_scores(tmp_path, tiny_model_dir, rm_config, train_pairs) -> None:
    source = pair_slice(train_pairs, 8)
    config = dataclasses.replace(rm_config, head="text", point_weight=0.0)
    summary = train_reward_model(tiny_model_dir, source, config, tmp_path / "rm")
    assert summary["head"] == "text"
    scorer = RewardScorer.from_dir(tmp_path / "rm", device="cpu")
    p_left, p_swapped = scorer.score_source(source)
    assert p_left.shape == (8,) and np.all((p_left > 0) & (p_left < 1))
    examples = encode_pairs(source, scorer.processor, scorer.config)
    out = scorer.model(**{k: v for k, v in Collator(0)(examples).items() if k not in ("labels", "ctr")})
    assert out["lm_logits"].shape[1] == len(scorer.processor.tokenizer)


def test_ablation_writes_table1(tmp_path, tiny_model_dir, rm_config, train_pairs) -> None:
    train, test = (
        pair_slice(train_pairs, 8),
        pair_slice(train_pairs, 16, start=8),
    )
    config = dataclasses.replace(rm_config, ablation_seeds=[0, 1], ablation_rows=[0, 5])
    rows = (TABLE1_ROWS[0], TABLE1_ROWS[-1])
    table = run_ablation(config, tiny_model_dir, tiny_model_dir, train, test, tmp_path / "abl", ceiling=0.8)
    assert [r["row"] for r in table["rows"]] == [rows[0].name, rows[1].name]
    assert [r["index"] for r in table["rows"]] == [0, 5]
    first = table["rows"][0]
    assert [r["seed"] for r in first["runs"]] == [0, 1]
    assert first["pair_accuracy_min"] <= first["pair_accuracy_mean"] <= first["pair_accuracy_max"]
    assert json.loads((tmp_path / "abl" / "ablation.json").read_text())["ceiling"] == 0.8
    md = (tmp_path / "abl" / "ablation.md").read_text()
    assert (
        md.count("\n| ") == 2
        and md.startswith("| E-commerce pre-training")
        and "✗ | ✗ | ✗ | ✗ | ✗" in md
        and "✓ | ✓ | ✓ | ✓ | ✓" in md
    )
    rm_json = json.loads((tmp_path / "abl" / "row0" / "seed1" / "rm.json").read_text())
    assert rm_json["reward"]["head"] == "text" and rm_json["reward"]["use_caption"] is False
    assert (tmp_path / "abl" / "row5" / "seed0" / "rm.json").exists()  # the row's Table 1 index names it
    margin = table["rows"][1]["pair_accuracy_mean"] - first["pair_accuracy_mean"]
    assert table["full_minus_base"] == pytest.approx(margin)
    assert table["full_beats_base_beyond_spread"] == (margin > table["max_seed_spread"])
    assert first["skill_mean"] == pytest.approx((first["pair_accuracy_mean"] - 0.5) / 0.3)


def test_ablation_seeds_side_by_side_give_the_table_of_one_after_another(
    tmp_path, tiny_model_dir, rm_config, train_pairs
) -> None:
    train, test = (
        pair_slice(train_pairs, 8),
        pair_slice(train_pairs, 24, start=8),
    )
    config = dataclasses.replace(rm_config, ablation_seeds=[0, 1], ablation_rows=[0, 5])
    tables = [
        run_ablation(dataclasses.replace(config, ablation_jobs=jobs), tiny_model_dir, tiny_model_dir, train, test,
                     tmp_path / f"jobs{jobs}", ceiling=0.8)
        for jobs in (1, 2)
    ]  # fmt: skip
    for one, side_by_side in zip(tables[0]["rows"], tables[1]["rows"], strict=True):
        assert [r["seed"] for r in side_by_side["runs"]] == [0, 1]
        for a, b in zip(one["runs"], side_by_side["runs"], strict=True):
            for key in ("pair_accuracy", "pair_accuracy_one_order", "swap_disagreement"):
                assert a[key] == pytest.approx(b[key]), key
    assert (tmp_path / "jobs2" / "row5" / "seed1" / "rm.json").exists()
    with pytest.raises(ValueError, match="ablation_jobs"):
        dataclasses.replace(config, ablation_jobs=0)


def test_ablation_rows_without_the_point_loss_train_no_ctr_regression(rm_config) -> None:
    """The text head has no CTR branch, and a row without the point loss trains none: the curriculum stages
    that regress the CTR head go off with Eq. 7's MSE; the full row keeps the profile's."""
    full = CurriculumConfig(
        ad_utility=AdUtilityConfig(enabled=True),
        teacher=TeacherConfig(enabled=True, utility_weight=1.0),
    )
    for row in TABLE1_ROWS[:-1]:
        config, curriculum = row.reward_config(rm_config, seed=3), curriculum_for_row(full, row)
        assert config.point_weight == 0 and not curriculum.ad_utility.enabled
        assert curriculum.teacher.utility_weight == 0 and curriculum.teacher.enabled and config.seed == 3
        check_curriculum(config, curriculum)  # the text head's rows train
    last, curriculum = (
        TABLE1_ROWS[-1].reward_config(rm_config, seed=0),
        curriculum_for_row(full, TABLE1_ROWS[-1]),
    )
    assert (
        curriculum.ad_utility.enabled
        and curriculum.teacher.utility_weight == 1.0
        and last.point_weight == rm_config.point_weight
    )


def test_text_head_refuses_the_ctr_stages(rm_config) -> None:
    text = dataclasses.replace(rm_config, head="text", point_weight=0.0)
    with pytest.raises(ValueError, match="ad_utility.enabled=false"):
        check_curriculum(text, CurriculumConfig(ad_utility=AdUtilityConfig(enabled=True)))
    with pytest.raises(ValueError, match="teacher.utility_weight=0"):
        check_curriculum(text, CurriculumConfig(teacher=TeacherConfig(utility_weight=0.5)))


@pytest.mark.parametrize("rows", [[], [5, 0], [0, 6], [1, 1]])
def test_ablation_rows_are_checked(rm_config, rows) -> None:
    with pytest.raises(ValueError, match="ablation_rows"):
        dataclasses.replace(rm_config, ablation_rows=rows)


def test_head_lr_scale_gives_the_heads_their_own_rate(tiny_model_dir, rm_config) -> None:

    from caig.mllm.build import load_model
    from caig.reward.config import RewardRecipeConfig
    from caig.reward.model import build_reward_model
    from caig.reward.trainer import head_scaled_optimizer

    llava, processor = load_model(tiny_model_dir)
    model = build_reward_model(llava, processor, rm_config)
    assert head_scaled_optimizer(model, rm_config) is None  # scale 1: the Trainer's own AdamW
    config = dataclasses.replace(rm_config, recipe=RewardRecipeConfig(head_lr_scale=10.0))
    optimizer = head_scaled_optimizer(model, config)
    rest, heads = optimizer.param_groups
    assert heads["lr"] == pytest.approx(10 * config.learning_rate) and rest["lr"] == config.learning_rate
    assert {id(p) for p in heads["params"]} == {id(model.cls_head.weight), id(model.ctr_head.weight)}
    n_trainable = sum(1 for p in model.parameters() if p.requires_grad)
    assert len(rest["params"]) + len(heads["params"]) == n_trainable
    with pytest.raises(ValueError, match="head_lr_scale"):
        RewardRecipeConfig(head_lr_scale=0.0)


def test_swap_average_cancels_what_does_not_depend_on_the_order() -> None:
    from caig.reward.trainer import swap_average

    ab = torch.tensor([[2.0, 1.0], [0.0, 3.0]])
    same = swap_average(torch.cat([ab, ab]), 2)  # an order-blind model: both orders give the same outputs
    assert torch.allclose(same[:, 0], same[:, 1])  # no preference left
    mirrored = swap_average(torch.cat([ab, ab.flip(-1)]), 2)  # a swap-consistent model keeps its scores
    assert torch.equal(mirrored, ab)


def test_swap_consistent_training_batches_both_orders_and_trains(
    tmp_path, tiny_model_dir, rm_config, train_pairs
) -> None:

    from caig.reward.config import RewardRecipeConfig
    from caig.reward.data import SwapPairCollator

    source = pair_slice(train_pairs, 8)
    config = dataclasses.replace(
        rm_config, recipe=RewardRecipeConfig(swap_consistent_training=True), template=0, epochs=2.0
    )
    summary = train_reward_model(tiny_model_dir, source, config, tmp_path / "rm")
    assert summary["pairs"] == 8 and summary["steps"] == 2  # 8 pairs per step, each in both orders
    scorer = RewardScorer.from_dir(tmp_path / "rm", device="cpu")
    ab = encode_pairs(source, scorer.processor, config, seed=0)
    ba = encode_pairs(source, scorer.processor, config, swap=True, seed=0)
    batch = SwapPairCollator(Collator(scorer.processor.tokenizer.pad_token_id))(
        [{"ab": x, "ba": y} for x, y in zip(ab[:3], ba[:3])]
    )
    assert int(batch["swap_pairs"]) == 3 and batch["input_ids"].shape[0] == 6
    assert torch.equal(batch["labels"][3:], 1 - batch["labels"][:3])  # the swapped rows' labels flip
    assert torch.equal(batch["ctr"][3:], batch["ctr"][:3].flip(-1))
    with pytest.raises(ValueError, match="swap_consistent_training"):
        RewardRecipeConfig(swap_consistent_training=True, train_both_orders=True)


def test_curriculum_runs_warmup_then_teacher_then_pairs_on_one_model(
    tmp_path, monkeypatch, tiny_model_dir, rm_config, train_pairs, small_world_dir
) -> None:
    config = rm_config
    curriculum = CurriculumConfig(
        side_warmup=SideWarmupConfig(enabled=True, max_pairs=24, epochs=1.0),
        teacher=TeacherConfig(
            enabled=True, epochs=0.2, min_df=1, borrowed_per_product=2, pairs_per_product=6
        ),
    )
    source = pair_slice(train_pairs, 16)
    monkeypatch.chdir(small_world_dir.parent)  # a relative --world, as users type it
    relative = Path(small_world_dir.name)
    seen = []

    def after_stage(name, model, processor, stage_config):  # e.g. rm_skill.py --stage-skill's scoring
        seen.append((name, stage_config.learning_rate))
        assert isinstance(model, RewardModel) and model.training  # the model itself, mid-curriculum
        model.eval()  # as a RewardScorer does: the trainer puts it back into training mode
        return {"order": len(seen)}

    stages = build_stages(source, config, curriculum, relative, tmp_path / "rm")
    measured = [MeasuredStage(stage, after_stage) for stage in stages]
    summary = train_stages(tiny_model_dir, measured, config, tmp_path / "rm", recorded(curriculum))
    stages = {s["stage"]: s for s in summary["stages"]}
    assert list(stages) == ["side-warmup", "teacher", "pairs"]
    assert [name for name, _ in seen] == ["side-warmup", "teacher", "pairs"]
    assert seen[0][1] == 1e-3  # each stage's own config
    assert [s["after_stage"] for s in summary["stages"]] == [{"order": 1}, {"order": 2}, {"order": 3}]
    assert stages["side-warmup"]["pairs"] <= 24 and stages["side-warmup"]["learning_rate"] == 1e-3
    creatives = pd.read_parquet(small_world_dir / "creatives.parquet")
    assert stages["teacher"]["pairs"] == 6 * creatives["product_id"].nunique()  # pairs_per_product, one order
    borrowed = sorted((tmp_path / "rm" / "borrowed").glob("B*.png"))
    assert len(borrowed) == 2 * creatives["product_id"].nunique()  # rendered around every product
    assert summary["pairs"] == 16 and summary["steps"] == stages["pairs"]["steps"]


def test_encoding_each_batch_as_drawn_trains_the_same_rm(
    tmp_path, tiny_model_dir, rm_config, train_pairs
) -> None:
    """Above ``encode_up_front_gb`` the recipes are encoded per batch: same batches, so the same model."""
    source = pair_slice(train_pairs, 8)
    config = dataclasses.replace(rm_config, epochs=2.0, template=0, learning_rate=3e-3)
    scores = []
    for name, limit in (("up_front", 4.0), ("per_batch", 0.0)):
        train_reward_model(
            tiny_model_dir, source, dataclasses.replace(config, encode_up_front_gb=limit), tmp_path / name
        )
        scorer = RewardScorer.from_dir(tmp_path / name, device="cpu")
        scores.append(scorer.score_source(source))
    np.testing.assert_allclose(scores[0], scores[1], atol=1e-5)
    assert np.abs(scores[0][0] - 0.5).max() > 1e-3  # it trained: the test can tell two models apart
