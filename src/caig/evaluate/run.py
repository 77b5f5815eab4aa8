"""``caig evaluate``: every PCPO / DPO run judged round by round on the held-out products.

EVALUATION ONLY: the world's oracle judges the descriptions that the PCPO loop wrote for held-out products
after each round (``round-NN/heldout.parquet``; round 0 is the pre-trained PM). Figures: match rate (paper
Figure 4), true-CTR uplift over the pre-trained PM (the simulated online A/B test), the RM's win rate of the
final round over the pre-trained PM, the reward-hacking indicator (share of generic eye-catching terms) and
per-category uplift (Table 2's analogue). Writes ``eval.json``, plots, a sample grid and ``report.md``/``.html``.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pandas as pd

from caig.errors import UserError
from caig.evaluate.catalog import Catalog
from caig.evaluate.metrics import category_uplift, ctr_uplift, judge_choices, judge_generations, summarise
from caig.evaluate.plots import plot_by_round, sample_grid
from caig.evaluate.report_page import write_report
from caig.evaluate.rounds import load_round_pairs, load_rounds
from caig.evaluate.win_rate import paired, rm_win_rate
from caig.profile import Profile
from caig.world.loaded import World, load_world

log = logging.getLogger("caig.evaluate")
SAMPLE_PRODUCTS = 4


def choices_by_round(world: World, pairs: list[pd.DataFrame]) -> list[dict[str, float]] | None:
    """The oracle's view of the RM's choices per round, when the training products are in ``world``.

    None when there are no pairs (runs from before pairs were saved) or when the rounds trained on another
    world's products (a held-out ``--world``): the oracle of ``world`` cannot judge them.
    """
    if not pairs or any(not set(p["product_id"]) <= set(world.products.index) for p in pairs):
        return None
    return [judge_choices(world, p) for p in pairs]


def evaluate_run(world: World, rounds: list[pd.DataFrame]) -> dict[str, Any]:
    """Per-round oracle summaries of one method, uplift relative to its round 0 (the pre-trained PM)."""
    judged = [judge_generations(world, f["product_id"].tolist(), f["description"].tolist()) for f in rounds]
    base = judged[0]
    by_round = [summarise(j) for j in judged]
    final = by_round[-1]
    return {
        "rounds": len(rounds) - 1,
        "match_rate": final["match_rate"],
        "ctr_uplift": ctr_uplift(judged[-1], base),
        "eye_catching_share": final["eye_catching_share"],
        "match_rate_by_round": [s["match_rate"] for s in by_round],
        "ctr_uplift_by_round": [ctr_uplift(j, base) for j in judged],
        "eye_catching_share_by_round": [s["eye_catching_share"] for s in by_round],
        "mismatch_final": {k: final[k] for k in ("mismatch_scene", "mismatch_scale", "mismatch_colour")},
        "category_uplift": category_uplift(judged[-1], base),
        "by_round": by_round,
    }


def run_evaluation(
    profile: Profile,
    world_dir: str | Path,
    runs: dict[str, str | Path],
    rm_dir: str | Path | None,
    out: str | Path,
) -> dict[str, Any]:
    """Judge every run; write ``out/eval.json``, plots and the report; return the flat metrics."""
    from caig.render.factory import make_renderer

    world, out = load_world(world_dir), Path(out)
    out.mkdir(parents=True, exist_ok=True)
    renderer = make_renderer(profile.render)
    scorer = _scorer(rm_dir)
    results, rounds_by_method = {}, {}
    for method, run_dir in runs.items():
        rounds = load_rounds(Path(run_dir))
        rounds_by_method[method] = rounds
        results[method] = evaluate_run(world, rounds)
        choices = choices_by_round(world, load_round_pairs(Path(run_dir)))
        if choices is not None:
            results[method]["rm_choices_by_round"] = choices
        if scorer is not None:
            pairs = paired(rounds[0], rounds[-1])
            results[method]["rm_win_rate"] = rm_win_rate(Catalog(world.directory), scorer, renderer, pairs)
        log.info(
            "%s: match rate %.3f -> %.3f, true-CTR uplift %+.3f",
            method,
            results[method]["match_rate_by_round"][0],
            results[method]["match_rate"],
            results[method]["ctr_uplift"],
        )
    figures = _figures(world, renderer, results, rounds_by_method, out)
    (out / "eval.json").write_text(json.dumps({"methods": results, "figures": figures}, indent=2))
    write_report(out, results, figures)
    return flat_metrics(results)


def flat_metrics(results: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """``method.key`` entries for the run's metrics.json."""
    keys = (
        "match_rate",
        "ctr_uplift",
        "match_rate_by_round",
        "ctr_uplift_by_round",
        "eye_catching_share",
        "rm_win_rate",
    )
    return {f"{m}.{k}": r[k] for m, r in results.items() for k in keys if k in r}


def _scorer(rm_dir: str | Path | None) -> Any:
    if rm_dir is None:
        return None
    from caig.reward.scoring import RewardScorer

    return RewardScorer.from_dir(rm_dir)


def _figures(world: World, renderer: Any, results: dict, rounds_by_method: dict, out: Path) -> dict[str, str]:
    match = plot_by_round(
        {m: r["match_rate_by_round"] for m, r in results.items()},
        "match rate",
        "Match rate by round (Figure 4)",
        out / "match_rate_by_round.png",
    )
    uplift = plot_by_round(
        {m: r["ctr_uplift_by_round"] for m, r in results.items()},
        "true-CTR uplift",
        "True-CTR uplift over the pre-trained PM",
        out / "ctr_uplift_by_round.png",
    )
    first_method = next(iter(rounds_by_method))
    products = rounds_by_method[first_method][0]["product_id"].tolist()[:SAMPLE_PRODUCTS]
    rows = []
    for pid in products:
        image = world.product_image(pid)
        cols = [("product", image, world.products.loc[pid, "title"])]
        base = rounds_by_method[first_method][0].set_index("product_id").loc[pid, "description"]
        cols.append(("pre-trained PM", _render_or_blank(renderer, image, base), base))
        for method, rounds in rounds_by_method.items():
            text = rounds[-1].set_index("product_id").loc[pid, "description"]
            cols.append((f"{method} final", _render_or_blank(renderer, image, text), text))
        rows.append((f"{pid} {world.products.loc[pid, 'title']}", cols))
    grid = sample_grid(rows, out / "samples.png")
    return {"match_rate_by_round": match.name, "ctr_uplift_by_round": uplift.name, "samples": grid.name}


def _render_or_blank(renderer: Any, image: Any, text: str) -> Any:
    from PIL import Image

    try:
        return renderer.render(image, text, 0)
    except UserError:
        return Image.new("RGB", (128, 128), (220, 220, 220))
