"""The tiny RM's skill on a held-out world seed, mean and spread over training seeds (issue 6's must-show).

Training pairs come from the logs of ``--train-world`` with the RM's TRAINING rule (``reward.train_pairs``);
test pairs from the logs of ``--test-world`` (another world seed of the same market) with the paper's TEST
rule (``data.pairs``). For each training seed: the profile's curriculum and the logged pairs from ``--model``
(``caig.reward.curriculum.stages.build_stages``, ``caig.reward.trainer.train_stages``), then both-order
scoring of the test pairs. The ceiling is the test world's Bayes pair accuracy (the oracle, evaluation only);
``skill = (pair_accuracy - 0.5) / (ceiling - 0.5)``. Writes ``rm_skill.json``.

    .venv/bin/python benchmarks/rm_skill.py --model PM_DIR/model --train-world TRAIN_WORLD \
        --test-world WORLD_SEED1 --work /tmp/rm-skill --out benchmarks/results [--set reward.epochs=2]

``--stage-skill`` also scores the test (and broad) pairs after every curriculum stage, with the classification
head and with the CTR head's margin (``RewardScorer.score_source_with_margin``): where the curriculum gains and loses.

Seeds side by side on several cores: one process per ``--seeds N --name rm_skill_sN``, then the same command
with ``--runs-from rm_skill_s0.json rm_skill_s1.json rm_skill_s2.json`` writes the aggregate.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from provenance import provenance

from caig.data.config import PairRuleConfig
from caig.data.event_pairs import pairs_from_events
from caig.logs import setup_logging
from caig.profile import load_profile
from caig.reward.config import RewardConfig
from caig.reward.curriculum.config import CurriculumConfig
from caig.reward.curriculum.stages import build_stages, recorded, trained_curriculum
from caig.reward.data import PairSource, attach_sources
from caig.reward.evaluate import score_and_measure, world_ceiling
from caig.reward.io import load_reward_config, load_reward_model
from caig.reward.metrics import pair_metrics, skill
from caig.reward.scoring import RewardScorer
from caig.reward.trainer import MeasuredStage, train_stages
from caig.typed_config import as_dict


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True, help="starting model (pre-trained or base)")
    parser.add_argument("--train-world", type=Path, required=True)
    parser.add_argument("--test-world", type=Path, required=True)
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--profile", default="local")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument(
        "--broad-pairs",
        type=int,
        default=1500,
        help="also score this many test-world pairs drawn by the TRAINING rule (larger CTR gaps, less noisy); 0: off",
    )
    parser.add_argument("--name", default="rm_skill", help="result file name (without .json)")
    parser.add_argument(
        "--rescore",
        action="store_true",
        help="score the RMs already trained in --work/seedN (their train.json; an error where there is none) "
        "instead of training them again, e.g. on another --test-world",
    )
    parser.add_argument(
        "--shared",
        type=Path,
        help="keep and reuse borrowed renders and perceived towers here (caig.reward.curriculum.shared), e.g. "
        "across the processes of two Table 1 rows of one seed",
    )
    parser.add_argument(
        "--runs-from",
        type=Path,
        nargs="+",
        default=[],
        help="aggregate the runs of these result files (one seed each, run side by side) instead of training",
    )
    parser.add_argument(
        "--stage-skill",
        action="store_true",
        help="score the test (and broad) pairs after every curriculum stage too, with both heads",
    )
    args = parser.parse_args()
    setup_logging()
    profile = load_profile(args.profile, args.overrides)
    train_pairs, train_counts = pairs_from_events(args.train_world, profile.reward.train_pairs)
    test_pairs, _ = pairs_from_events(args.test_world, profile.data.pairs)
    train, test = attach_sources(train_pairs, args.train_world), attach_sources(test_pairs, args.test_world)
    ceiling = world_ceiling(args.test_world, test.pairs)
    broad = broad_pairs(args.test_world, profile.reward.train_pairs, args.broad_pairs)
    broad_ceiling = world_ceiling(args.test_world, broad.pairs) if broad else None
    runs = [run for path in args.runs_from for run in json.loads(path.read_text())["runs"]]
    for seed in [] if runs else (int(s) for s in args.seeds.split(",")):
        config = replace(profile.reward, seed=seed)
        rm_dir = args.work / f"seed{seed}"
        if args.rescore:  # trained already: score it on this test world
            check_same_config(rm_dir, config, profile.curriculum)
            summary = json.loads((rm_dir / "train.json").read_text())
        else:
            stages = build_stages(
                train,
                config,
                profile.curriculum,
                args.train_world,
                rm_dir,
                args.shared,
                start_model=args.model,
            )
            if args.stage_skill:  # scored after every stage that trains the heads (not perception's)
                measure = stage_skill({"test": (test, ceiling), "broad": (broad, broad_ceiling)})
                stages = [s if s.name == "perception" else MeasuredStage(s, measure) for s in stages]
            summary = train_stages(args.model, stages, config, rm_dir, recorded(profile.curriculum))
        scorer = RewardScorer(*load_reward_model(rm_dir))
        metrics, _ = score_and_measure(scorer, test, ceiling)
        if broad:
            broad_metrics, _ = score_and_measure(scorer, broad, broad_ceiling)
            metrics |= {f"broad_{k}": broad_metrics[k] for k in ("pair_accuracy", "skill", "pairs")}
        stages = [{k: v for k, v in s.items() if k != "loss_curve"} for s in summary["stages"]]
        runs.append(
            {
                "seed": seed,
                "train_seconds": summary["seconds"],
                "final_ce": _final_ce(summary),
                **metrics,
                "stages": stages,
            }
        )
        print(json.dumps(runs[-1]), flush=True)
    skills = np.array([r["skill"] for r in runs])
    accuracy = np.array([r["pair_accuracy"] for r in runs])
    result = {
        **provenance(),
        "model": args.model.name,
        "profile": args.profile,
        "train_world": json.loads((args.train_world / "world.json").read_text())["seed"],
        "test_world": json.loads((args.test_world / "world.json").read_text())["seed"],
        "train_pairs": len(train.pairs),
        "train_pair_counts": train_counts,
        "test_pairs": len(test.pairs),
        "ceiling": ceiling,
        "pair_accuracy_mean": float(accuracy.mean()),
        "skill_mean": float(skills.mean()),
        "skill_min": float(skills.min()),
        "skill_max": float(skills.max()),
        "skill_spread": float(skills.max() - skills.min()),
        "swap_disagreement_mean": float(np.mean([r["swap_disagreement"] for r in runs])),
        "broad_skill_mean": _mean(runs, "broad_skill"),
        "broad_ceiling": broad_ceiling,
        "goal": "skill_mean >= 0.6",
        "runs": runs,
        "reward_config": as_dict(profile.reward),
        "curriculum_config": as_dict(profile.curriculum),
        "overrides": args.overrides,
        "device": torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu",
        "torch": torch.__version__,
        "cpu_count": os.cpu_count(),
        "load_average_end": os.getloadavg()[0],
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{args.name}.json").write_text(json.dumps(result, indent=2))
    print(json.dumps({k: v for k, v in result.items() if k not in ("runs", "reward_config")}, indent=2))


def check_same_config(rm_dir: Path, config: RewardConfig, curriculum: CurriculumConfig) -> None:
    """``--rescore`` records this command's settings: refuse an RM trained with others (names the keys)."""
    if not (rm_dir / "train.json").is_file():
        raise SystemExit(
            f"--rescore: {rm_dir} holds no trained RM (train.json); run without --rescore to train it"
        )
    trained = as_dict(load_reward_config(rm_dir)) | as_dict(trained_curriculum(rm_dir))
    wanted = as_dict(config) | as_dict(curriculum)
    differ = sorted(k for k, v in trained.items() if wanted[k] != v)
    if differ:
        raise SystemExit(
            f"{rm_dir} was trained with other reward settings ({', '.join(differ)}): pass its --set"
        )


def stage_skill(sets: dict[str, tuple[PairSource | None, float | None]]):
    """A ``MeasuredStage`` measurement: each pair set's accuracy and skill by the classification head (both
    orders) and by the CTR head's margin, after a curriculum stage."""

    def measure(name: str, model: Any, processor: Any, config: RewardConfig) -> dict[str, Any]:
        scorer = RewardScorer(model, processor, config)
        measured: dict[str, Any] = {}
        for set_name, (source, ceiling) in sets.items():
            if source is None:
                continue
            p_left, p_swapped, margin = scorer.score_source_with_margin(source)  # one pass per order
            labels_left = (source.pairs["label"] == "left").to_numpy()
            metrics = pair_metrics(p_left, p_swapped, labels_left)
            metrics["skill"] = skill(metrics["pair_accuracy"], ceiling)
            ctr_accuracy = float(((margin > 0) == labels_left).mean())
            measured[set_name] = {
                "cls_pair_accuracy": round(metrics["pair_accuracy"], 4),
                "cls_skill": _round(metrics["skill"]),
                "ctr_pair_accuracy": round(ctr_accuracy, 4),
                "ctr_skill": _round(skill(ctr_accuracy, ceiling)),
            }
        print(json.dumps({"after_stage": name, **measured}), flush=True)
        return measured

    return measure


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def broad_pairs(test_world: Path, rule: PairRuleConfig, n: int) -> PairSource | None:
    """Up to ``n`` test-world pairs by the training rule (a seeded sample), or None for ``n`` = 0."""
    if n <= 0:
        return None
    pairs, _ = pairs_from_events(test_world, rule)
    return attach_sources(pairs.sample(n=min(n, len(pairs)), random_state=0), test_world)


def _mean(runs: list[dict], key: str) -> float | None:
    values = [r[key] for r in runs if r.get(key) is not None]
    return float(np.mean(values)) if values else None


def _final_ce(summary: dict) -> float | None:
    """The last logged classification loss (ln 2 = 0.693 means the RM learnt nothing about the order)."""
    ce = [e["ce"] for e in summary["loss_curve"] if "ce" in e]
    return ce[-1] if ce else None


if __name__ == "__main__":
    main()
