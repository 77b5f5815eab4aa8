"""The demo run on one machine: every stage that exists, end to end, into one run directory.

Writes ``OUT/metrics.json`` (a flat object of the run's headline figures) and ``OUT/report.html``. Issue 9
moves the same steps under the KFP local runner; until then the stages run in process, in pipeline order.
"""

from __future__ import annotations

import base64
import html
import json
import logging
import time
from pathlib import Path

from caig.profile import Profile
from caig.world.build import build_world

log = logging.getLogger("caig.demo")


def run_demo(profile: Profile, out: Path, seed: int = 0) -> dict:
    """Run the pipeline's stages in order; return the flat metrics written to ``out/metrics.json``."""
    metrics: dict = {}
    steps = [("world", lambda: _world_step(profile, out, seed))]
    for i, (name, step) in enumerate(steps, start=1):
        started = time.perf_counter()
        log.info("[%d/%d] %s ...", i, len(steps), name)
        metrics.update(step())
        log.info("[%d/%d] %s done in %.1f s", i, len(steps), name, time.perf_counter() - started)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    write_report(out, metrics)
    return metrics


def _world_step(profile: Profile, out: Path, seed: int) -> dict:
    summary = build_world(profile.world, out / "world", seed=seed, pair_rule=profile.data.pairs)
    keys = ("n_products", "n_creatives", "n_events", "n_clicks", "n_pairs", "bayes_pair_accuracy")
    return {f"world.{k}": summary[k] for k in keys}


def write_report(out: Path, metrics: dict) -> Path:
    """A self-contained HTML page: the metrics table and the world's contact sheet."""
    rows = "\n".join(f"<tr><td>{html.escape(k)}</td><td>{html.escape(_fmt(v))}</td></tr>" for k, v in metrics.items())
    sheet = out / "world" / "contact_sheet.png"
    image = ""
    if sheet.exists():
        data = base64.b64encode(sheet.read_bytes()).decode()
        image = f'<h2>World: products and their creatives</h2><img alt="contact sheet" src="data:image/png;base64,{data}">'
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>caig run report</title>
<style>body{{font-family:sans-serif;margin:2em}}td{{padding:2px 12px;border-bottom:1px solid #ddd}}</style></head>
<body><h1>caig run report</h1><h2>Metrics</h2><table>{rows}</table>{image}</body></html>"""
    path = out / "report.html"
    path.write_text(page)
    return path


def _fmt(value: object) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)
