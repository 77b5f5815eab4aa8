"""The evaluation report: a Markdown table per method and an HTML page with the figures embedded."""

from __future__ import annotations

import base64
import html
from pathlib import Path
from typing import Any

ROWS = (
    ("match_rate", "match rate (final)"),
    ("ctr_uplift", "true-CTR uplift vs pre-trained PM"),
    ("rm_win_rate", "RM win rate vs pre-trained PM"),
    ("eye_catching_share", "eye-catching share (hacking)"),
)


def markdown(results: dict[str, dict[str, Any]]) -> str:
    """Methods as columns; final-round figures and the match rate of every round."""
    methods = list(results)
    lines = ["| metric | " + " | ".join(methods) + " |", "|---|" + "---|" * len(methods)]
    for key, label in ROWS:
        lines.append(f"| {label} | " + " | ".join(_fmt(results[m].get(key)) for m in methods) + " |")
    n_rounds = max(len(r["match_rate_by_round"]) for r in results.values())
    for r in range(n_rounds):
        values = [
            results[m]["match_rate_by_round"][r] if r < len(results[m]["match_rate_by_round"]) else None
            for m in methods
        ]
        lines.append(f"| match rate, round {r} | " + " | ".join(_fmt(v) for v in values) + " |")
    lines.extend(_choice_rows(results, methods))
    categories = sorted({c for r in results.values() for c in r["category_uplift"]})
    for c in categories:
        lines.append(
            f"| uplift: {c} | "
            + " | ".join(_fmt(results[m]["category_uplift"].get(c)) for m in methods)
            + " |"
        )
    return "\n".join(lines) + "\n"


def _choice_rows(results: dict[str, dict[str, Any]], methods: list[str]) -> list[str]:
    """Per round, the share of decisive pairs where the RM chose the matching description (oracle view)."""
    choices = {m: results[m].get("rm_choices_by_round") or [] for m in methods}
    rows = []
    for r in range(max((len(c) for c in choices.values()), default=0)):
        values = [choices[m][r]["rm_prefers_match"] if r < len(choices[m]) else None for m in methods]
        rows.append(
            f"| RM chose the matching one, round {r + 1} | " + " | ".join(_fmt(v) for v in values) + " |"
        )
    return rows


def write_report(out: Path, results: dict[str, dict[str, Any]], figures: dict[str, str]) -> Path:
    """``out/report.md`` and ``out/report.html`` (figures inlined, so the page is one file)."""
    table = markdown(results)
    (out / "report.md").write_text(
        "# Offline evaluation\n\n"
        + table
        + "".join(f"\n![{name}]({file})\n" for name, file in figures.items())
    )
    images = "".join(
        f'<h2>{html.escape(name)}</h2><img alt="{html.escape(name)}" src="data:image/png;base64,'
        f'{base64.b64encode((out / file).read_bytes()).decode()}">'
        for name, file in figures.items()
    )
    rows = table.strip().splitlines()
    head = rows[0].strip("|").split("|")
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(c.strip())}</td>" for c in r.strip("|").split("|")) + "</tr>"
        for r in rows[2:]
    )
    page = (
        '<!doctype html><html><head><meta charset="utf-8"><title>caig evaluation</title><style>'
        "body{font-family:sans-serif;margin:2em}td,th{padding:2px 10px;border-bottom:1px solid #ddd}</style>"
        "</head><body><h1>Offline evaluation</h1><table><tr>"
        + "".join(f"<th>{html.escape(h.strip())}</th>" for h in head)
        + f"</tr>{body}</table>{images}</body></html>"
    )
    path = out / "report.html"
    path.write_text(page)
    return path


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:+.3f}" if abs(value) < 1 and value < 0 else f"{value:.3f}"
    return str(value)
