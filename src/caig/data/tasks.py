"""The pre-training task mix (paper section 3.2, Table 3 analogue) from a world's catalog, images and logs.

Tasks, each an (image or none, question, answer) example:

- image understanding: product image -> category, colour, a short product description; creative image ->
  its background description;
- multimodal comprehension: product image + attributes (f_instruct) -> the product title;
- prompt generation: product image + a Table 4 PM template with the caption + attributes -> the background
  description of one of the product's high-CTR creatives; the same from the attributes alone (no image);
  and rewriting one of its low-CTR descriptions into a high-CTR one (Table 3's prompt -> optimised prompt).

"High-CTR" comes from the LOGGED clicks and impressions (``events/`` or an ingested ``creative_stats.parquet``),
smoothed towards the product's mean CTR; the world's oracle is never read here. Products are split into
train and held-out sets (by product, seeded); ``tasks.parquet`` holds the training examples,
``heldout.parquet`` the held-out products' examples, ``products.parquet`` the split, and ``tasks.json`` the
counts per task and what was skipped.
"""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from caig.errors import UserError
from caig.mllm.config import INSTRUCT_ATTRIBUTES, TaskMixConfig
from caig.mllm.instruct import f_instruct, pm_prompt
from caig.mllm.templates import (
    CAPTION_PROMPT_QUESTION,
    CATEGORY_QUESTION,
    COLOUR_QUESTION,
    DESCRIBE_BACKGROUND_QUESTION,
    DESCRIBE_PRODUCT_QUESTION,
    REWRITE_QUESTION,
    TITLE_QUESTION,
)

log = logging.getLogger("caig.data")
TASK_COLUMNS = ["task", "group", "product_id", "image_path", "question", "answer"]
TASK_GROUPS = {
    "category": "image_understanding",
    "colour": "image_understanding",
    "describe_product": "image_understanding",
    "describe_background": "image_understanding",
    "title": "multimodal_comprehension",
    "prompt_generation": "prompt_generation",
    "caption_prompt": "prompt_generation",
    "rewrite": "prompt_generation",
}


def logged_creative_ctr(world_dir: Path, stats_path: Path | None = None) -> pd.DataFrame:
    """Impressions and clicks per creative from the logs: ``creative_id, impressions, clicks``.

    From an ingested ``creative_stats.parquet`` when given, else from the world's ``events/`` parquet files
    (duplicate ``event_id``s counted once), with DuckDB in bounded memory.
    """
    import duckdb  # only here: the rest of the stage (and the GPU images) need no DuckDB

    con = duckdb.connect()
    if stats_path is not None:
        if not Path(stats_path).is_file():
            raise UserError(
                f"--stats {stats_path}: no such file; pass DS/creative_stats.parquet of `caig data ingest`"
            )
        query = (
            "SELECT creative_id, SUM(impressions)::BIGINT AS impressions, SUM(clicks)::BIGINT AS clicks "
            "FROM read_parquet(?) GROUP BY creative_id"
        )
        return con.execute(query, [str(stats_path)]).df()
    files = sorted((world_dir / "events").glob("*/*.parquet"))
    if not files:
        raise UserError(f"{world_dir}/events holds no parquet files; build the world or pass --stats")
    query = (
        "SELECT creative_id, COUNT(*)::BIGINT AS impressions, SUM(CAST(clicked AS INT))::BIGINT AS clicks FROM "
        "(SELECT DISTINCT event_id, creative_id, clicked FROM read_parquet(?)) GROUP BY creative_id"
    )
    return con.execute(query, [[str(f) for f in files]]).df()


def rank_creatives(creatives: pd.DataFrame, stats: pd.DataFrame, config: TaskMixConfig) -> pd.DataFrame:
    """Creatives with a logged CTR smoothed towards their product's mean, ranked within each product.

    Only creatives with more than ``min_impressions`` impressions are ranked (``rank`` 0 = best); the
    smoothed CTR is ``(clicks + m * product_ctr) / (impressions + m)`` with ``m = prior_strength``.
    """
    df = creatives.merge(stats, on="creative_id", how="left").fillna({"impressions": 0, "clicks": 0})
    per_product = df.groupby("product_id")[["clicks", "impressions"]].transform("sum")
    prior = per_product["clicks"] / per_product["impressions"].clip(lower=1)
    m = config.prior_strength
    df["ctr"] = (df["clicks"] + m * prior) / (df["impressions"] + m).clip(lower=1e-9)
    df = df[df["impressions"] > config.min_impressions].copy()
    df["rank"] = df.groupby("product_id")["ctr"].rank(ascending=False, method="first").astype(int) - 1
    df["rank_from_bottom"] = (
        df.groupby("product_id")["ctr"].rank(ascending=True, method="first").astype(int) - 1
    )
    return df.sort_values(["product_id", "rank"]).reset_index(drop=True)


def split_products(product_ids: Sequence[str], config: TaskMixConfig) -> dict[str, str]:
    """``product_id -> "train" | "heldout"``, seeded; at least one product on each side."""
    ids = sorted(product_ids)
    rng = np.random.default_rng(config.split_seed)
    order = rng.permutation(len(ids))
    n_heldout = min(max(1, round(len(ids) * config.heldout_fraction)), len(ids) - 1)
    heldout = {ids[i] for i in order[:n_heldout]}
    return {pid: ("heldout" if pid in heldout else "train") for pid in ids}


def product_examples(
    product: dict[str, Any],
    ranked: pd.DataFrame,
    creatives: pd.DataFrame,
    config: TaskMixConfig,
    attributes: Sequence[str],
    rng: random.Random,
) -> list[dict[str, Any]]:
    """Every task's examples for one product (``ranked``: this product's ranked creatives)."""
    image, pid = product["image_path"], product["product_id"]
    out: list[dict[str, Any]] = []

    def add(task: str, image_path: str, question: str, answer: str) -> None:
        out.append(
            {
                "task": task,
                "group": TASK_GROUPS[task],
                "product_id": pid,
                "image_path": image_path,
                "question": question,
                "answer": answer,
            }
        )

    for _ in range(config.category):
        add("category", image, CATEGORY_QUESTION, product["category"])
    for _ in range(config.colour):
        add("colour", image, COLOUR_QUESTION, product["colour"])
    for _ in range(config.describe_product):
        add(
            "describe_product",
            image,
            DESCRIBE_PRODUCT_QUESTION,
            f"a {product['colour']} {product['category']}",
        )
    own = creatives[creatives["product_id"] == pid]
    for _ in range(config.describe_background if len(own) else 0):
        creative = own.iloc[rng.randrange(len(own))]
        add(
            "describe_background",
            creative["image_path"],
            DESCRIBE_BACKGROUND_QUESTION,
            creative["description"],
        )
    no_title = [a for a in attributes if a != "title"]
    for _ in range(config.title):
        add("title", image, f_instruct(TITLE_QUESTION, product, no_title), product["title"])
    top = ranked[ranked["rank"] < config.top_k_creatives]["description"].tolist()
    if not top:
        return out
    for i in range(config.prompt_generation):
        add("prompt_generation", image, pm_prompt(product, attributes, rng=rng), top[i % len(top)])
    for i in range(config.caption_prompt):
        add("caption_prompt", "", f_instruct(CAPTION_PROMPT_QUESTION, product, attributes), top[i % len(top)])
    low = ranked[(ranked["rank_from_bottom"] == 0) & (ranked["rank"] > 0)]["description"].tolist()
    for i in range(config.rewrite if low else 0):
        add(
            "rewrite",
            image,
            f_instruct(REWRITE_QUESTION.format(low[0]), product, attributes),
            top[i % len(top)],
        )
    return out


def build_task_mix(
    world_dir: str | Path,
    out: str | Path,
    config: TaskMixConfig,
    attributes: Sequence[str] = INSTRUCT_ATTRIBUTES,
    stats_path: str | Path | None = None,
) -> dict[str, Any]:
    """Write the task mix of a world to ``out`` (see the module docstring) and return its summary."""
    world_dir, out = Path(world_dir).resolve(), Path(out)
    catalog = pd.read_parquet(world_dir / "catalog.parquet")
    creatives = pd.read_parquet(world_dir / "creatives.parquet")
    stats = logged_creative_ctr(world_dir, Path(stats_path) if stats_path else None)
    ranked = rank_creatives(creatives, stats, config)
    split = split_products(catalog["product_id"].tolist(), config)
    rng = random.Random(config.split_seed)
    by_product = dict(tuple(ranked.groupby("product_id")))
    rows = []
    for product in catalog.to_dict("records"):
        product_ranked = by_product.get(product["product_id"], ranked.iloc[0:0])
        for row in product_examples(product, product_ranked, creatives, config, attributes, rng):
            rows.append({**row, "split": split[product["product_id"]]})
    examples = pd.DataFrame(rows, columns=[*TASK_COLUMNS, "split"])
    return _write(world_dir, out, catalog, split, examples, ranked, config, attributes)


def _write(
    world_dir: Path,
    out: Path,
    catalog: pd.DataFrame,
    split: dict[str, str],
    examples: pd.DataFrame,
    ranked: pd.DataFrame,
    config: TaskMixConfig,
    attributes: Sequence[str],
) -> dict[str, Any]:
    out.mkdir(parents=True, exist_ok=True)
    train = examples[examples["split"] == "train"].drop(columns="split").reset_index(drop=True)
    heldout = examples[examples["split"] == "heldout"].drop(columns="split").reset_index(drop=True)
    train.to_parquet(out / "tasks.parquet", index=False)
    heldout.to_parquet(out / "heldout.parquet", index=False)
    products = catalog.assign(split=catalog["product_id"].map(split))
    products.to_parquet(out / "products.parquet", index=False)
    no_ranked = sorted(set(catalog["product_id"]) - set(ranked["product_id"]))
    summary = {
        "world_dir": str(world_dir),
        "n_products": {
            "train": int((products["split"] == "train").sum()),
            "heldout": int((products["split"] == "heldout").sum()),
        },
        "n_examples": {"train": len(train), "heldout": len(heldout)},
        "tasks": {t: int(n) for t, n in train["task"].value_counts().sort_index().items()},
        "groups": {g: int(n) for g, n in train["group"].value_counts().sort_index().items()},
        "products_without_ranked_creatives": len(no_ranked),
        "ranked_creatives": len(ranked),
        "config": {**config.__dict__},
        "attributes": list(attributes),
    }
    (out / "tasks.json").write_text(json.dumps(summary, indent=2))
    log.info(
        "task mix: %d train / %d held-out examples; %d products had no creative above %d impressions",
        len(train),
        len(heldout),
        len(no_ranked),
        config.min_impressions,
    )
    return summary


def load_task_mix(tasks_dir: str | Path) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """(train examples, held-out examples, summary) of a task-mix directory."""
    tasks_dir = Path(tasks_dir)
    if not (tasks_dir / "tasks.json").is_file():
        raise UserError(f"{tasks_dir} holds no tasks.json; write a task mix with `caig mllm tasks --out DIR`")
    summary = json.loads((tasks_dir / "tasks.json").read_text())
    return (
        pd.read_parquet(tasks_dir / "tasks.parquet"),
        pd.read_parquet(tasks_dir / "heldout.parquet"),
        summary,
    )
