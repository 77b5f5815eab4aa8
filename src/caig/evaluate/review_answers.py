"""A review batch's answer files, checked: every answer is accounted for.

An answer naming an unknown item, an answer outside the A.2 kinds or a repeated answer is rejected with the
file and item named; a file that is not an answers file of the batch is an error. Several reviewers' answers
to one item become one label (``item_labels``).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from caig.errors import UserError
from caig.evaluate.review import ANSWERS

# An item several reviewers split on gets the first of the tied answers in this order: a mismatch before
# "match", so ties never raise the match rate.
TIE_ORDER = ("scale", "scene", "colour", "match")


@dataclass
class ParsedAnswers:
    """Accepted answers (one row each: file, reviewer, item_id, answer, method, round, product_id), the
    rejected ones (file, item_id, reason) and how many answers the files held in all."""

    accepted: pd.DataFrame
    rejected: list[dict[str, Any]]
    n_total: int


def parse_answers(manifest: Mapping[str, Any], paths: Sequence[str | Path]) -> ParsedAnswers:
    """Check every answer of every file against the batch; a file that is not an answers file of this batch
    is an error, a bad answer inside one is rejected (named) and the rest are kept."""
    if not paths:
        raise UserError("no answer files given; pass --answers FILE (repeatable) saved from the review page")
    items = manifest["items"]
    rows, rejected, seen, n_total = [], [], set(), 0
    for path in paths:
        doc = _answers_file(Path(path), manifest["batch_id"])
        reviewer = str(doc.get("reviewer") or "").strip() or f"(unnamed: {Path(path).name})"
        for k, answer in enumerate(doc["answers"]):
            n_total += 1
            item_id = answer.get("item_id") if isinstance(answer, dict) else None
            reason = _rejection(answer, item_id, items)
            if reason is None and (reviewer, item_id) in seen:
                reason = f"answered twice by reviewer {reviewer!r}"
            if reason is not None:
                rejected.append({"file": str(path), "index": k, "item_id": item_id, "reason": reason})
                continue
            seen.add((reviewer, item_id))
            meta = items[item_id]
            rows.append(
                {
                    "file": str(path),
                    "reviewer": reviewer,
                    "item_id": item_id,
                    "answer": answer["answer"],
                    "method": meta["method"],
                    "round": int(meta["round"]),
                    "product_id": meta["product_id"],
                }
            )
    columns = ["file", "reviewer", "item_id", "answer", "method", "round", "product_id"]
    return ParsedAnswers(pd.DataFrame(rows, columns=columns), rejected, n_total)


def _answers_file(path: Path, batch_id: str) -> dict[str, Any]:
    try:
        doc = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise UserError(
            f"{path}: not a readable answers file ({err}); save one with the review page's button"
        ) from None
    if not isinstance(doc, dict) or not isinstance(doc.get("answers"), list):
        raise UserError(f"{path}: no 'answers' list; save the answers with the review page's button")
    if doc.get("batch_id") != batch_id:
        raise UserError(
            f"{path}: answers for batch {doc.get('batch_id')!r}, not {batch_id!r}; "
            "import them with their own batch's --batch directory"
        )
    return doc


def _rejection(answer: Any, item_id: Any, items: Mapping[str, Any]) -> str | None:
    """Why an answer cannot count, or None."""
    if not isinstance(answer, dict):
        return f"not an object with item_id and answer: {answer!r}"
    if not isinstance(item_id, str) or item_id not in items:
        return f"unknown item {item_id!r}: not in this batch"
    if answer.get("answer") not in ANSWERS:
        return f"answer {answer.get('answer')!r} is not one of {', '.join(ANSWERS)}"
    return None


def item_labels(accepted: pd.DataFrame) -> pd.DataFrame:
    """One label per answered item: its reviewers' most frequent answer (ties go to a mismatch, see
    ``TIE_ORDER``); columns item_id, method, round, answer, n_reviewers, tied, unanimous."""
    rows = []
    for item_id, group in accepted.groupby("item_id", sort=True):
        counts = Counter(group["answer"])
        top = max(counts.values())
        tied = [a for a in TIE_ORDER if counts[a] == top]
        match_votes = counts["match"]
        rows.append(
            {
                "item_id": item_id,
                "method": group["method"].iloc[0],
                "round": int(group["round"].iloc[0]),
                "answer": tied[0],
                "n_reviewers": len(group),
                "tied": len(tied) > 1,
                "unanimous": match_votes in (0, len(group)),
            }
        )
    columns = ["item_id", "method", "round", "answer", "n_reviewers", "tied", "unanimous"]
    return pd.DataFrame(rows, columns=columns)
