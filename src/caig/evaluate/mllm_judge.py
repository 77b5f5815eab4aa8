"""An automatic match judge: the prompt model asked the paper's A.2 question, and how far to trust it.

The MLLM sees the rendered ad and reads the A.2 question with the product's attributes and the background
description; its answer is one of the A.2 kinds (``match`` or a ``scale`` / ``scene`` / ``colour``
mismatch). Two ways to ask (``JudgeSettings.mode``):

- ``choice``: score each of the four answers' log-likelihood after the question and take the likeliest
  (always an answer; suits a small model that rarely writes one of the words unprompted);
- ``generate``: greedy free text, parsed by :func:`parse_judgement` (``None`` when it names no kind).

EVALUATION ONLY: :func:`run_world_judge` measures the judge's agreement with the world's oracle
(``World.judge_match``) on a world's creatives (``caig.evaluate.judge_agreement``: accuracy, Cohen's kappa,
confusion counts, and the match rate each of them gives), so that a user knows how far its match rates can
be trusted. Nothing here trains
on the oracle. :func:`judge_batch` answers a review batch the way a reviewer would, for real data where no
oracle exists; ``caig review import`` turns its answers file into match rates.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from PIL import Image

from caig.errors import UserError
from caig.evaluate.judge_agreement import UNPARSED, agreement
from caig.evaluate.review import ANSWERS, QUESTION
from caig.evaluate.review_export import ADS, read_manifest
from caig.mllm.instruct import f_instruct

log = logging.getLogger("caig.evaluate")

INSTRUCTION = "Answer with one word: match, scale, scene or colour."
# Words that name an answer; "available" is the paper's own word for a match.
_SYNONYMS = {
    "match": "match",
    "matches": "match",
    "available": "match",
    "scale": "scale",
    "scene": "scene",
    "colour": "colour",
    "color": "colour",
}
_WORD = re.compile(r"[a-z]+")
_NEGATIONS = {"no", "not", "doesn", "don", "isn", "never"}


@dataclass(frozen=True)
class JudgeSettings:
    """How the judge is asked (not part of a profile: the judge only evaluates)."""

    mode: Literal["choice", "generate"] = "choice"
    max_new_tokens: int = 8  # generate mode: answer length
    batch_size: int = 8
    max_length: int = 4096  # longest question + answer in tokens, image tokens included (7B: ~2,900)
    attributes: tuple[str, ...] = ("title", "category", "colour")  # f_instruct attributes, if present

    def __post_init__(self) -> None:
        if self.mode not in ("choice", "generate"):
            raise UserError(f"judge mode {self.mode!r}: use choice or generate")
        if self.batch_size < 1 or self.max_new_tokens < 1:
            raise UserError("judge batch_size and max_new_tokens must be at least 1")


@dataclass(frozen=True)
class JudgeItem:
    """One ad to judge: its id, the product's attributes, the background description and the ad image."""

    item_id: str
    product: Mapping[str, Any]
    description: str
    ad: Image.Image


def judge_question(product: Mapping[str, Any], description: str, attributes: Sequence[str]) -> str:
    """The A.2 question with the answer format, the background description and the product's attributes."""
    present = [a for a in attributes if a in product]
    background = description.replace("'", "")
    return f_instruct(f"{QUESTION} {INSTRUCTION} Background: '{background}'.", product, present)


def parse_judgement(text: str) -> str | None:
    """The A.2 kind a free-text answer names first (``color`` and the paper's ``available`` understood);
    ``None`` when it names none or only a negated match ("no match", "not a match")."""
    words = _WORD.findall(text.lower())
    for i, word in enumerate(words):
        kind = _SYNONYMS.get(word)
        if kind is None:
            continue
        if kind == "match" and any(w in _NEGATIONS for w in words[max(0, i - 2) : i]):
            return None
        return kind
    return None


def judge(model: Any, processor: Any, items: Sequence[JudgeItem], settings: JudgeSettings) -> pd.DataFrame:
    """The judge's answer per item: ``item_id, judge`` (an A.2 kind, or ``unparsed``), ``raw`` (the
    generated text, or the four answers' log-likelihoods as JSON) and, in choice mode, ``match_margin``:
    log P(match) minus the likeliest mismatch's, a score whose ranking can be judged apart from its bias."""
    if not items:
        return pd.DataFrame(columns=["item_id", "judge", "raw", "match_margin"])
    questions = [judge_question(i.product, i.description, settings.attributes) for i in items]
    images = [i.ad for i in items]
    if settings.mode == "generate":
        from caig.mllm.generate import generate

        texts = generate(
            model, processor, images, questions, settings.max_new_tokens, 0.0, settings.batch_size
        )
        labels = [parse_judgement(t) or UNPARSED for t in texts]
        return pd.DataFrame(
            {"item_id": [i.item_id for i in items], "judge": labels, "raw": texts, "match_margin": np.nan}
        )
    scores = _answer_logprobs(model, processor, images, questions, settings)
    labels = [ANSWERS[int(np.argmax(s))] for s in scores]
    raw = [json.dumps({a: round(float(v), 4) for a, v in zip(ANSWERS, s, strict=True)}) for s in scores]
    margin = scores[:, 0] - scores[:, 1:].max(axis=1)  # ANSWERS[0] is "match"
    return pd.DataFrame(
        {"item_id": [i.item_id for i in items], "judge": labels, "raw": raw, "match_margin": margin}
    )


def _answer_logprobs(
    model: Any, processor: Any, images: list[Image.Image], questions: list[str], settings: JudgeSettings
) -> np.ndarray:
    """(N, 4) summed log-probabilities of each A.2 answer after each question."""
    import torch

    from caig.pcpo.logprobs import response_logprobs

    n = len(questions)
    flat_images = [im for im in images for _ in ANSWERS]
    flat_questions = [q for q in questions for _ in ANSWERS]
    flat_answers = list(ANSWERS) * n
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            logps = response_logprobs(
                model,
                processor,
                flat_images,
                flat_questions,
                flat_answers,
                settings.batch_size * len(ANSWERS),
                settings.max_length,
            )
    except ValueError as err:
        raise UserError(f"judge question too long ({err}); raise the judge's max_length") from None
    finally:
        model.train(was_training)
    return logps.float().cpu().numpy().reshape(n, len(ANSWERS))


def load_judge_model(model_dir: str | Path, dtype: str = "float32") -> tuple[Any, Any]:
    """The MLLM of a ``caig pretrain`` output (``DIR/model``) or a model directory, on GPU if there is one."""
    import torch

    from caig.mllm.build import load_model, model_dir_of

    model, processor = load_model(model_dir_of(model_dir), dtype=dtype)
    model.to("cuda" if torch.cuda.is_available() else "cpu")
    return model, processor


def world_items(world_dir: str | Path, limit: int, seed: int) -> tuple[list[JudgeItem], list[str]]:
    """``limit`` of a world's creatives (seeded draw; all if fewer) as judge items, and the oracle's
    kind for each. EVALUATION ONLY: the oracle labels are the reference the judge is compared with."""
    from caig.world.loaded import load_world

    if limit < 1:
        raise UserError(f"--limit {limit}: judge at least 1 creative")
    world = load_world(world_dir)
    creatives = world.creatives
    rng = np.random.default_rng(seed)
    rows = creatives.iloc[np.sort(rng.choice(len(creatives), size=min(limit, len(creatives)), replace=False))]
    items, oracle = [], []
    for row in rows.itertuples():
        product = world.products.loc[row.product_id].to_dict() | {"product_id": row.product_id}
        ad = Image.open(world.directory / row.image_path).convert("RGB")
        items.append(JudgeItem(row.creative_id, product, row.description, ad))
        oracle.append(world.judge_match(row.product_id, row.description))
    return items, oracle


def run_world_judge(
    model_dir: str | Path,
    world_dir: str | Path,
    out: str | Path,
    settings: JudgeSettings | None = None,
    limit: int = 200,
    seed: int = 0,
    dtype: str = "float32",
) -> dict[str, Any]:
    """Judge ``limit`` creatives of a world and compare with its oracle; write ``out/judge.json`` (settings,
    agreement, answer counts) and ``out/judgements.parquet`` (one row per creative); return the report.

    Pass a world the model was not trained on (another seed): its products are then held out.
    """
    settings = settings or JudgeSettings()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    items, oracle = world_items(world_dir, limit, seed)
    model, processor = load_judge_model(model_dir, dtype)
    started = time.perf_counter()
    answers = judge(model, processor, items, settings)
    seconds = time.perf_counter() - started
    answers["oracle"] = oracle
    answers["product_id"] = [i.product["product_id"] for i in items]
    answers["description"] = [i.description for i in items]
    answers.to_parquet(out / "judgements.parquet", index=False)
    report = {
        "model": str(model_dir),
        "world": str(world_dir),
        "settings": asdict(settings),
        "seed": seed,
        "judge_seconds": round(seconds, 2),
        "agreement": agreement(
            answers["judge"].tolist(),
            oracle,
            answers["match_margin"].tolist() if settings.mode == "choice" else None,
        ),
        "judge_answers": answers["judge"].value_counts().to_dict(),
        "oracle_answers": pd.Series(oracle).value_counts().to_dict(),
    }
    (out / "judge.json").write_text(json.dumps(report, indent=2))
    a = report["agreement"]
    log.info("judge vs oracle on %d creatives: accuracy %.3f, kappa %s", a["n"], a["accuracy"], a["kappa"])
    return report


def judge_batch(
    model_dir: str | Path,
    batch: str | Path,
    out: str | Path,
    settings: JudgeSettings | None = None,
    dtype: str = "float32",
) -> dict[str, Any]:
    """Answer a review batch as a reviewer named ``mllm-judge`` would: write ``out/<batch>-mllm-judge.json``
    in the review page's answers format (``caig review import`` reads it like a person's answers)."""
    settings = settings or JudgeSettings()
    batch_dir = Path(batch) if Path(batch).is_dir() else Path(batch).parent
    manifest = read_manifest(batch)
    items = []
    for item_id, meta in manifest["items"].items():
        ad_path = batch_dir / meta.get("ad", f"{ADS}/{item_id}.png")
        try:
            ad = Image.open(ad_path).convert("RGB")
        except OSError as err:
            raise UserError(f"item {item_id!r}: cannot read its ad {ad_path} ({err})") from None
        product = manifest.get("products", {}).get(meta["product_id"], {"product_id": meta["product_id"]})
        items.append(JudgeItem(item_id, product, meta["description"], ad))
    model, processor = load_judge_model(model_dir, dtype)
    answers = judge(model, processor, items, settings)
    doc = {
        "batch_id": manifest["batch_id"],
        "reviewer": "mllm-judge",
        "model": str(model_dir),
        "settings": asdict(settings),
        "answers": [
            {"item_id": r.item_id, "answer": r.judge} for r in answers.itertuples() if r.judge in ANSWERS
        ],
        "unparsed": [r.item_id for r in answers.itertuples() if r.judge not in ANSWERS],
    }
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{manifest['batch_id']}-mllm-judge.json"
    path.write_text(json.dumps(doc, indent=1))
    return {
        "answers": str(path),
        "items": len(items),
        "answered": len(doc["answers"]),
        "unparsed": len(doc["unparsed"]),
    }
