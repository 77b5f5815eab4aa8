"""The run report: the run's answers first, then its figures and sample ads, then every metric.

The last step of a pipeline merges the stages' metrics files into one flat object (the run's
``metrics.json``) and writes one self-contained HTML page (figures and ads inlined as PNG, so the file can
be opened anywhere and shown by the Kubeflow UI) and the same story as Markdown:

1. the headline (``caig.orchestration.report_headline``): data kept and quarantined, the RM against its
   ceiling, PCPO against DPO by round, the online A/B, the selector's priors; "skipped: <reason>" where a
   figure does not exist for this run (real data has no oracle);
2. the plots the steps drew;
3. sample ads by round (``caig.orchestration.report_samples``): the same held-out products, PCPO and DPO;
4. every metric by stage, folded away.

This module is the one place the report is built; the pipelines' report components only pass paths.
"""

from __future__ import annotations

import base64
import html
import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from caig.orchestration.metrics import merge_metrics
from caig.orchestration.report_headline import ROUNDS_TOPIC, Headline, headline
from caig.orchestration.report_samples import Samples

log = logging.getLogger("caig.orchestration")

CAPTIONS = {  # file stem -> caption, for the figures the steps draw
    "match_rate_by_round": "Match rate by round, PCPO and DPO (Figure 4)",
    "ctr_uplift_by_round": "True-CTR uplift over the pre-trained PM, by round",
    "online_ab": "Online A/B (simulated): CTR of the logged creatives alone, plus PCPO's, plus DPO's",
}
STYLE = (
    "body{font-family:sans-serif;margin:2em;max-width:70em}li{margin:.3em 0}.skipped{color:#777}"
    "td,th{padding:2px 12px;border-bottom:1px solid #ddd;text-align:left;vertical-align:top}"
    "figure{margin:1em 0}img{max-width:100%}.ad img{width:96px;display:block}"
    ".ad{max-width:22em;font-size:90%}summary{cursor:pointer;font-weight:bold}"
)


def build_run_report(
    metric_files: list[str | Path],
    figures: Mapping[str, str | Path],
    html_out: str | Path,
    markdown_out: str | Path,
    title: str = "caig run report",
    samples: Samples | None = None,
) -> dict[str, Any]:
    """Merge the steps' metrics and write the HTML report and its Markdown twin.

    Args:
        metric_files: each step's metrics JSON (``record_metrics`` output), in pipeline order.
        figures: caption -> PNG file; a missing file is logged and listed on the page, not dropped silently.
        html_out: where to write the HTML page.
        markdown_out: where to write the Markdown report (headline, sample descriptions, every metric).
        title: page title.
        samples: sample ads by round (``report_samples.collect_samples``); None: no such section.

    Returns:
        The merged flat metrics.
    """
    metrics = merge_metrics(list(metric_files))
    Path(html_out).parent.mkdir(parents=True, exist_ok=True)
    Path(html_out).write_text(render_html(title, metrics, figures, samples))
    Path(markdown_out).parent.mkdir(parents=True, exist_ok=True)
    Path(markdown_out).write_text(render_markdown(title, metrics, samples))
    log.info("report: %d metrics from %d steps, %d figures", len(metrics), len(metric_files), len(figures))
    return metrics


def figures_in(directory: Path, recursive: bool = True) -> dict[str, Path]:
    """Every PNG in ``directory`` (below it too if ``recursive``), sorted, captioned by its path there, or
    by ``CAPTIONS`` for the figures the steps are known to draw: a stage's plots for the report."""
    directory = Path(directory)
    found = sorted(directory.rglob("*.png") if recursive else directory.glob("*.png"))
    return {CAPTIONS.get(p.stem, str(p.relative_to(directory).with_suffix(""))): p for p in found}


def training_figures(world: str | Path, evaluation: str | Path, online: str | Path) -> dict[str, Path]:
    """The training run's plots: the world's contact sheet, the evaluation's and the online A/B's figures
    (their top level: the review batch's ads and the evaluation's ``samples.png`` go to the sample ads)."""
    figures = {"World: products and their creatives": Path(world) / "contact_sheet.png"}
    evaluated = figures_in(Path(evaluation), recursive=False).items()
    order = list(CAPTIONS)  # the drawn figures in the headline's order, then any other
    evaluated = sorted(
        evaluated, key=lambda item: order.index(item[1].stem) if item[1].stem in order else len(order)
    )
    figures.update({caption: p for caption, p in evaluated if p.name != "samples.png"})
    figures.update(figures_in(Path(online), recursive=False))
    return figures


def render_html(
    title: str, metrics: Mapping[str, Any], figures: Mapping[str, str | Path], samples: Samples | None = None
) -> str:
    """A self-contained page: the headline, the figures, the sample ads, every metric in ``<details>``."""
    body = [f"<h1>{html.escape(title)}</h1>", headline_html(headline(metrics))]
    if figures:
        body.append("<h2>Figures</h2>" + "".join(_figure_html(c, Path(p)) for c, p in figures.items()))
    if samples is not None:
        body.append(samples_html(samples))
    body.append(metrics_html(metrics))
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>{STYLE}</style></head>
<body>{"".join(body)}
</body></html>"""


def headline_html(h: Headline) -> str:
    """The headline as a list, PCPO against DPO by round as a table under its line."""
    if not h.lines:
        return '<section id="headline"><h2>Headline</h2><p>No headline figures in this run.</p></section>'
    items = []
    for line in h.lines:
        css = ' class="skipped"' if line.skipped else ""
        item = f"<li{css}><b>{html.escape(line.topic)}</b>: {html.escape(line.text)}"
        if line.topic == ROUNDS_TOPIC and h.rounds is not None:
            item += _table_html(h.rounds.columns, h.rounds.rows)
        items.append(item + "</li>")
    return f'<section id="headline"><h2>Headline</h2><ul>{"".join(items)}</ul></section>'


def samples_html(samples: Samples) -> str:
    """Sample ads by round: per round a table of products against methods (image where rendered)."""
    parts = ["<h2>Sample ads by round</h2>"]
    if samples.grid is not None:
        parts.append(
            _figure_html("Rendered ads: product, pre-trained PM, each method's final round", samples.grid)
        )
    if not samples.rows:
        parts.append("<p>No held-out descriptions by round in this run.</p>")
    names = [m.upper() for m in samples.methods]
    for r in sorted({row.round for row in samples.rows}):
        rows = []
        for row in (s for s in samples.rows if s.round == r):
            product = html.escape(f"{row.product_id} {row.title}".strip())
            product = (_img(row.product_image, row.product_id) if row.product_image else "") + product
            cells = [row.cells.get(m) for m in samples.methods]
            rows.append(f'<tr><td class="ad">{product}</td>' + "".join(_ad_html(c) for c in cells) + "</tr>")
        header = "".join(f"<th>{html.escape(n)}</th>" for n in ["product", *names])
        parts.append(f"<h3>{_round_name(r)}</h3><table><tr>{header}</tr>{''.join(rows)}</table>")
    return "".join(parts)


def metrics_html(metrics: Mapping[str, Any]) -> str:
    """Every metric, one table per stage, folded away in ``<details>``."""
    sections = [
        f"<h3>{html.escape(stage)}</h3>"
        + _table_html(("metric", "value"), [(k, format_value(v)) for k, v in rows])
        for stage, rows in _by_stage(metrics).items()
    ]
    summary = f"All {len(metrics)} metrics, by stage"
    return f"<details><summary>{summary}</summary>{''.join(sections)}</details>"


def render_markdown(title: str, metrics: Mapping[str, Any], samples: Samples | None = None) -> str:
    """The headline, the sample descriptions by round and every metric, as Markdown (what the Kubeflow UI
    shows for a Markdown artifact; the figures are on the HTML page)."""
    lines = [f"# {title}", "", "## Headline", "", *headline_markdown(headline(metrics))]
    if samples is not None and samples.rows:
        lines += ["## Sample ads by round", "", *samples_markdown(samples)]
    lines += ["## All metrics", "", "| metric | value |", "|---|---|"]
    lines += [f"| {k} | {_md_cell(format_value(v))} |" for k, v in metrics.items()]
    return "\n".join(lines) + "\n"


def headline_markdown(h: Headline) -> list[str]:
    """The headline as Markdown lines: a bullet per answer, the by-round table under its bullet."""
    if not h.lines:
        return ["No headline figures in this run.", ""]
    lines = []
    for line in h.lines:
        lines.append(f"- **{line.topic}**: {_md_cell(line.text)}")
        if line.topic == ROUNDS_TOPIC and h.rounds is not None:
            lines += ["", *_table_markdown(h.rounds.columns, h.rounds.rows), ""]
    return [*lines, ""]


def samples_markdown(samples: Samples) -> list[str]:
    """Per round, a table of the sample products' descriptions by method."""
    lines = []
    for r in sorted({row.round for row in samples.rows}):
        rows = [
            (
                f"{row.product_id} {row.title}".strip(),
                *(_cell_text(row.cells.get(m)) for m in samples.methods),
            )
            for row in samples.rows
            if row.round == r
        ]
        header = ("product", *(m.upper() for m in samples.methods))
        lines += [f"### {_round_name(r)}", "", *_table_markdown(header, rows), ""]
    return lines


def format_value(value: Any) -> str:
    """Floats to 4 decimals, lists element-wise, everything else as JSON."""
    if isinstance(value, float):
        return f"{value:.4f}"
    if isinstance(value, list):
        return "[" + ", ".join(format_value(v) for v in value) + "]"
    return value if isinstance(value, str) else json.dumps(value)


def _figure_html(caption: str, path: Path) -> str:
    if not path.is_file():
        log.warning("report: figure '%s' missing at %s", caption, path)
        return f"<p>figure '{html.escape(caption)}' is missing ({html.escape(str(path))})</p>"
    return f"<figure>{_img(path, caption)}<figcaption>{html.escape(caption)}</figcaption></figure>"


def _img(path: Path, alt: str) -> str:
    data = base64.b64encode(Path(path).read_bytes()).decode()
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def _ad_html(cell: Any) -> str:
    if cell is None:
        return '<td class="ad">-</td>'
    image = _img(cell.image, "ad") if cell.image is not None and cell.image.is_file() else ""
    return f'<td class="ad">{image}{html.escape(cell.description or "(empty)")}</td>'


def _cell_text(cell: Any) -> str:
    return "-" if cell is None else _md_cell(cell.description or "(empty)")


def _round_name(r: int) -> str:
    return "Round 0 (the pre-trained PM)" if r == 0 else f"Round {r}"


def _table_html(columns: tuple[str, ...] | list[str], rows: Any) -> str:
    header = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{header}</tr>{body}</table>"


def _table_markdown(columns: Any, rows: Any) -> list[str]:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    return lines + ["| " + " | ".join(_md_cell(str(c)) for c in row) + " |" for row in rows]


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _by_stage(metrics: Mapping[str, Any]) -> dict[str, list[tuple[str, Any]]]:
    stages: dict[str, list[tuple[str, Any]]] = {}
    for key, value in metrics.items():
        stages.setdefault(key.split(".", 1)[0], []).append((key, value))
    return stages
