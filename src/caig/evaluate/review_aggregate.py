"""A review batch's answers turned into match rates: 95% Wilson intervals and mismatch-kind counts per method
and round, and the reviewers' agreement.

``import_batch`` refuses the batch when any answer is rejected (``caig.evaluate.review_answers``) unless told
to go on without the rejected answers, whose count and reasons are then part of the result.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from caig.errors import UserError
from caig.evaluate.review import ANSWERS, match_rates
from caig.evaluate.review_answers import item_labels, parse_answers
from caig.evaluate.review_export import read_manifest

SHOWN_REJECTIONS = 5


def import_batch(
    batch: str | Path, answer_paths: Sequence[str | Path], skip_rejected: bool = False
) -> dict[str, Any]:
    """Match rate with a 95% Wilson interval and answer counts per method and round, from answer files.

    Raises, naming the first rejected answers, when any answer is rejected, unless ``skip_rejected``: then
    the rest count and the result lists every rejection. Items no reviewer answered are counted per cell.
    """
    manifest = read_manifest(batch)
    parsed = parse_answers(manifest, answer_paths)
    if parsed.rejected and not skip_rejected:
        shown = "; ".join(
            f"{r['file']}: item {r['item_id']!r}: {r['reason']}" for r in parsed.rejected[:SHOWN_REJECTIONS]
        )
        more = len(parsed.rejected) - SHOWN_REJECTIONS
        raise UserError(
            f"{len(parsed.rejected)} of {parsed.n_total} answers rejected: {shown}"
            + (f"; and {more} more" if more > 0 else "")
            + " (fix the files, or pass --skip-rejected to import the rest and list the rejections)"
        )
    labels = item_labels(parsed.accepted)
    rates = match_rates(labels) if len(labels) else pd.DataFrame()
    rates_by_cell = {(r["method"], r["round"]): r for r in rates.to_dict("records")}
    cells = []
    for (method, rnd), group in _cells(manifest).items():
        rate = rates_by_cell.get((method, rnd), {})
        answered = set(labels.loc[(labels["method"] == method) & (labels["round"] == rnd), "item_id"])
        cells.append(
            {
                "method": method,
                "round": rnd,
                "items": group["items"],
                "judged": len(answered),
                "unanswered": group["items"] - len(answered),
                "unrenderable": group["unrenderable"],
                "match_rate": _number(rate.get("match_rate")),
                "ci_low": _number(rate.get("ci_low")),
                "ci_high": _number(rate.get("ci_high")),
                "answers": {a: int(rate.get(a, 0)) for a in ANSWERS},
                "tied": int(labels.loc[labels["item_id"].isin(answered), "tied"].sum()),
            }
        )
    multi = labels[labels["n_reviewers"] > 1]
    return {
        "batch_id": manifest["batch_id"],
        "files": [str(p) for p in answer_paths],
        "reviewers": sorted(parsed.accepted["reviewer"].unique().tolist()),
        "n_answers": parsed.n_total,
        "n_accepted": len(parsed.accepted),
        "n_rejected": len(parsed.rejected),
        "rejected": parsed.rejected,
        "reviewer_agreement": {
            "items": len(multi),
            "match_agreement": _number(float(multi["unanimous"].mean())) if len(multi) else None,
        },
        "cells": cells,
    }


def _cells(manifest: Mapping[str, Any]) -> dict[tuple[str, int], dict[str, int]]:
    """Items and unrenderable descriptions of each (method, round) of the batch, in sorted order."""
    cells: dict[tuple[str, int], dict[str, int]] = {}
    for meta in manifest["items"].values():
        cells.setdefault((meta["method"], int(meta["round"])), {"items": 0, "unrenderable": 0})["items"] += 1
    for bad in manifest.get("unrenderable", []):
        cell = cells.setdefault((bad["method"], int(bad["round"])), {"items": 0, "unrenderable": 0})
        cell["unrenderable"] += 1
    return dict(sorted(cells.items()))


def _number(value: Any) -> float | None:
    """JSON-safe float: None for missing or NaN."""
    if value is None:
        return None
    value = float(value)
    return None if np.isnan(value) else value


def markdown(result: Mapping[str, Any]) -> str:
    """The import's table: one row per method and round."""
    lines = [
        "| method | round | judged | match rate | 95% CI | "
        + " | ".join(ANSWERS)
        + " | unanswered | unrenderable |",
        "|---|---|---|---|---|" + "---|" * len(ANSWERS) + "---|---|",
    ]
    for c in result["cells"]:
        rate = "-" if c["match_rate"] is None else f"{c['match_rate']:.3f}"
        ci = "-" if c["ci_low"] is None else f"{c['ci_low']:.3f}-{c['ci_high']:.3f}"
        counts = " | ".join(str(c["answers"][a]) for a in ANSWERS)
        lines.append(
            f"| {c['method']} | {c['round']} | {c['judged']} | {rate} | {ci} | {counts} | "
            f"{c['unanswered']} | {c['unrenderable']} |"
        )
    return "\n".join(lines) + "\n"
