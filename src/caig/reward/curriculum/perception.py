"""Background perception: the RM's vision tower learns to name the background words of single ads first.

The click pairs ask a small RM to see the background, know what it is worth for this product and compare
left with right, all through one bit per pair. Its vision tower, pre-trained on captions and categories,
keeps little background detail (docs/results/rm-paper-settings.md: a probe on its outputs finds the scene in
47% of ads, on raw pixels 79%). This stage gives it that detail back from data every generated ad has: the
background description it was painted from (``creatives.parquet``). A linear probe on the mean of each ad's
projected image tokens (the tokens the language model reads) predicts which words of the vocabulary the
description holds (multi-label, binary cross-entropy); the vision tower, the projector and the probe train,
the probe is dropped afterwards. No clicks, no oracle. Off by default (the paper's RM has no such stage).
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from sklearn.feature_extraction.text import CountVectorizer
from torch import nn
from tqdm import tqdm
from transformers import get_cosine_schedule_with_warmup

from caig.errors import UserError
from caig.reward.config import RewardConfig
from caig.reward.curriculum.ads import creatives_with_products, render_borrowed, split_products
from caig.reward.curriculum.config import PerceptionConfig
from caig.reward.curriculum.shared import (
    cached_renders,
    data_fingerprint,
    fingerprint,
    load_perceived,
    save_perceived,
    shared_dir,
)
from caig.reward.data import open_ad
from caig.reward.model import RewardModel, training_device
from caig.reward.trainer import StageResult
from caig.typed_config import as_dict

log = logging.getLogger("caig.reward")


def background_words(descriptions: pd.Series, min_df: int) -> tuple[list[str], np.ndarray]:
    """The vocabulary (words in at least ``min_df`` descriptions) and each description's words, multi-hot."""
    vectorizer = CountVectorizer(binary=True, min_df=min_df)
    words = vectorizer.fit_transform(descriptions.fillna(""))
    return list(vectorizer.get_feature_names_out()), words.toarray().astype(np.float32)


def words_of(descriptions: pd.Series, vocabulary: list[str]) -> np.ndarray:
    """Each description's words of ``vocabulary``, multi-hot (the targets of ads outside the fitted set)."""
    vectorizer = CountVectorizer(binary=True, vocabulary=vocabulary)
    return vectorizer.transform(descriptions.fillna("")).toarray().astype(np.float32)


@dataclass
class AdPixels:
    """Ads resized as the RM sees one side of a pair, kept as bytes and normalised a batch at a time.

    Bytes take a quarter of float32's memory: 48,000 ads at 128 px (perception on 24 borrowed backgrounds per
    product) are 2.4 GB instead of 9.4 GB, and batches are indexed without copying the training split.
    ``normalised`` applies the image processor's rescale and normalisation, so the vision tower gets what
    ``processor.image_processor`` would give it (test).
    """

    values: torch.Tensor  # (N, 3, H, W) uint8: the processor's base view (side x side where its crop is side)
    rescale: float
    mean: torch.Tensor  # (3, 1, 1)
    std: torch.Tensor  # (3, 1, 1)

    def __len__(self) -> int:
        return len(self.values)

    def normalised(self, index: torch.Tensor | np.ndarray | slice | None = None) -> torch.Tensor:
        """The ads at ``index`` (all when None) as the vision tower's float input: (n, 3, H, W)."""
        values = self.values if index is None else self.values[index]
        return (values.float() * self.rescale - self.mean) / self.std

    def select(self, mask: np.ndarray) -> AdPixels:
        """The ads where ``mask`` is true (a copy: for the small held-out split)."""
        return AdPixels(self.values[torch.from_numpy(mask)], self.rescale, self.mean, self.std)


def ad_pixels(processor: Any, paths: list[str], side: int, batch: int = 256) -> AdPixels:
    """Each ad resized to ``side`` x ``side`` as the RM sees one side of a pair, as bytes (``AdPixels``);
    ``normalised()`` gives the processor's base view, (N, 3, H, W) (H = W = ``side`` where the processor's crop is
    ``side``), which the vision tower gets."""
    chunks = []
    for start in tqdm(range(0, len(paths), batch), desc="perception images", disable=len(paths) < 2000):
        images = [open_ad(p, side) for p in paths[start : start + batch]]
        raw = processor.image_processor(images, return_tensors="pt", do_rescale=False, do_normalize=False)[
            "pixel_values"
        ]
        chunks.append((raw[:, 0] if raw.dim() == 5 else raw).round().clamp(0, 255).to(torch.uint8))
    image_processor = processor.image_processor
    return AdPixels(
        values=torch.cat(chunks),
        rescale=float(image_processor.rescale_factor),
        mean=torch.tensor(image_processor.image_mean, dtype=torch.float32).view(3, 1, 1),
        std=torch.tensor(image_processor.image_std, dtype=torch.float32).view(3, 1, 1),
    )


def image_tokens(llava: Any, pixels: torch.Tensor) -> torch.Tensor:
    """The projected image tokens of single views, as LLaVA-NeXT computes them: (N, tokens, text hidden)."""
    config = llava.config
    out = llava.model.vision_tower(pixels, output_hidden_states=True, return_dict=True)
    features = out.hidden_states[config.vision_feature_layer]
    if config.vision_feature_select_strategy == "default":
        features = features[:, 1:]  # CLIP's CLS token is not an image token
    return llava.model.multi_modal_projector(features)


class WordProbe(nn.Module):
    """Linear probe from the mean projected image token to one logit per background word."""

    def __init__(self, hidden: int, n_words: int):
        super().__init__()
        self.linear = nn.Linear(hidden, n_words)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.linear(tokens.mean(dim=1))


def word_f1(logits: torch.Tensor, targets: torch.Tensor) -> float:
    """Micro F1 of the words predicted present (logit > 0) against the descriptions' words."""
    predicted = logits > 0
    truth = targets > 0.5
    tp = float((predicted & truth).sum())
    denominator = float(predicted.sum() + truth.sum())
    return 2 * tp / denominator if denominator else 0.0


@dataclass
class WordReader:
    """The trained probe and its vocabulary: which background words an ad shows, read from its image tokens."""

    vocabulary: list[str]
    probe: WordProbe

    @torch.no_grad()
    def logits(self, llava: Any, pixels: AdPixels | torch.Tensor) -> torch.Tensor:
        """One logit per word of ``vocabulary`` for each ad of ``pixels`` (``ad_pixels``' bytes, or views
        already normalised, (N, 3, side, side)): (N, words)."""
        was_training = llava.training
        llava.eval()
        device = next(llava.parameters()).device
        chunks = (
            (pixels.normalised(slice(i, i + 512)) for i in range(0, len(pixels), 512))
            if isinstance(pixels, AdPixels)
            else pixels.split(512)
        )
        logits = torch.cat([self.probe(image_tokens(llava, chunk.to(device))) for chunk in chunks])
        llava.train(was_training)
        return logits


@dataclass
class PerceptionStage:
    """The perception stage: the RM's vision tower and projector learn the background words (its own loop,
    outside the HF Trainer), first, so that every later stage reads its tokens. With ``shared``, a tower
    perceived by an earlier RM of the same start model, data, seed, settings and device is loaded instead of
    trained (``caig.reward.curriculum.shared``)."""

    name: str
    config: RewardConfig  # the RM's: its image side, seed and method
    perception: PerceptionConfig
    data_dir: str | Path | None  # the training ads' data directory
    start_model: str | Path | None = None  # the RM's start model (``shared`` tells towers apart by it)
    shared: str | Path | None = None
    unshardable: tuple[str, str] | None = None

    def __post_init__(self) -> None:
        if self.data_dir is None:
            raise UserError(
                "curriculum.perception needs the data directory of the training ads (--world DIR)"
            )

    def fit(self, model: RewardModel, processor: Any, out: Path) -> StageResult:
        config, data_dir, llava = self.config, self.data_dir, model.llava
        tower_dir = self.tower_dir()
        if tower_dir is not None:
            summary = load_perceived(llava, tower_dir)
            if summary is not None:
                return summary, None
        borrowed = cached_renders(
            self.shared, out / "perception_borrowed", data_dir, self.perception.borrowed_per_product,
            config.seed, lambda folder: perception_borrowed(data_dir, self.perception, folder, config.seed),
        )  # fmt: skip
        _, summary = train_perception(
            llava, processor, data_dir, self.perception, config.image_side, config.seed, borrowed
        )
        if tower_dir is not None:
            save_perceived(llava, summary, tower_dir)
        return summary, None

    def tower_dir(self) -> Path | None:
        """Where the shared perceived tower of this stage lives (None without ``shared``)."""
        if self.shared is None:
            return None
        config = self.config
        return shared_dir(
            self.shared, "perception", model=fingerprint(self.start_model), data=data_fingerprint(self.data_dir),
            seed=config.seed, image_side=config.image_side, perception=as_dict(self.perception),
            method=config.method,  # LoRA freezes the tower: perception then trains the probe only
            device=training_device(),
        )  # fmt: skip


def perception_borrowed(data_dir: str | Path, config: PerceptionConfig, out: Path, seed: int) -> pd.DataFrame:
    """``config.borrowed_per_product`` other products' backgrounds painted around each product (to ``out``)
    for ``train_perception``; an empty frame when 0."""
    if not config.borrowed_per_product:
        return pd.DataFrame(columns=["product_id", "description", "image_path"])
    creatives = creatives_with_products(data_dir, switch="curriculum.perception.borrowed_per_product=0")
    return render_borrowed(creatives, data_dir, config.borrowed_per_product, out, seed)


def train_perception(
    llava: Any,
    processor: Any,
    data_dir: str | Path,
    config: PerceptionConfig,
    image_side: int,
    seed: int,
    borrowed: pd.DataFrame | None = None,
) -> tuple[WordReader, dict[str, Any]]:
    """Train ``llava``'s vision tower and projector in place to name each ad's background words.

    The ads are ``data_dir``'s creatives and, when given, ``borrowed`` ads (``perception_ads``). A
    ``held_out_share`` of the products (all their ads) is kept out; the words' micro F1 before and after is
    measured on their creatives. Returns the word reader (the RM drops it; the perception benchmark reads other
    worlds' ads with it) and the stage's summary (for ``train.json``).
    """
    started = time.perf_counter()
    ads, vocabulary, targets = perception_ads(data_dir, borrowed, config.min_df)
    device = next(llava.parameters()).device  # where the model is (the GPU, where the RM trains on one)
    pixels = ad_pixels(processor, ads["image_path"].tolist(), image_side)
    held = split_products(ads["product_id"], config.held_out_share, seed)
    measured = held & ~ads["borrowed"].to_numpy()
    train_index = torch.from_numpy(np.flatnonzero(~held))  # rows of ``pixels``: no copy of the split
    y_train = torch.from_numpy(targets[~held])  # on the CPU; each batch moves
    x_held, y_held = pixels.select(measured), torch.from_numpy(targets[measured]).to(device)
    torch.manual_seed(seed)
    probe = WordProbe(llava.config.text_config.hidden_size, len(vocabulary)).to(device, torch.float32)
    reader = WordReader(vocabulary, probe)
    f1_before = _held_out_f1(llava, reader, x_held, y_held)
    step, curve = fit_word_probe(llava, probe, pixels, train_index, y_train, config, seed)
    f1_after = _held_out_f1(llava, reader, x_held, y_held)
    summary = {
        "stage": "perception",
        "ads": int((~held).sum()),
        "borrowed_ads": int((~held & ads["borrowed"].to_numpy()).sum()),
        "held_out_ads": int(measured.sum()),
        "words": len(vocabulary),
        "steps": step,
        "seconds": round(time.perf_counter() - started, 1),
        "learning_rate": config.learning_rate,
        "held_out_word_f1_before": round(f1_before, 4),
        "held_out_word_f1": round(f1_after, 4),
        "loss_curve": curve,
    }
    log.info(
        "RM stage perception: %d ads (%d borrowed), %d words, held-out word F1 %.3f -> %.3f, %.0f s",
        summary["ads"], summary["borrowed_ads"], len(vocabulary), f1_before, f1_after, summary["seconds"],
    )  # fmt: skip
    return reader, summary


def perception_ads(
    data_dir: str | Path, borrowed: pd.DataFrame | None, min_df: int
) -> tuple[pd.DataFrame, list[str], np.ndarray]:
    """The ads perception learns from (``product_id``, absolute ``image_path``, ``borrowed``), the vocabulary
    and each ad's words, multi-hot: ``data_dir``'s creatives, then the ``borrowed`` ads (``product_id``,
    ``description``, absolute ``image_path``: other backgrounds painted around the same products), which add
    images, not words: the vocabulary is the creatives'."""
    data_dir = Path(data_dir)
    creatives = pd.read_parquet(data_dir / "creatives.parquet")
    vocabulary, targets = background_words(creatives["description"], min_df)
    ads = creatives[["product_id", "image_path"]].assign(
        image_path=[str(data_dir / p) for p in creatives["image_path"]], borrowed=False
    )
    if borrowed is not None and len(borrowed):
        targets = np.concatenate([targets, words_of(borrowed["description"], vocabulary)])
        ads = pd.concat(
            [ads, borrowed[["product_id", "image_path"]].assign(borrowed=True)], ignore_index=True
        )
    return ads, vocabulary, targets


def fit_word_probe(
    llava: Any,
    probe: WordProbe,
    pixels: AdPixels,
    train_index: torch.Tensor,
    y_train: torch.Tensor,
    config: PerceptionConfig,
    seed: int,
) -> tuple[int, list[dict[str, Any]]]:
    """Train the vision tower, the projector and ``probe`` on the ads ``train_index`` of ``pixels`` (binary
    cross-entropy of each word; AdamW, cosine schedule, batches drawn with ``seed``); the steps taken and the
    loss curve (mean loss every 50 steps)."""
    device = next(llava.parameters()).device
    trained = [*llava.model.vision_tower.parameters(), *llava.model.multi_modal_projector.parameters()]
    optimizer = torch.optim.AdamW([*trained, *probe.parameters()], lr=config.learning_rate, weight_decay=0.0)
    steps_per_epoch = math.ceil(len(train_index) / config.batch_size)
    total = max(1, int(round(config.epochs * steps_per_epoch)))
    scheduler = get_cosine_schedule_with_warmup(optimizer, int(0.03 * total), total)
    generator = torch.Generator().manual_seed(seed)
    curve, losses, step = [], [], 0
    llava.train()
    with tqdm(total=total, desc="perception", unit="step") as bar:
        while step < total:
            order = torch.randperm(len(train_index), generator=generator)
            for start in range(0, len(order), config.batch_size):
                batch = order[start : start + config.batch_size]
                logits = probe(image_tokens(llava, pixels.normalised(train_index[batch]).to(device)))
                loss = nn.functional.binary_cross_entropy_with_logits(logits, y_train[batch].to(device))
                loss.backward()
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad()
                losses.append(float(loss.detach()))
                step += 1
                bar.update(1)
                if step % 50 == 0 or step == total:
                    curve.append({"step": step, "loss": round(sum(losses) / len(losses), 5)})
                    losses.clear()
                if step == total:
                    break
    return step, curve


def _held_out_f1(llava: Any, reader: WordReader, pixels: AdPixels, targets: torch.Tensor) -> float:
    return word_f1(reader.logits(llava, pixels), targets) if len(pixels) else float("nan")
