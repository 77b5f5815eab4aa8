"""Evaluation where no simulator exists (imported real logs): what a team can measure for real.

The oracle's figures (match rate by the world's judge, true-CTR uplift) exist only in the simulated world.
On real data the paper's own protocol stands in: the A.2 review batch of every run's held-out ads by round
(``caig.evaluate.review_export.export_batch``, for people to answer), answered at once by the automatic MLLM judge
(the pre-trained PM asked the A.2 question, ``caig.evaluate.mllm_judge.judge_batch``), whose answers give a
match rate per method and round (``import_batch``), and the RM's win rate of each run's final round over the
pre-trained PM. The oracle's figures are reported as skipped, with the reason.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from caig.errors import UserError
from caig.evaluate.catalog import Catalog
from caig.evaluate.mllm_judge import judge_batch
from caig.evaluate.review_aggregate import import_batch
from caig.evaluate.review_export import export_batch
from caig.evaluate.rounds import load_rounds
from caig.evaluate.win_rate import paired, rm_win_rate
from caig.profile import Profile

log = logging.getLogger("caig.evaluate")
BATCH_ID = "heldout"
PER_CELL = 50  # held-out products per (method, round) in the review batch
ORACLE_ONLY = {
    "match_rate": "the world's match judge exists only in the simulator; judge_match_rate is the MLLM judge's",
    "ctr_uplift": "true CTR exists only in the simulator; on real traffic measure it with an A/B test of the "
    "selector (caig serve selector)",
}


def pm_of(run_dir: Path) -> Path:
    """The pre-trained PM a `caig pcpo` run started from (``pcpo.json``'s ``pm``)."""
    summary = Path(run_dir) / "pcpo.json"
    if not summary.is_file():
        raise UserError(f"{run_dir} holds no pcpo.json; pass `caig pcpo --out` directories")
    return Path(json.loads(summary.read_text())["pm"])


def evaluate_without_oracle(
    profile: Profile,
    data_dir: str | Path,
    runs: dict[str, str | Path],
    rm_dir: str | Path | None,
    out: str | Path,
) -> dict[str, Any]:
    """Review batch, MLLM judge and RM win rate of every run; write ``out/eval.json``; return flat metrics."""
    from caig.render.factory import make_renderer

    out, catalog = Path(out), Catalog(data_dir)
    out.mkdir(parents=True, exist_ok=True)
    renderer = make_renderer(profile.render)
    review = export_batch(renderer, runs, data_dir, out / "review", BATCH_ID, per_cell=PER_CELL)
    judge_model = pm_of(Path(next(iter(runs.values()))))
    judged = judge_batch(judge_model, out / "review", out / "judge", dtype=profile.mllm.dtype)
    rates = import_batch(out / "review", [judged["answers"]])
    results: dict[str, dict[str, Any]] = {}
    for method in runs:
        cells = sorted((c for c in rates["cells"] if c["method"] == method), key=lambda c: c["round"])
        results[method] = {
            "judge_match_rate": cells[-1]["match_rate"] if cells else None,
            "judge_match_rate_by_round": [c["match_rate"] for c in cells],
        }
    if rm_dir is not None:
        from caig.reward.scoring import RewardScorer

        scorer = RewardScorer.from_dir(rm_dir)
        for method, run_dir in runs.items():
            rounds = load_rounds(Path(run_dir))
            pairs = paired(rounds[0], rounds[-1])
            results[method]["rm_win_rate"] = rm_win_rate(catalog, scorer, renderer, pairs)
    report = {"methods": results, "review": review, "judge": judged, "skipped": ORACLE_ONLY}
    (out / "eval.json").write_text(json.dumps(report, indent=2, default=str))
    log.info("evaluated without an oracle: %s", {m: r["judge_match_rate"] for m, r in results.items()})
    flat = {f"{m}.{k}": v for m, r in results.items() for k, v in r.items()}
    return {**flat, **{f"evaluate.skipped.{k}": v for k, v in ORACLE_ONLY.items()}}
