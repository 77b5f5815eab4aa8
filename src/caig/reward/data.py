"""RM pairs from disk to model inputs: read the pairs table, resolve images and products, encode, collate.

A pairs table has the columns of ``caig.data.pairs.PAIR_COLUMNS`` (``product_id``, ``left_creative_id``,
``right_creative_id``, ``left_ctr``, ``right_ctr``, ``label``) and optionally ``left_image_path`` /
``right_image_path`` and ``p_right`` (a soft label: the probability that the right ad is better, written by
a teacher or a warm-up task; ``label`` must agree with it); image paths are resolved against the data directory (a built world or imported logs,
holding ``catalog.parquet`` and ``creatives.parquet``).

Each example is first a ``Recipe`` (prompt, image paths, small target tensors), then encoded by the processor.
Where a stage's encoded examples fit ``reward.encode_up_front_gb`` they are encoded once, up front (the tiny
model trains for many epochs and re-running the image processor every step would cost more than the model);
above it (large images, large logs: a 7B LLaVA-NeXT pair, three 336-px views in float32, is 4 MB encoded)
the ``EncodingCollator`` encodes each batch as it is drawn (``reward.encode_workers`` DataLoader workers).
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from PIL import Image
from tqdm import tqdm

from caig.errors import UserError
from caig.reward.config import RewardConfig
from caig.reward.inputs import join_side_by_side, rm_prompt, square_ad, template_index

log = logging.getLogger("caig.reward")
REQUIRED = ["product_id", "left_creative_id", "right_creative_id", "left_ctr", "right_ctr", "label"]


@dataclass
class PairSource:
    """A pairs table with everything needed to draw and prompt it: product rows and image paths."""

    pairs: pd.DataFrame  # REQUIRED columns + left_image_path, right_image_path (absolute)
    products: pd.DataFrame  # catalog indexed by product_id


def read_pairs(path: str | Path, split: str = "train") -> pd.DataFrame:
    """A pairs parquet file, or ``DIR/{split}.parquet`` of a pairs directory; checks columns and labels."""
    path = Path(path)
    if path.is_dir():
        path = path / f"{split}.parquet"
    if not path.is_file():
        raise UserError(f"pairs file {path} does not exist; write pairs with `caig data pairs --out DIR`")
    pairs = pd.read_parquet(path)
    missing = [c for c in REQUIRED if c not in pairs.columns]
    if missing:
        raise UserError(f"{path}: pairs lack column(s) {missing}; a pairs table needs {REQUIRED}")
    bad = ~pairs["label"].isin(["left", "right"])
    if bad.any():
        raise UserError(
            f"{path}: {int(bad.sum())} pair(s) have a label other than 'left'/'right'; fix or drop them"
        )
    if pairs.empty:
        raise UserError(f"{path}: no pairs; loosen the pair rule (data.pairs or reward.train_pairs)")
    if "p_right" in pairs.columns:
        check_soft_labels(pairs, str(path))
    return pairs.reset_index(drop=True)


def check_soft_labels(pairs: pd.DataFrame, source: str) -> None:
    """``p_right`` must be a probability and name the same side as ``label`` (0.5 agrees with either)."""
    p_right = pd.to_numeric(pairs["p_right"], errors="coerce")
    outside = ~p_right.between(0.0, 1.0)  # NaN counts as outside
    if outside.any():
        raise UserError(
            f"{source}: {int(outside.sum())} pair(s) have p_right outside [0, 1] or missing; "
            "p_right is the probability that the right ad is better"
        )
    disagree = ((p_right > 0.5) & (pairs["label"] == "left")) | (
        (p_right < 0.5) & (pairs["label"] == "right")
    )
    if disagree.any():
        raise UserError(
            f"{source}: {int(disagree.sum())} pair(s) have a label that contradicts p_right; "
            "label must be 'right' where p_right > 0.5 and 'left' where it is < 0.5"
        )


def attach_sources(pairs: pd.DataFrame, data_dir: str | Path) -> PairSource:
    """Join product rows and absolute image paths from a data directory (catalog + creatives)."""
    data_dir = Path(data_dir)
    for name in ("catalog.parquet", "creatives.parquet"):
        if not (data_dir / name).is_file():
            raise UserError(
                f"{data_dir} holds no {name}; pass --world a built world or an imported data directory"
            )
    products = pd.read_parquet(data_dir / "catalog.parquet").set_index("product_id")
    creatives = pd.read_parquet(data_dir / "creatives.parquet").set_index("creative_id")
    unknown = sorted(set(pairs["product_id"]) - set(products.index))
    if unknown:
        raise UserError(
            f"{len(unknown)} pair product(s) not in {data_dir}/catalog.parquet (e.g. {unknown[0]}); "
            "pairs and --world must come from the same data"
        )
    pairs = pairs.copy()
    for side in ("left", "right"):
        column = f"{side}_image_path"
        if column not in pairs.columns:
            ids = pairs[f"{side}_creative_id"]
            missing = sorted(set(ids) - set(creatives.index))
            if missing:
                raise UserError(f"creative {missing[0]} of the pairs is not in {data_dir}/creatives.parquet")
            pairs[column] = creatives.loc[ids, "image_path"].to_numpy()
        pairs[column] = [str(p if Path(p).is_absolute() else data_dir / p) for p in pairs[column]]
    return PairSource(pairs, products)


def load_pair_source(pairs_path: str | Path, data_dir: str | Path, split: str = "train") -> PairSource:
    """``read_pairs`` + ``attach_sources``."""
    return attach_sources(read_pairs(pairs_path, split), data_dir)


@dataclass(frozen=True)
class Recipe:
    """One example before the image processor: its prompt, its ad image(s) (one ad alone, or left and right
    joined side by side) and its targets (``labels``, ``ctr``)."""

    text: str
    image_paths: tuple[str, ...]
    targets: dict[str, torch.Tensor]

    def image(self, side: int) -> Image.Image:
        """The image the RM sees: the two ads joined left | right, or the one ad as one side of a pair."""
        if len(self.image_paths) == 2:
            return join_side_by_side(*(open_image(p) for p in self.image_paths), side)
        return open_ad(self.image_paths[0], side)


def pair_recipes(
    source: PairSource,
    processor: Any,
    config: RewardConfig,
    swap: bool = False,
    seed: int | None = None,
) -> list[Recipe]:
    """Every pair as a ``Recipe``; ``swap`` puts the right image on the left.

    Targets: ``labels`` (0 = left is better, 1 = right; the float ``p_right`` where the table has that column)
    and ``ctr`` (``[ctr_left, ctr_right] * recipe.ctr_scale``), both following the swap. ``seed`` draws a template per
    pair when ``config.template`` is -1 (None: template 0).
    """
    rng = random.Random(seed) if seed is not None else None
    soft = "p_right" in source.pairs.columns
    recipes = []
    for row in source.pairs.itertuples():
        paths = (row.left_image_path, row.right_image_path)
        ctr = [float(row.left_ctr), float(row.right_ctr)]
        label: float = float(row.p_right) if soft else (0 if row.label == "left" else 1)
        if swap:
            paths, ctr, label = paths[::-1], ctr[::-1], 1 - label
        text = rm_prompt(processor, source.products.loc[row.product_id], config, template_index(config, rng))
        targets = {
            "labels": torch.tensor(label),
            "ctr": torch.tensor(ctr, dtype=torch.float32) * config.recipe.ctr_scale,
        }
        recipes.append(Recipe(text, paths, targets))
    return recipes


def encode_recipes(
    recipes: Sequence[Recipe], processor: Any, config: RewardConfig, chunk: int = 128
) -> list[dict[str, torch.Tensor]]:
    """Recipes as model inputs with their targets; the processor runs on chunks (several times faster than
    one call per example)."""
    examples: list[dict[str, torch.Tensor]] = []
    bar = tqdm(total=len(recipes), desc="encode", unit="ex", leave=False, disable=len(recipes) < 1000)
    for start in range(0, len(recipes), chunk):
        part = recipes[start : start + chunk]
        images = [r.image(config.image_side) for r in part]
        encoded = encode_batch(processor, [r.text for r in part], images, config.max_length)
        examples += [e | r.targets for e, r in zip(encoded, part)]
        bar.update(len(part))
    bar.close()
    return examples


def check_recipes(
    recipes: Sequence[Recipe], processor: Any, config: RewardConfig, first: dict[str, torch.Tensor]
) -> None:
    """What encoding would refuse, checked before training when batches are encoded as they are drawn (else
    a missing image or an overlong prompt would stop a run hours in): every image file exists, and every
    prompt fits ``reward.max_length`` with the image tokens of ``first`` (the first recipe, encoded; all
    examples of a stage have the same image shape)."""
    missing = [p for r in recipes for p in r.image_paths if not Path(p).is_file()]
    if missing:
        raise UserError(
            f"{len(missing)} ad image(s) of the RM examples do not exist (e.g. {missing[0]}); "
            "check the creatives' image_path against the data directory"
        )
    tokenize = processor.tokenizer
    lengths = [len(ids) for ids in tokenize([r.text for r in recipes], add_special_tokens=False)["input_ids"]]
    image_tokens = len(first["input_ids"]) - lengths[0]  # the placeholder's expansion
    longest = max(lengths) + image_tokens
    if longest > config.max_length:
        raise UserError(
            f"an RM input has {longest} tokens, above reward.max_length={config.max_length}; "
            "raise reward.max_length or shorten the attributes"
        )


def encode_pairs(
    source: PairSource,
    processor: Any,
    config: RewardConfig,
    swap: bool = False,
    seed: int | None = None,
    chunk: int = 128,
) -> list[dict[str, torch.Tensor]]:
    """Every pair encoded as model inputs with its targets (``pair_recipes``, then ``encode_recipes``)."""
    return encode_recipes(pair_recipes(source, processor, config, swap, seed), processor, config, chunk)


def encode_one(processor: Any, text: str, image: Image.Image, max_length: int) -> dict[str, torch.Tensor]:
    """One prompt and its joined image as unpadded model inputs (image tokens expanded by the processor)."""
    return encode_batch(processor, [text], [image], max_length)[0]


def encode_batch(
    processor: Any, texts: list[str], images: list[Image.Image], max_length: int
) -> list[dict[str, torch.Tensor]]:
    """Prompts and joined images as a list of unpadded model inputs (one processor call)."""
    batch = processor(text=texts, images=images, return_tensors="pt", add_special_tokens=False, padding=True)
    lengths = batch["attention_mask"].sum(dim=1)
    if int(lengths.max()) > max_length:
        raise UserError(
            f"an RM input has {int(lengths.max())} tokens, above reward.max_length={max_length}; "
            "raise reward.max_length or shorten the attributes"
        )
    mask = batch["attention_mask"].bool()
    return [
        {
            "input_ids": batch["input_ids"][i][mask[i]],
            "pixel_values": batch["pixel_values"][i],
            "image_sizes": batch["image_sizes"][i],
        }
        for i in range(len(texts))
    ]


def open_image(path: str) -> Image.Image:
    """An ad image as RGB; an unreadable file is a ``UserError`` naming it."""
    try:
        with Image.open(path) as image:
            return image.convert("RGB")
    except OSError as err:
        raise UserError(f"cannot read ad image {path}: {err}") from None


def open_ad(path: str, side: int) -> Image.Image:
    """The ad image at ``path`` as the RM sees one side of a pair (``square_ad``); an unreadable file is a
    ``UserError`` naming it."""
    return square_ad(open_image(path), side)


class Collator:
    """Pad a list of encoded examples into a batch; ``padding_side`` "right" (training) or "left"."""

    def __init__(self, pad_token_id: int, padding_side: str = "right"):
        if padding_side not in ("right", "left"):
            raise ValueError("padding_side must be 'right' or 'left'")
        self.pad_token_id = pad_token_id
        self.padding_side = padding_side

    def __call__(self, examples: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
        longest = max(len(e["input_ids"]) for e in examples)
        ids = torch.full((len(examples), longest), self.pad_token_id, dtype=torch.long)
        mask = torch.zeros((len(examples), longest), dtype=torch.long)
        for i, example in enumerate(examples):
            n = len(example["input_ids"])
            span = slice(0, n) if self.padding_side == "right" else slice(longest - n, longest)
            ids[i, span] = example["input_ids"]
            mask[i, span] = 1
        batch = {
            "input_ids": ids,
            "attention_mask": mask,
            "pixel_values": torch.stack([e["pixel_values"] for e in examples]),
            "image_sizes": torch.stack([e["image_sizes"] for e in examples]),
        }
        for key in ("labels", "ctr"):
            if key in examples[0]:
                batch[key] = torch.stack([e[key] for e in examples])
        return batch


class EncodingCollator:
    """Encode a batch of ``Recipe``s as it is drawn, then pad it: for stages whose encoded examples would not
    fit ``reward.encode_up_front_gb``."""

    def __init__(self, processor: Any, config: RewardConfig, padding_side: str = "right"):
        self.processor = processor
        self.config = config
        self.pad = Collator(processor.tokenizer.pad_token_id, padding_side)

    def __call__(self, recipes: list[Recipe]) -> dict[str, torch.Tensor]:
        return self.pad(encode_recipes(recipes, self.processor, self.config))


class SwapPairCollator:
    """Batch of pairs in both orders for ``recipe.swap_consistent_training``: rows 0..B-1 as given, rows B..2B-1 the
    same pairs swapped (each example is ``{"ab": example, "ba": example swapped}``, encoded or ``Recipe``s
    for an ``EncodingCollator``); ``swap_pairs`` = B."""

    def __init__(self, collate: Callable[[list[Any]], dict[str, torch.Tensor]]):
        self.collate = collate

    def __call__(self, examples: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        batch = self.collate([e["ab"] for e in examples] + [e["ba"] for e in examples])
        batch["swap_pairs"] = torch.tensor(len(examples))
        return batch
