"""Sample ads by round for the run report: what PCPO and DPO wrote for the same held-out products.

Each run directory (``caig pcpo --out``) holds ``round-NN/heldout.parquet``: one description per held-out
product and round (round 0: the pre-trained PM). The evaluation directory holds the rendered final ads
(``samples.png``, in a simulated world) or, on real data, the review batch (``review/batch.json`` and an
ad image per method, round and product). The report shows the same few products in every round, the first
ones of round 0 (those the rendered grid shows), preferring products with a rendered ad. Missing files
give fewer samples, never an error.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger("caig.orchestration")

PER_ROUND = 3  # products shown per round
GRID = "samples.png"  # the evaluation's rendered final ads (caig.evaluate.run)
REVIEW = Path("review") / "batch.json"  # the review batch's manifest (caig.evaluate.review_export)


@dataclass(frozen=True)
class Cell:
    """One method's ad for one product and round: its description, and its rendered image where one exists."""

    description: str
    image: Path | None = None


@dataclass(frozen=True)
class SampleRow:
    """One held-out product in one round, with every method's ad."""

    round: int
    product_id: str
    title: str
    cells: dict[str, Cell]
    product_image: Path | None = None


@dataclass
class Samples:
    """The rows (by round, then product), the methods in column order, the rendered grid if any."""

    rows: list[SampleRow] = field(default_factory=list)
    methods: list[str] = field(default_factory=list)
    grid: Path | None = None


def collect_samples(
    runs: Mapping[str, str | Path],
    evaluation: str | Path | None = None,
    world: str | Path | None = None,
    per_round: int = PER_ROUND,
) -> Samples:
    """Descriptions by round from each run in ``runs`` (method -> run directory), rendered ads from
    ``evaluation`` where it has them, product titles from ``world``'s catalog."""
    descriptions = {method: round_descriptions(Path(path)) for method, path in runs.items()}
    descriptions = {method: rounds for method, rounds in descriptions.items() if rounds}
    ads = review_ads(Path(evaluation) / REVIEW) if evaluation else {}
    grid = Path(evaluation) / GRID if evaluation else None
    samples = Samples(methods=list(descriptions), grid=grid if grid and grid.is_file() else None)
    products = pick_products(descriptions, ads, per_round)
    catalog = product_info(Path(world) if world else None, products)
    n_rounds = max((len(rounds) for rounds in descriptions.values()), default=0)
    for r in range(n_rounds):
        for pid in products:
            cells = {
                method: Cell(rounds[r].get(pid, ""), ads.get((method, r, pid)))
                for method, rounds in descriptions.items()
                if r < len(rounds)
            }
            title, image = catalog.get(pid, ("", None))
            samples.rows.append(SampleRow(r, pid, title, cells, image))
    return samples


def round_descriptions(run_dir: Path) -> list[dict[str, str]]:
    """``[{product_id: description}]`` of round 0, 1, ... of a run (contiguous rounds; none: [])."""
    import pandas as pd

    rounds, r = [], 0
    while (path := run_dir / f"round-{r:02d}" / "heldout.parquet").is_file():
        frame = pd.read_parquet(path, columns=["product_id", "description"])
        rounds.append(
            dict(zip(frame["product_id"].astype(str), frame["description"].astype(str), strict=True))
        )
        r += 1
    return rounds


def review_ads(manifest: Path) -> dict[tuple[str, int, str], Path]:
    """``{(method, round, product_id): ad image}`` of a review batch (none without its manifest)."""
    if not manifest.is_file():
        return {}
    try:
        items = json.loads(manifest.read_text())["items"].values()
        ads = {(i["method"], int(i["round"]), str(i["product_id"])): manifest.parent / i["ad"] for i in items}
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
        log.warning("report: review batch %s unreadable (%s); no rendered ads by round", manifest, err)
        return {}
    return {key: path for key, path in ads.items() if path.is_file()}


def pick_products(
    descriptions: Mapping[str, list[dict[str, str]]], ads: Mapping[tuple[str, int, str], Path], n: int
) -> list[str]:
    """The first ``n`` products of the first run's round 0 that every run holds, those with an ad first."""
    if not descriptions:
        return []
    first = next(iter(descriptions.values()))[0]
    shared = [pid for pid in first if all(pid in rounds[0] for rounds in descriptions.values())]
    rendered = {pid for _, _, pid in ads}
    return sorted(shared, key=lambda pid: pid not in rendered)[:n]


def product_info(world: Path | None, products: list[str]) -> dict[str, tuple[str, Path | None]]:
    """``{product_id: (title, product image)}`` from the world's ``catalog.parquet`` (none if unreadable)."""
    if world is None or not products or not (world / "catalog.parquet").is_file():
        return {}
    import pandas as pd

    try:
        catalog = pd.read_parquet(world / "catalog.parquet", columns=["product_id", "title", "image_path"])
    except (OSError, ValueError, KeyError) as err:
        log.warning("report: no product titles from %s (%s)", world, err)
        return {}
    catalog = catalog[catalog["product_id"].astype(str).isin(products)]
    return {
        str(pid): (str(title), world / str(image) if (world / str(image)).is_file() else None)
        for pid, title, image in catalog[["product_id", "title", "image_path"]].itertuples(index=False)
    }
