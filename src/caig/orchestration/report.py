"""The run report: every step's metrics and figures on one self-contained page.

The last step of a pipeline merges the stages' metrics files into one flat object (the run's
``metrics.json``), and writes an HTML page (metrics table by stage, figures inlined as PNG, so the file
can be opened anywhere and shown by the Kubeflow UI) and a short Markdown summary.
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

log = logging.getLogger("caig.orchestration")


def build_run_report(
    metric_files: list[str | Path],
    figures: Mapping[str, str | Path],
    html_out: str | Path,
    markdown_out: str | Path,
    title: str = "caig run report",
) -> dict[str, Any]:
    """Merge the steps' metrics and write the HTML report and the Markdown summary.

    Args:
        metric_files: each step's metrics JSON (``record_metrics`` output), in pipeline order.
        figures: caption -> PNG file; a missing file is logged and listed on the page, not dropped silently.
        html_out: where to write the HTML page.
        markdown_out: where to write the Markdown summary.
        title: page title.

    Returns:
        The merged flat metrics.
    """
    metrics = merge_metrics(list(metric_files))
    Path(html_out).parent.mkdir(parents=True, exist_ok=True)
    Path(html_out).write_text(render_html(title, metrics, figures))
    Path(markdown_out).parent.mkdir(parents=True, exist_ok=True)
    Path(markdown_out).write_text(render_markdown(title, metrics))
    log.info("report: %d metrics from %d steps, %d figures", len(metrics), len(metric_files), len(figures))
    return metrics


def figures_in(directory: Path) -> dict[str, Path]:
    """Every PNG below ``directory`` (sorted), captioned by its path there: a stage's plots for the report."""
    directory = Path(directory)
    return {str(p.relative_to(directory).with_suffix("")): p for p in sorted(directory.rglob("*.png"))}


def render_html(title: str, metrics: Mapping[str, Any], figures: Mapping[str, str | Path]) -> str:
    """A self-contained page: one metrics table per stage, then the figures."""
    sections = []
    for stage, rows in _by_stage(metrics).items():
        body = "".join(
            f"<tr><td>{html.escape(k)}</td><td>{html.escape(format_value(v))}</td></tr>" for k, v in rows
        )
        sections.append(f"<h3>{html.escape(stage)}</h3><table>{body}</table>")
    pictures = []
    for caption, path in figures.items():
        path = Path(path)
        if path.is_file():
            data = base64.b64encode(path.read_bytes()).decode()
            pictures.append(
                f'<figure><img alt="{html.escape(caption)}" src="data:image/png;base64,{data}">'
                f"<figcaption>{html.escape(caption)}</figcaption></figure>"
            )
        else:
            log.warning("report: figure '%s' missing at %s", caption, path)
            pictures.append(f"<p>figure '{html.escape(caption)}' is missing ({html.escape(str(path))})</p>")
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:sans-serif;margin:2em}}td{{padding:2px 12px;border-bottom:1px solid #ddd}}
figure{{margin:1em 0}}img{{max-width:100%}}</style></head>
<body><h1>{html.escape(title)}</h1><h2>Metrics</h2>{"".join(sections)}<h2>Figures</h2>{"".join(pictures)}
</body></html>"""


def render_markdown(title: str, metrics: Mapping[str, Any]) -> str:
    """A Markdown table of every metric (what the Kubeflow UI shows for a Markdown artifact)."""
    lines = [f"# {title}", "", "| metric | value |", "|---|---|"]
    lines += [f"| {k} | {format_value(v)} |" for k, v in metrics.items()]
    return "\n".join(lines) + "\n"


def format_value(value: Any) -> str:
    """Floats to 4 decimals, lists element-wise, everything else as JSON."""
    if isinstance(value, float):
        return f"{value:.4f}"
    if isinstance(value, list):
        return "[" + ", ".join(format_value(v) for v in value) + "]"
    return value if isinstance(value, str) else json.dumps(value)


def _by_stage(metrics: Mapping[str, Any]) -> dict[str, list[tuple[str, Any]]]:
    stages: dict[str, list[tuple[str, Any]]] = {}
    for key, value in metrics.items():
        stages.setdefault(key.split(".", 1)[0], []).append((key, value))
    return stages
