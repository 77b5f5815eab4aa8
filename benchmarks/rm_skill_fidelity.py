"""What `skill >= 0.6` demands: how closely an ad's score must follow its TRUE CTR. ORACLE ANALYSIS ONLY.

The issue's goal is measured on the paper's test pairs (``data.pairs``: both ads' CTRs within 20% of each
other). This benchmark asks how good any per-ad utility must be to rank them, whatever produced it. On the
held-out world's creatives it takes the true log-odds CTR (the oracle, over the segment mix), centred within
each product (a pair compares two ads of one product), and

- ``curve``: adds Gaussian noise so that the utility correlates ``r`` with the truth within product, and
  scores the test and broad pairs (mean and standard deviation over ``--draws`` noise draws);
  ``r_needed_for_skill_0_6`` interpolates where the test skill crosses 0.6;
- ``references``: places utilities on that scale by their own within-product correlation with the truth:
  the words of each ad fitted to the training world's true CTRs (``words_fit_to_true_ctr``: a ridge on the
  description teacher's features, i.e. the best a words x category / colour model could learn from unlimited
  logs), the two description teachers fitted on the training world's logs (``pairs``, ``ctr``), and, for every
  ``--probabilities`` reader kept by ``rm_perception_bound.py --keep``, the ``ctr`` teacher composing the
  words it read (``_read``) and its probabilities (``_soft``); for every ``--rm``, its CTR head's utility of
  each held-out ad shown alone with its product's prompt (the ad-utility stage's reading, both outputs averaged).

Nothing here trains or feeds a model: the oracle is read only to measure (it never leaves this script).
Writes ``NAME.json``.

    .venv/bin/python benchmarks/rm_skill_fidelity.py --train-world W10 --test-world W1BIG \
        --out benchmarks/results [--probabilities READERS/tower_32px_tiny_tower.npz] [--rm RM]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.linear_model import Ridge

sys.path.insert(0, str(Path(__file__).resolve().parent))

from provenance import provenance  # noqa: E402
from rm_perception_bound import kept_probabilities, pair_accuracy  # noqa: E402

from caig.data.event_pairs import pairs_from_events  # noqa: E402
from caig.logs import setup_logging  # noqa: E402
from caig.profile import load_profile  # noqa: E402
from caig.reward.curriculum.ad_utility import ad_recipes  # noqa: E402
from caig.reward.curriculum.ads import creatives_with_products  # noqa: E402
from caig.reward.curriculum.teacher import DescriptionTeacher, fit_teacher  # noqa: E402
from caig.reward.evaluate import world_ceiling  # noqa: E402
from caig.reward.io import load_reward_model  # noqa: E402
from caig.reward.metrics import skill  # noqa: E402
from caig.reward.scoring import RewardScorer  # noqa: E402
from caig.world.loaded import load_world  # noqa: E402

CORRELATIONS = (1.0, 0.995, 0.99, 0.98, 0.97, 0.96, 0.95, 0.93, 0.9, 0.85, 0.8, 0.75, 0.7)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-world", type=Path, required=True)
    parser.add_argument("--test-world", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--name", default="rm_skill_fidelity", help="result file name (without .json)")
    parser.add_argument("--profile", default="local")
    parser.add_argument("--draws", type=int, default=20, help="noise draws per point of the curve")
    parser.add_argument("--ridge-alpha", type=float, default=1.0, help="words_fit_to_true_ctr's ridge")
    parser.add_argument(
        "--probabilities", type=Path, action="append", default=[], help="a reader kept by rm_perception_bound"
    )
    parser.add_argument(
        "--rm", type=Path, action="append", default=[], help="an RM directory (caig rm train)"
    )
    args = parser.parse_args()
    setup_logging()
    started = time.perf_counter()
    profile = load_profile(args.profile, [])
    reward = profile.reward
    splits = {"test": profile.data.pairs, "broad": reward.train_pairs}
    pairs = {name: pairs_from_events(args.test_world, rule)[0] for name, rule in splits.items()}
    ceilings = {name: world_ceiling(args.test_world, p) for name, p in pairs.items()}
    test_ads = creatives_with_products(args.test_world)
    truth = within_product(true_log_odds(args.test_world, test_ads), test_ads)

    def measured(utility: np.ndarray) -> dict[str, float]:
        row = {
            "r_within_product": round(float(np.corrcoef(within_product(utility, test_ads), truth)[0, 1]), 4)
        }
        for name, split in pairs.items():
            accuracy = pair_accuracy(utility, test_ads.index, split)
            row[f"{name}_pair_accuracy"] = round(accuracy, 4)
            row[f"{name}_skill"] = round(skill(accuracy, ceilings[name]), 4)
        return row

    rng = np.random.default_rng(0)
    curve = []
    for r in CORRELATIONS:
        noise = truth.std() * np.sqrt(1 / r**2 - 1)
        draws = [measured(truth + rng.normal(0.0, noise, len(truth))) for _ in range(args.draws)]
        point = {"r": r}
        for key in ("test_skill", "broad_skill"):
            values = [d[key] for d in draws]
            point[key] = round(float(np.mean(values)), 4)
            point[f"{key}_sd"] = round(float(np.std(values)), 4)
        curve.append(point)
        print(json.dumps(point), flush=True)

    train_ads = creatives_with_products(args.train_world)
    train_pairs, _ = pairs_from_events(args.train_world, reward.train_pairs)
    teachers = {
        t: fit_teacher(train_pairs, train_ads, replace(profile.curriculum.teacher, target=t))
        for t in ("pairs", "ctr")
    }
    references = {
        "words_fit_to_true_ctr": measured(
            words_fit_to_truth(teachers["ctr"], args.train_world, train_ads, test_ads, args.ridge_alpha)
        )
    }
    for target, teacher in teachers.items():
        references[f"{target}_teacher_exact_words"] = measured(
            teacher.utility(test_ads["description"], test_ads)
        )
    for path in args.probabilities:
        probabilities = kept_probabilities(path, test_ads.index)
        for reading, words in (("read", probabilities > 0.5), ("soft", probabilities)):
            utility = teachers["ctr"].utility_of_words(words.astype(np.float32), test_ads)
            references[f"{path.stem}_ctr_teacher_{reading}"] = measured(utility)
    for rm_dir in args.rm:
        references[f"rm_{rm_dir.name}_ctr_head_single_ads"] = measured(
            rm_single_ad_utility(rm_dir, args.test_world, test_ads)
        )
    for name, row in references.items():
        print(json.dumps({"reference": name, **row}), flush=True)
    result = {
        **provenance(),
        "analysis": "ORACLE: evaluation only; nothing trains on it",
        "profile": args.profile,
        "rms": [f"{p.parent.name}/{p.name}" for p in args.rm],
        "readers": [p.name for p in args.probabilities],
        "train_world": json.loads((args.train_world / "world.json").read_text())["seed"],
        "test_world": json.loads((args.test_world / "world.json").read_text())["seed"],
        "pairs": {name: len(p) for name, p in pairs.items()},
        "ceilings": ceilings,
        "draws": args.draws,
        "curve": curve,
        "r_needed_for_skill_0_6": r_needed(curve, 0.6),
        "references": references,
        "ridge_alpha": args.ridge_alpha,
        "seconds": round(time.perf_counter() - started, 1),
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{args.name}.json").write_text(json.dumps(result, indent=2))


def true_log_odds(world_dir: Path, ads: pd.DataFrame) -> np.ndarray:
    """ORACLE: each ad's true CTR over the segment mix, as log-odds."""
    world = load_world(world_dir)
    p = np.array([world.true_ctr(pid, d) for pid, d in zip(ads["product_id"], ads["description"])])
    return np.log(p / (1 - p))


def within_product(values: np.ndarray, ads: pd.DataFrame) -> np.ndarray:
    """``values`` (one row per ad: a vector or a feature matrix) minus their product's mean: what a pair of
    one product's ads compares."""
    frame = pd.DataFrame(values)
    centred = frame - frame.groupby(ads["product_id"].to_numpy()).transform("mean")
    return centred.to_numpy().reshape(np.shape(values))


def words_fit_to_truth(
    teacher: DescriptionTeacher,
    train_world: Path,
    train_ads: pd.DataFrame,
    test_ads: pd.DataFrame,
    alpha: float,
) -> np.ndarray:
    """ORACLE: the teacher's features (words, category x words, colour x words) ridge-fitted to the training
    world's true log-odds within product: the most a words model could take from unlimited logs."""
    features = within_product(teacher.features(train_ads["description"], train_ads).toarray(), train_ads)
    target = within_product(true_log_odds(train_world, train_ads), train_ads)
    model = Ridge(alpha=alpha, fit_intercept=False).fit(features, target)
    return np.asarray(teacher.features(test_ads["description"], test_ads) @ model.coef_).ravel()


def rm_single_ad_utility(rm_dir: Path, world_dir: Path, ads: pd.DataFrame) -> np.ndarray:
    """A trained RM's utility of each ad alone: its CTR head's two outputs, averaged (``held_out_fit``'s
    reading), with the product's RM prompt."""
    model, processor, config = load_reward_model(rm_dir)
    products = pd.read_parquet(world_dir / "catalog.parquet").set_index("product_id")
    single = pd.DataFrame(
        {
            "product_id": ads["product_id"],
            "image_path": [str(world_dir / p) for p in ads["image_path"]],
            "utility": 0.0,
        },
        index=ads.index,
    )
    recipes = ad_recipes(single, products, processor, config, seed=None)
    return RewardScorer(model, processor, config).recipe_heads(recipes)[1].mean(axis=1)


def r_needed(curve: list[dict], target: float) -> float | None:
    """The within-product correlation at which the curve's test skill crosses ``target`` (linear between
    points), or None if it never does."""
    points = sorted((p["r"], p["test_skill"]) for p in curve)
    for (r0, s0), (r1, s1) in zip(points, points[1:]):
        if s0 < target <= s1:
            return round(r0 + (target - s0) * (r1 - r0) / (s1 - s0), 4)
    return None


if __name__ == "__main__":
    main()
