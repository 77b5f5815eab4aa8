"""The pre-training task mix of paper Table 3 from a world's catalog, images and logs.

Tasks, each an (image or none, question, answer) example, grouped as in Table 3 ("CTR-driven Advertising
Image Generation with Multimodal Large Language Models", arXiv 2502.06823); the paper's counts (in 10k
examples) are in brackets, ours are ``TaskMixConfig``'s per-product counts:

- image understanding (15): ``category``, ``colour`` and ``describe_product`` (product image -> category,
  colour, "a red sneakers"; Table 3's <product image> -> <image description> (5), ours split into the
  attributes the evaluation asks for), ``describe_background`` (a creative image -> its background
  description; <product image> -> <product background description> (5): our product images have no
  background, so the ad image shows it), ``title`` (product image + the other attributes -> the title;
  <product image><product caption> -> <image description> (5));
- multimodal content understanding (15): ``caption_background``, a creative image + the product's caption
  (f_instruct attributes) -> that creative's background description. The creative is a random one of the
  product's own (seeded), its image shown, so the answer can be read from the input, and products without
  logged clicks get it too; preferring high-CTR backgrounds is the prompt-generation tasks' part (drawing
  from the high-CTR creatives instead gave no better held-out match rate in the local demo);
- prompt generation (91): ``none_prompt`` (no image, no product: a generic question -> a high-CTR
  description; <None> -> <prompt> (5)), ``rewrite`` (one of the product's low-CTR descriptions -> a high-CTR
  one; <prompt> -> <optimised prompt> (5); ours also shows the product image and attributes, since what makes
  a background click depends on the product), ``image_prompt`` (product image only (10)), ``caption_prompt``
  (caption + attributes only, no image (10)) and ``prompt_generation`` (product image + a Table 4 PM template
  with the caption + attributes (61), the prompt the PM is asked at inference).

"Caption" is the product's attributes through f_instruct (the title also fills the PM template's slot);
"prompt" is a background description. The prompt-generation targets are the descriptions of the product's
``top_k_creatives`` highest-CTR creatives, ranked by the LOGGED clicks and impressions (``events/`` or an
ingested ``creative_stats.parquet``), smoothed towards the product's mean CTR; the simulated world's oracle
is never read here. Products with no creative above ``min_impressions`` get no prompt-generation examples
(and ``rewrite`` needs a second ranked creative), so the defaults are set on a built mix.

A catalog may lack attributes (imported real logs often have only ``product_id``, ``title``,
``image_path``): tasks whose question or answer reads a missing column are skipped, f_instruct gets only the
attributes the catalog has, and every skipped example is counted with its reason. Products are split into
train and held-out sets (by product, seeded); ``tasks.parquet`` holds the training examples,
``heldout.parquet`` the held-out products' examples, ``products.parquet`` the split, and ``tasks.json`` the
counts and shares per task and group, and the skipped examples per task and reason.
"""

from __future__ import annotations

import json
import logging
import random
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from caig.errors import UserError
from caig.mllm.config import INSTRUCT_ATTRIBUTES, TaskMixConfig
from caig.mllm.instruct import catalog_attributes, f_instruct, pm_prompt
from caig.mllm.templates import (
    CAPTION_BACKGROUND_QUESTION,
    CAPTION_PROMPT_QUESTION,
    CATEGORY_QUESTION,
    COLOUR_QUESTION,
    DESCRIBE_BACKGROUND_QUESTION,
    DESCRIBE_PRODUCT_QUESTION,
    IMAGE_PROMPT_QUESTION,
    NONE_PROMPT_QUESTION,
    REWRITE_QUESTION,
    TITLE_QUESTION,
)

log = logging.getLogger("caig.data")
TASK_COLUMNS = ["task", "group", "product_id", "image_path", "question", "answer"]
# Table 3's groups ("multimodal_comprehension" is its "multimodal content understanding").
TASK_GROUPS = {
    "category": "image_understanding",
    "colour": "image_understanding",
    "describe_product": "image_understanding",
    "describe_background": "image_understanding",
    "title": "image_understanding",
    "caption_background": "multimodal_comprehension",
    "none_prompt": "prompt_generation",
    "rewrite": "prompt_generation",
    "image_prompt": "prompt_generation",
    "caption_prompt": "prompt_generation",
    "prompt_generation": "prompt_generation",
}
# Catalog columns a task's question or answer reads beyond product_id and image_path (f_instruct's
# attributes are cut to the catalog's own, so they are not listed); the PM template's caption is the title.
TASK_NEEDS = {
    "category": ("category",),
    "colour": ("colour",),
    "describe_product": ("category", "colour"),
    "title": ("title",),
    "prompt_generation": ("title",),
}
NO_CREATIVES = "the product has no creatives"
NO_RANKED = "no creative of the product has more than min_impressions logged impressions"
NO_LOW = "fewer than two ranked creatives: no low-CTR description to rewrite"
Example = tuple[str, str, str]  # (image_path or "", question, answer)


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


def attribute_gaps(columns: Sequence[str], config: TaskMixConfig) -> dict[str, str]:
    """``task -> reason`` for the configured tasks that read a column the catalog lacks."""
    gaps = {}
    for task, needs in TASK_NEEDS.items():
        missing = [c for c in needs if c not in columns]
        if missing and config.task_counts()[task]:
            gaps[task] = f"the catalog has no {', '.join(missing)} column"
    return gaps


def product_examples(
    product: Mapping[str, Any],
    ranked: pd.DataFrame,
    creatives: pd.DataFrame,
    config: TaskMixConfig,
    attributes: Sequence[str],
    rng: random.Random,
    skip: Mapping[str, str] | None = None,
    skipped: Counter[tuple[str, str]] | None = None,
) -> list[dict[str, Any]]:
    """Every task's examples for one product (``ranked``: this product's ranked creatives).

    ``skip`` names tasks to leave out with their reason (see ``attribute_gaps``); tasks this product has no
    data for are left out too. Each left-out example is added to ``skipped[(task, reason)]``.
    """
    pid = product["product_id"]
    own = creatives[creatives["product_id"] == pid]
    top = ranked[ranked["rank"] < config.top_k_creatives]["description"].tolist()
    low = ranked[(ranked["rank_from_bottom"] == 0) & (ranked["rank"] > 0)]["description"].tolist()
    gaps = {**_data_gaps(len(own), len(top), len(low)), **(skip or {})}
    makers = _makers(product, own, top, low, attributes, rng)
    out = []
    for task, n in config.task_counts().items():
        if n and task in gaps:
            if skipped is not None:
                skipped[(task, gaps[task])] += n
            continue
        for i in range(n):
            image, question, answer = makers[task](i)
            out.append(dict(zip(TASK_COLUMNS, (task, TASK_GROUPS[task], pid, image, question, answer))))
    return out


def _data_gaps(n_own: int, n_top: int, n_low: int) -> dict[str, str]:
    """``task -> reason`` for the tasks a product lacks the creatives or logged clicks for."""
    gaps = {}
    if not n_top:
        gaps |= {t: NO_RANKED for t, g in TASK_GROUPS.items() if g == "prompt_generation"}
    elif not n_low:
        gaps["rewrite"] = NO_LOW
    if not n_own:
        gaps |= {"describe_background": NO_CREATIVES, "caption_background": NO_CREATIVES}
    return gaps


def _makers(
    product: Mapping[str, Any],
    own: pd.DataFrame,
    top: list[str],
    low: list[str],
    attributes: Sequence[str],
    rng: random.Random,
) -> dict[str, Callable[[int], Example]]:
    """``task -> make(i)``, the i-th example of the task for this product (called only when it has data)."""
    image = product["image_path"]
    no_title = [a for a in attributes if a != "title"]

    def creative(question: str) -> Example:
        row = own.iloc[rng.randrange(len(own))]
        return row["image_path"], question, row["description"]

    return {
        "category": lambda i: (image, CATEGORY_QUESTION, product["category"]),
        "colour": lambda i: (image, COLOUR_QUESTION, product["colour"]),
        "describe_product": lambda i: (
            image,
            DESCRIBE_PRODUCT_QUESTION,
            f"a {product['colour']} {product['category']}",
        ),
        "describe_background": lambda i: creative(DESCRIBE_BACKGROUND_QUESTION),
        "title": lambda i: (image, f_instruct(TITLE_QUESTION, product, no_title), product["title"]),
        "caption_background": lambda i: creative(
            f_instruct(CAPTION_BACKGROUND_QUESTION, product, attributes)
        ),
        "none_prompt": lambda i: ("", NONE_PROMPT_QUESTION, top[i % len(top)]),
        "rewrite": lambda i: (
            image,
            f_instruct(REWRITE_QUESTION.format(low[0]), product, attributes),
            top[i % len(top)],
        ),
        "image_prompt": lambda i: (image, IMAGE_PROMPT_QUESTION, top[i % len(top)]),
        "caption_prompt": lambda i: (
            "",
            f_instruct(CAPTION_PROMPT_QUESTION, product, attributes),
            top[i % len(top)],
        ),
        "prompt_generation": lambda i: (image, pm_prompt(product, attributes, rng=rng), top[i % len(top)]),
    }


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
    present = catalog_attributes(attributes, catalog.columns)
    absent = [a for a in attributes if a not in present]
    skip = attribute_gaps(list(catalog.columns), config)
    rng = random.Random(config.split_seed)
    by_product = dict(tuple(ranked.groupby("product_id")))
    rows, skipped = [], {"train": Counter(), "heldout": Counter()}
    for product in catalog.to_dict("records"):
        side = split[product["product_id"]]
        product_ranked = by_product.get(product["product_id"], ranked.iloc[0:0])
        examples = product_examples(
            product, product_ranked, creatives, config, present, rng, skip, skipped[side]
        )
        rows += [{**row, "split": side} for row in examples]
    examples = pd.DataFrame(rows, columns=[*TASK_COLUMNS, "split"])
    summary = _write(world_dir, out, catalog, split, examples, ranked, config, present)
    return _finish(out, summary, skipped, absent)


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
    """Write the examples and the split; return the summary's counts and shares (train examples)."""
    out.mkdir(parents=True, exist_ok=True)
    train = examples[examples["split"] == "train"].drop(columns="split").reset_index(drop=True)
    heldout = examples[examples["split"] == "heldout"].drop(columns="split").reset_index(drop=True)
    train.to_parquet(out / "tasks.parquet", index=False)
    heldout.to_parquet(out / "heldout.parquet", index=False)
    products = catalog.assign(split=catalog["product_id"].map(split))
    products.to_parquet(out / "products.parquet", index=False)
    no_ranked = sorted(set(catalog["product_id"]) - set(ranked["product_id"]))
    tasks = train["task"].value_counts().sort_index()
    groups = train["group"].value_counts().sort_index()
    total = max(len(train), 1)
    summary = {
        "world_dir": str(world_dir),
        "n_products": {
            "train": int((products["split"] == "train").sum()),
            "heldout": int((products["split"] == "heldout").sum()),
        },
        "n_examples": {"train": len(train), "heldout": len(heldout)},
        "tasks": {t: int(n) for t, n in tasks.items()},
        "groups": {g: int(n) for g, n in groups.items()},
        "task_shares": {t: round(n / total, 4) for t, n in tasks.items()},
        "group_shares": {g: round(n / total, 4) for g, n in groups.items()},
        "products_without_ranked_creatives": len(no_ranked),
        "ranked_creatives": len(ranked),
        "config": {**config.__dict__},
        "attributes": list(attributes),
    }
    log.info(
        "task mix: %d train / %d held-out examples; %d products had no creative above %d impressions",
        len(train),
        len(heldout),
        len(no_ranked),
        config.min_impressions,
    )
    return summary


def _finish(
    out: Path, summary: dict[str, Any], skipped: dict[str, Counter], absent: Sequence[str]
) -> dict[str, Any]:
    """Add the missing attributes and the skipped examples (``task -> reason -> split -> n``), write
    ``tasks.json`` and return the summary."""
    table: dict[str, dict[str, dict[str, int]]] = {}
    for side, counts in skipped.items():
        for (task, reason), n in sorted(counts.items()):
            table.setdefault(task, {}).setdefault(reason, {"train": 0, "heldout": 0})[side] = n
    summary = {**summary, "attributes_missing": list(absent), "skipped": table}
    for task, reasons in table.items():
        for reason, n in reasons.items():
            log.info("task %s: skipped %d train / %d held-out examples: %s", task, *n.values(), reason)
    (out / "tasks.json").write_text(json.dumps(summary, indent=2))
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
