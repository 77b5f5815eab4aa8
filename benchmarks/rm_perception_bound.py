"""How well must the RM see? The description teacher's pair accuracy when it reads words PREDICTED from pixels.

The description teacher (``caig.reward.curriculum.teacher``, fitted on the training world's logs) ranks the held-out
world's test pairs well from the creatives' own words (skill 0.73 on 260 pairs, 0.62 / 0.69 on 2,667 by
its two targets). An image RM can do no better
than its reading of those words. This benchmark trains word readers on the training world's ads and feeds
the words they read on the held-out world's ads to the teacher (with the product's category and colour, as
the teacher uses them):

- ``words``: the creatives' own descriptions (the reference);
- ``tiny_tower``: the RM's own vision tower and projector after ``curriculum.perception`` (``train_perception``
  from ``--model``, with ``curriculum.perception.borrowed_per_product`` backgrounds when set), read by its word probe;
- ``cnn``: a small convolutional net on the same ``image_side`` pixels (a diagnostic of what the pixels
  allow, not a part of the RM).

Per reader: word F1 on the held-out world (and its 12 worst words), the correlation of its utilities with the
reference's, and pair accuracy and skill on the test pairs (``data.pairs``) and on the broader pairs of the
training rule, with the words composed by both teachers (``curriculum.teacher.target``: ``pairs``, keys
unprefixed, and ``ctr``, keys ``ctr_...``), from the words read (probability > 0.5) and, keys ``soft_...``,
from the reader's probabilities: the teacher's utility is linear in the words, so composing the probabilities
gives the expected utility given the pixels, which is what an RM regressing that utility can at best learn.
The ceiling is the oracle's Bayes pair accuracy (evaluation only). Writes ``rm_perception_bound.json``
(``--name``); ``--cnn-epochs 0`` skips the CNN, ``--no-tower`` the tiny tower, ``--keep DIR`` also saves the
readers' probabilities and ``--probabilities FILE`` measures a saved reader again. ``test_skill_one_group_read``:
the test skill when one term group's words are the reader's and the rest exact (where the reading costs).

    .venv/bin/python benchmarks/rm_perception_bound.py --model TINY_BASE --train-world WBIG \
        --test-world W1 --out benchmarks/results
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from provenance import provenance
from torch import nn
from tqdm import tqdm

from caig.data.event_pairs import pairs_from_events
from caig.logs import setup_logging
from caig.mllm.build import load_model
from caig.profile import load_profile
from caig.reward.config import RewardConfig
from caig.reward.curriculum.ads import creatives_with_products
from caig.reward.curriculum.config import PerceptionConfig
from caig.reward.curriculum.perception import (
    ad_pixels,
    background_words,
    open_ad,
    perception_borrowed,
    train_perception,
    word_f1,
)
from caig.reward.curriculum.teacher import DescriptionTeacher, fit_teacher
from caig.reward.evaluate import world_ceiling
from caig.reward.model import training_device
from caig.typed_config import as_dict
from caig.world.vocabulary import GROUPS, terms_in_group


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True, help="tiny base model (caig mllm build)")
    parser.add_argument("--train-world", type=Path, required=True)
    parser.add_argument("--test-world", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--profile", default="local")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--cnn-epochs", type=int, default=15, help="0: no CNN reader")
    parser.add_argument("--name", default="rm_perception_bound", help="result file name (without .json)")
    parser.add_argument("--cnn-width", type=int, default=32, help="channels of the first conv block")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--keep", type=Path, help="also write each reader's word probabilities on the test ads here (.npz)"
    )
    parser.add_argument(
        "--probabilities",
        type=Path,
        action="append",
        default=[],
        help="measure a reader kept by --keep (its .npz) instead of training it again (repeatable)",
    )
    parser.add_argument(
        "--no-tower",
        dest="tower",
        action="store_false",
        help="no tiny-tower reader (its perception is the cost)",
    )
    args = parser.parse_args()
    setup_logging()
    torch.set_num_threads(args.threads)
    profile = load_profile(args.profile, args.overrides)
    reward = profile.reward
    started = time.perf_counter()
    train_pairs, _ = pairs_from_events(args.train_world, reward.train_pairs)
    test_pairs, _ = pairs_from_events(args.test_world, profile.data.pairs)
    broad_pairs, _ = pairs_from_events(args.test_world, reward.train_pairs)
    ceilings = {
        "test": world_ceiling(args.test_world, test_pairs),
        "broad": world_ceiling(args.test_world, broad_pairs),
    }
    train_ads = creatives_with_products(args.train_world)
    test_ads = creatives_with_products(args.test_world)
    teachers = {  # both targets compose the same words (README "A teacher from every creative's clicks")
        target: fit_teacher(train_pairs, train_ads, replace(profile.curriculum.teacher, target=target))
        for target in ("pairs", "ctr")
    }
    teacher = teachers["pairs"]  # its vocabulary is the readers'; both teachers share it
    vocabulary, targets = background_words(train_ads["description"], profile.curriculum.perception.min_df)
    if vocabulary != list(teacher.vectorizer.get_feature_names_out()):
        raise SystemExit(
            "perception.min_df and teacher.min_df must match: the readers name the teacher's words"
        )
    true_words = teacher.vectorizer.transform(test_ads["description"]).toarray().astype(np.float32)

    def measure(name: str, probabilities: np.ndarray, seconds: float) -> dict:
        read = (probabilities > 0.5).astype(np.float32)
        row = {"reader": name, "seconds": round(seconds, 1)}
        if name != "words":
            logits = torch.from_numpy(np.log(probabilities + 1e-7) - np.log1p(-probabilities + 1e-7))
            row["word_f1"] = round(word_f1(logits, torch.from_numpy(true_words)), 4)
            row["ads_all_words_right"] = round(float((read == true_words).all(axis=1).mean()), 4)
            row["worst_words"] = worst_words(read, true_words, vocabulary)
            row["test_skill_one_group_read"] = one_group_read(
                read, true_words, vocabulary, teachers, test_ads, test_pairs, ceilings["test"]
            )
            if args.keep:
                args.keep.mkdir(parents=True, exist_ok=True)
                np.savez_compressed(
                    args.keep / f"{args.name}_{name}.npz",
                    probabilities=probabilities,
                    creative_id=np.asarray(test_ads.index, dtype=str),
                )
        readings = {"": read} if name == "words" else {"": read, "soft_": probabilities}
        for (soft, words), (target, composer) in itertools.product(readings.items(), teachers.items()):
            prefix = soft + ("" if target == "pairs" else f"{target}_")  # pairs, thresholded: unprefixed
            util = composer.utility_of_words(words, test_ads)
            if name != "words":
                reference = composer.utility_of_words(true_words, test_ads)
                row[f"{prefix}utility_corr"] = round(float(np.corrcoef(util, reference)[0, 1]), 4)
            for split, pairs in (("test", test_pairs), ("broad", broad_pairs)):
                accuracy = pair_accuracy(util, test_ads.index, pairs)
                row[f"{prefix}{split}_pair_accuracy"] = round(accuracy, 4)
                row[f"{prefix}{split}_skill"] = round((accuracy - 0.5) / (ceilings[split] - 0.5), 4)
        print(json.dumps(row), flush=True)
        return row

    rows = [measure("words", true_words, 0.0)]
    test_paths = [str(args.test_world / p) for p in test_ads["image_path"]]
    for kept in args.probabilities:
        rows.append(measure(kept.stem, kept_probabilities(kept, test_ads.index), 0.0))
    if args.tower:
        rows.append(tower_row(args, reward, profile.curriculum.perception, test_paths, measure))
    if args.cnn_epochs > 0:
        t0 = time.perf_counter()
        probabilities = cnn_reader(
            [str(args.train_world / p) for p in train_ads["image_path"]],
            targets,
            test_paths,
            reward.image_side,
            args.cnn_epochs,
            args.cnn_width,
            reward.seed,
        )
        rows.append(measure("cnn", probabilities, time.perf_counter() - t0))
    result = {
        **provenance(),
        "train_world": json.loads((args.train_world / "world.json").read_text())["seed"],
        "test_world": json.loads((args.test_world / "world.json").read_text())["seed"],
        "model": args.model.name,
        "profile": args.profile,
        "train_pairs": len(train_pairs),
        "test_pairs": len(test_pairs),
        "broad_pairs": len(broad_pairs),
        "ceilings": ceilings,
        "words": len(vocabulary),
        "goal": "an RM reaching test_skill >= 0.6 needs a reader at least this good",
        "readers": rows,
        "image_side": reward.image_side,
        "perception": as_dict(profile.curriculum.perception),
        "cnn": {"epochs": args.cnn_epochs, "width": args.cnn_width},
        "overrides": args.overrides,
        "seconds": round(time.perf_counter() - started, 1),
        "cpu_count": os.cpu_count(),
        "threads": args.threads,
        "torch": torch.__version__,
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{args.name}.json").write_text(json.dumps(result, indent=2))


def tower_row(
    args: argparse.Namespace,
    reward: RewardConfig,
    perception: PerceptionConfig,
    test_paths: list[str],
    measure: Callable,
) -> dict:
    """The tiny tower's reader: perception from ``--model`` on the training world, words read on the test world."""
    t0 = time.perf_counter()
    llava, processor = load_model(args.model)
    llava.to(training_device())  # perception trains where the model is: the GPU where there is one
    with tempfile.TemporaryDirectory() as borrowed_dir:  # curriculum.perception.borrowed_per_product's ads
        borrowed = perception_borrowed(args.train_world, perception, Path(borrowed_dir), reward.seed)
        reader, summary = train_perception(
            llava, processor, args.train_world, perception, reward.image_side, reward.seed, borrowed
        )
    logits = reader.logits(llava, ad_pixels(processor, test_paths, reward.image_side))
    row = measure("tiny_tower", torch.sigmoid(logits).cpu().numpy(), time.perf_counter() - t0)
    return row | {"train_held_out_word_f1": summary["held_out_word_f1"]}


def worst_words(read: np.ndarray, truth: np.ndarray, vocabulary: list[str], n: int = 12) -> dict[str, float]:
    """The ``n`` words a reader names worst (their own F1 on the held-out ads): where its reading fails."""
    tp = (read * truth).sum(axis=0)
    denominator = read.sum(axis=0) + truth.sum(axis=0)
    f1 = np.where(denominator > 0, 2 * tp / np.maximum(denominator, 1), 1.0)
    return {vocabulary[i]: round(float(f1[i]), 3) for i in np.argsort(f1)[:n]}


def kept_probabilities(path: Path, creative_ids: pd.Index) -> np.ndarray:
    """A kept reader's word probabilities on the test ads, in ``creative_ids``' order."""
    kept = np.load(path)
    return pd.DataFrame(kept["probabilities"], index=kept["creative_id"]).loc[creative_ids].to_numpy()


def one_group_read(
    read: np.ndarray,
    truth: np.ndarray,
    vocabulary: list[str],
    teachers: dict[str, DescriptionTeacher],
    ads: pd.DataFrame,
    pairs: pd.DataFrame,
    ceiling: float,
) -> dict[str, dict[str, float]]:
    """Test skill, per teacher, when the words of ONE term group (scene, prop, ...) are the reader's and all
    others exact: which part of the reading costs the most (the exact words' skill minus this)."""
    costs = {}
    for group in GROUPS:
        words = {w for term in terms_in_group(group) for w in term.text.split()}
        columns = [i for i, word in enumerate(vocabulary) if word in words]
        mixed = truth.copy()
        mixed[:, columns] = read[:, columns]
        costs[group] = {
            target: round(
                (pair_accuracy(t.utility_of_words(mixed, ads), ads.index, pairs) - 0.5) / (ceiling - 0.5), 4
            )
            for target, t in teachers.items()
        }
    return costs


def pair_accuracy(util: np.ndarray, ids: pd.Index, pairs: pd.DataFrame) -> float:
    """Share of ``pairs`` whose logged winner has the higher utility (ties count as "right")."""
    score = pd.Series(util, index=ids)
    diff = score.loc[pairs["left_creative_id"]].to_numpy() - score.loc[pairs["right_creative_id"]].to_numpy()
    return float(np.mean(np.where(diff > 0, "left", "right") == pairs["label"].to_numpy()))


def cnn_reader(
    train_paths: list[str],
    targets: np.ndarray,
    test_paths: list[str],
    side: int,
    epochs: int,
    width: int,
    seed: int,
) -> np.ndarray:
    """Train a small CNN (conv-BN-ReLU x 2 + max-pool blocks down to 4 px) to name the words; its
    probabilities on the test ads."""
    torch.manual_seed(seed)
    x_train, x_test = _pixels(train_paths, side), _pixels(test_paths, side)
    y_train = torch.from_numpy(targets)
    layers, channels = [], 3
    for k in range(int(math.log2(side)) - 2):
        out = min(width * 2**k, 4 * width)
        layers.append(_block(channels, out))
        channels = out
    net = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, targets.shape[1]))
    steps = epochs * (len(x_train) // 64)
    optimizer = torch.optim.AdamW(net.parameters(), lr=2e-3, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, 2e-3, total_steps=steps, pct_start=0.05)
    generator = torch.Generator().manual_seed(seed)
    net.train()
    for _ in tqdm(range(epochs), desc="cnn reader", unit="epoch"):
        order = torch.randperm(len(x_train), generator=generator)
        for start in range(0, len(order) - 63, 64):
            batch = order[start : start + 64]
            loss = nn.functional.binary_cross_entropy_with_logits(net(x_train[batch]), y_train[batch])
            loss.backward()
            optimizer.step()
            schedule.step()
            optimizer.zero_grad()
    net.eval()
    with torch.no_grad():
        return torch.sigmoid(torch.cat([net(chunk) for chunk in x_test.split(256)])).numpy()


def _block(inputs: int, outputs: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(inputs, outputs, 3, padding=1),
        nn.BatchNorm2d(outputs),
        nn.ReLU(),
        nn.Conv2d(outputs, outputs, 3, padding=1),
        nn.BatchNorm2d(outputs),
        nn.ReLU(),
        nn.MaxPool2d(2),
    )


def _pixels(paths: list[str], side: int) -> torch.Tensor:
    images = np.stack([np.asarray(open_ad(path, side)) for path in paths])
    return torch.from_numpy(images).permute(0, 3, 1, 2).float().div(255).sub(0.5)


if __name__ == "__main__":
    main()
