"""Table 1's analogue: the RM ablation, each row adding one component, several training seeds per row.

Rows (paper Table 1, top to bottom): the base model answering "left"/"right" as text; + e-commerce
pre-training (start from the pre-trained model instead of the base one); + classification head; + product
caption; + additional product information; + point loss (the full RM). Every row is trained on the same
pairs and evaluated on the same test pairs in both orders; the table reports the mean pair accuracy, the
seed spread (min..max and standard deviation) and the gain of each row over the one above.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from caig.logs import setup_logging
from caig.reward.config import RewardConfig
from caig.reward.data import PairSource
from caig.reward.evaluate import score_and_measure
from caig.reward.io import load_reward_model
from caig.reward.scoring import RewardScorer
from caig.reward.trainer import PairStage, Stage, train_stages

log = logging.getLogger("caig.reward")


@dataclass(frozen=True)
class AblationRow:
    """One row of Table 1: which components are on."""

    name: str
    pretrained: bool  # start from the e-commerce pre-trained model (else the base model)
    classification_head: bool  # Linear(hidden, 2) head (else the answer generated as text)
    caption: bool  # product caption in the template slot
    attributes: bool  # additional product information through f_instruct
    point_loss: bool  # CTR regression branch trained with the point loss

    def reward_config(self, base: RewardConfig, seed: int) -> RewardConfig:
        """The RM config of this row, from the profile's config (the full model's settings). A row without the
        point loss trains no CTR regression: Eq. 7's MSE is off."""
        return dataclasses.replace(
            base,
            head="classification" if self.classification_head else "text",
            use_caption=self.caption,
            use_attributes=self.attributes,
            point_weight=base.point_weight if self.point_loss else 0.0,
            seed=seed,
        )


TABLE1_ROWS = (
    AblationRow("base model, answer as text", False, False, False, False, False),
    AblationRow("+ e-commerce pre-training", True, False, False, False, False),
    AblationRow("+ classification head", True, True, False, False, False),
    AblationRow("+ product caption", True, True, True, False, False),
    AblationRow("+ additional information", True, True, True, True, False),
    AblationRow("+ point loss (full RM)", True, True, True, True, True),
)


class StagePlan(Protocol):
    """What each row's RM trains on besides its Table 1 switches. Picklable: the seeds' processes get it."""

    def stages(
        self,
        row: AblationRow,
        config: RewardConfig,
        source: PairSource,
        start_model: str | Path,
        out: Path,
        shared: Path,
    ) -> list[Stage]:
        """The row's stages (``caig.reward.trainer.Stage``): from its config, the training pairs, its start
        model, its directory and a folder the RMs of one ablation may share results in."""
        ...

    def recorded(self, row: AblationRow) -> dict[str, Any]:
        """What the row's ``rm.json`` records beside its ``reward`` config."""
        ...


@dataclass(frozen=True)
class PaperStages:
    """The paper's RM: the logged pairs, one stage (the default ``StagePlan``)."""

    def stages(
        self,
        row: AblationRow,
        config: RewardConfig,
        source: PairSource,
        start_model: str | Path,
        out: Path,
        shared: Path,
    ) -> list[Stage]:
        return [PairStage("pairs", source, config)]

    def recorded(self, row: AblationRow) -> dict[str, Any]:
        return {}


def run_ablation(
    config: RewardConfig,
    base_model: str | Path,
    pretrained_model: str | Path,
    train: PairSource,
    test: PairSource,
    out: str | Path,
    ceiling: float | None = None,
    plan: StagePlan = PaperStages(),
) -> dict[str, Any]:
    """Train and evaluate the rows ``config.ablation_rows`` for every seed of ``config.ablation_seeds``.

    Each row's RM trains on the stages of ``plan`` (the logged pairs; ``caig.reward.curriculum.stages.CurriculumPlan``
    puts the profile's curriculum in front of them in every row), with its Table 1 switches (``AblationRow.reward_config``).
    Rows of one seed may share results in ``out/shared``; ``config.ablation_jobs`` > 1 trains the seeds side by
    side, one process per seed. Writes ``ablation.json`` (per row: per-seed metrics, mean, spread; the full
    model's margin over the base row when both ran) and ``ablation.md`` (the table).
    """
    if config.point_weight <= 0:
        raise ValueError("the full RM needs point_weight > 0 (reward.point_weight) for the point-loss row")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    models = (base_model, pretrained_model)
    jobs = [(config, seed, models, train, test, ceiling, plan, out) for seed in config.ablation_seeds]
    if config.ablation_jobs > 1 and len(jobs) > 1:
        workers = min(config.ablation_jobs, len(jobs))
        if config.cpu_threads == 0:  # torch's default (every core) in each worker would oversubscribe
            threads = max(1, (os.cpu_count() or 1) // workers)
            jobs = [(dataclasses.replace(job[0], cpu_threads=threads), *job[1:]) for job in jobs]
        with ProcessPoolExecutor(workers, mp_context=get_context("spawn"), initializer=setup_logging) as pool:
            by_seed = list(pool.map(train_seed_rows, *zip(*jobs)))
    else:
        by_seed = [train_seed_rows(*job) for job in jobs]
    runs_by_row = {i: [seed_runs[i] for seed_runs in by_seed] for i in config.ablation_rows}
    table = ablation_table(runs_by_row, ceiling, len(train.pairs), len(test.pairs))
    (out / "ablation.json").write_text(json.dumps(table, indent=2))
    (out / "ablation.md").write_text(markdown_table(table))
    return table


def train_seed_rows(
    config: RewardConfig,
    seed: int,
    models: tuple[str | Path, str | Path],
    train: PairSource,
    test: PairSource,
    ceiling: float | None,
    plan: StagePlan,
    out: Path,
) -> dict[int, dict[str, Any]]:
    """Train and score every row of ``config.ablation_rows`` for one seed, in order (rows of one start model
    may share the seed's results in ``out/shared``); each row's run (seed, seconds, metrics) by row index.
    ``models``: the base and the pre-trained start model."""
    runs = {}
    for i in config.ablation_rows:
        row = TABLE1_ROWS[i]
        rm_dir = out / f"row{i}" / f"seed{seed}"
        model = models[1] if row.pretrained else models[0]
        row_config = row.reward_config(config, seed)
        stages = plan.stages(row, row_config, train, model, rm_dir, out / "shared")
        summary = train_stages(model, stages, row_config, rm_dir, plan.recorded(row))
        metrics, _ = score_and_measure(RewardScorer(*load_reward_model(rm_dir)), test, ceiling)
        runs[i] = {"seed": seed, "train_seconds": summary["seconds"], **metrics}
        log.info("ablation %s seed %d: pair accuracy %.3f", row.name, seed, metrics["pair_accuracy"])
    return runs


def ablation_table(
    runs_by_row: dict[int, list[dict[str, Any]]], ceiling: float | None, train_pairs: int, test_pairs: int
) -> dict[str, Any]:
    """Table 1 from each row's runs (Table 1 index -> one run per seed): per row its switches, mean, spread
    and runs; the seeds, pair counts, ceiling and the full RM's margin over the base row (``full_against_base``)."""
    indices = sorted(runs_by_row)
    results = []
    for i in indices:
        row, runs = TABLE1_ROWS[i], runs_by_row[i]
        results.append(
            {"row": row.name, "index": i, **dataclasses.asdict(row), **summarise(runs), "runs": runs}
        )
    return {
        "rows": results,
        "ceiling": ceiling,
        "seeds": list(dict.fromkeys(r["seed"] for i in indices for r in runs_by_row[i])),  # in run order
        "train_pairs": train_pairs,
        "test_pairs": test_pairs,
        **full_against_base(results, ends=(indices[0], indices[-1]) == (0, len(TABLE1_ROWS) - 1)),
    }


def full_against_base(results: list[dict[str, Any]], ends: bool) -> dict[str, Any]:
    """The issue's test of the table: the full RM's mean pair accuracy over the base row's, against the
    largest seed spread (max - min) of any row; None where the rows run do not include both ends."""
    spread = max(r["pair_accuracy_spread"] for r in results)
    margin = results[-1]["pair_accuracy_mean"] - results[0]["pair_accuracy_mean"] if ends else None
    return {
        "full_minus_base": margin,
        "max_seed_spread": spread,
        "full_beats_base_beyond_spread": None if margin is None else bool(margin > spread),
    }


def summarise(runs: list[dict[str, Any]]) -> dict[str, float]:
    """Mean, standard deviation and spread (max - min) over seeds of the pair accuracy (and skill, where the
    test world has a ceiling) and the swap disagreement."""
    acc = np.array([r["pair_accuracy"] for r in runs])
    one = np.array([r["pair_accuracy_one_order"] for r in runs])
    dis = np.array([r["swap_disagreement"] for r in runs])
    skill = [r["skill"] for r in runs if r.get("skill") is not None]  # None without a ceiling (real data)
    return {
        **({"skill_mean": float(np.mean(skill)), "skill_spread": float(np.ptp(skill))} if skill else {}),
        "pair_accuracy_mean": float(acc.mean()),
        "pair_accuracy_std": float(acc.std(ddof=0)),
        "pair_accuracy_min": float(acc.min()),
        "pair_accuracy_max": float(acc.max()),
        "pair_accuracy_spread": float(acc.max() - acc.min()),
        "pair_accuracy_one_order_mean": float(one.mean()),
        "swap_disagreement_mean": float(dis.mean()),
    }


def markdown_table(table: dict[str, Any]) -> str:
    """Table 1's layout: the five switches, then pair accuracy (mean of seeds, spread, gain over the row above)."""

    def mark(on: bool) -> str:
        return "✓" if on else "✗"

    lines = [
        "| E-commerce pre-training | Classification head | Product caption | Additional information | "
        "Point loss | Pair accuracy (%), mean | seed min..max | gain | one order | swap disagreement |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    previous = None
    for r in table["rows"]:
        mean = 100 * r["pair_accuracy_mean"]
        gain = "" if previous is None else f"{mean - previous:+.1f}"
        lines.append(
            f"| {mark(r['pretrained'])} | {mark(r['classification_head'])} | {mark(r['caption'])} | "
            f"{mark(r['attributes'])} | {mark(r['point_loss'])} | {mean:.1f} | "
            f"{100 * r['pair_accuracy_min']:.1f}..{100 * r['pair_accuracy_max']:.1f} | {gain} | "
            f"{100 * r['pair_accuracy_one_order_mean']:.1f} | {100 * r['swap_disagreement_mean']:.1f} |"
        )
        previous = mean
    ceiling = table.get("ceiling")
    lines.append("")
    lines.append(
        f"Seeds {table['seeds']}; {table['train_pairs']} training pairs, {table['test_pairs']} test pairs "
        "scored in both orders"
        + (f"; ceiling (Bayes pair accuracy) {100 * ceiling:.1f}%." if ceiling else ".")
    )
    return "\n".join(lines) + "\n"
