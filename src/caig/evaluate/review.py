"""Human review of match rate where there is no oracle (paper A.2): the review page and the statistics.

The page is one self-contained HTML file (images inline) showing each item's product image and title beside
the generated ad, with the A.2 question and its four answers; a button saves the reviewer's answers as a JSON
file through the browser (a Blob download), so the page needs no server. Items are shown blind: the page
carries only opaque item ids, never the method or round, which stay in the batch manifest
(:mod:`caig.evaluate.review_export` builds batches, :mod:`caig.evaluate.review_answers` and
:mod:`caig.evaluate.review_aggregate` import answers).
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from PIL import Image

from caig.errors import UserError

# The A.2 answers: "match" is the paper's "Available"; the others are its three mismatch kinds.
ANSWERS = ("match", "scale", "scene", "colour")
QUESTION = (
    "Does the background match the product? If not, which mismatch is it: scale (the product's size "
    "is implausible in the scene), scene (the product does not belong in this place or mood), or "
    "colour (stark colour conflict between product and background)?"
)


@dataclass(frozen=True)
class ReviewItem:
    """One generated ad to judge; method and round let the answers be grouped after import."""

    item_id: str
    product_id: str
    title: str
    description: str
    method: str
    round: int
    product_image: Image.Image
    ad_image: Image.Image


def data_uri(image: Image.Image) -> str:
    """The image as an inline PNG ``data:`` URI."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def export_review(items: Iterable[ReviewItem], out: Path, batch_id: str) -> Path:
    """Write ``out`` (HTML): each item's product and ad side by side, the A.2 question, and a button that
    downloads the answers as ``<batch_id>-<reviewer>.json``. Only item ids reach the page (blind review)."""
    items = list(items)
    if not items:
        raise UserError("nothing to review: the batch has no items")
    cards = "\n".join(_card(i) for i in items)
    page = _PAGE.format(
        batch=html.escape(batch_id),
        batch_json=json.dumps(batch_id),
        question=html.escape(QUESTION),
        cards=cards,
        ids=json.dumps([i.item_id for i in items]),
        n=len(items),
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page)
    return out


def _card(item: ReviewItem) -> str:
    name = html.escape(item.item_id)
    options = "".join(f'<label><input type="radio" name="{name}" value="{a}"> {a}</label> ' for a in ANSWERS)
    return (
        f'<div class="card" id="card-{name}"><div class="pics">'
        f'<img alt="product" src="{data_uri(item.product_image)}">'
        f'<img alt="ad" src="{data_uri(item.ad_image)}"></div><p><b>{html.escape(item.title)}</b>'
        f" <small>({name})</small><br><i>{html.escape(item.description)}</i></p><p>{options}</p></div>"
    )


_PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>caig review {batch}</title>
<style>body{{font-family:sans-serif;margin:2em}}.card{{border:1px solid #ccc;padding:8px;margin:8px 0}}
.pics img{{width:192px;height:192px;image-rendering:pixelated;margin-right:8px}}
.missing{{border-color:#c00}}</style></head><body>
<h1>Ad review: batch {batch}</h1><p>{question}</p>
<p>Answers: <b>match</b> (fit for advertising), <b>scale</b>, <b>scene</b> or <b>colour</b> mismatch.
{n} ads; left the product, right the generated ad. Answer each, then press <b>Save answers</b> and send the
downloaded file back.</p>
{cards}
<p>Reviewer: <input id="reviewer" placeholder="your name"> <button id="save">Save answers</button>
<span id="status"></span></p>
<script>
const BATCH = {batch_json};
const IDS = {ids};
document.getElementById('save').onclick = () => {{
  const answers = [];
  for (const id of IDS) {{
    const picked = document.querySelector('input[name="' + CSS.escape(id) + '"]:checked');
    document.getElementById('card-' + id).classList.toggle('missing', !picked);
    if (picked) answers.push({{item_id: id, answer: picked.value}});
  }}
  const reviewer = document.getElementById('reviewer').value.trim();
  const doc = {{batch_id: BATCH, reviewer: reviewer, answers: answers}};
  const blob = new Blob([JSON.stringify(doc, null, 1)], {{type: 'application/json'}});
  const a = document.createElement('a');
  a.href = URL.createObjectURL(blob);
  a.download = BATCH + '-' + (reviewer.replace(/[^A-Za-z0-9_-]/g, '_') || 'answers') + '.json';
  a.click();
  document.getElementById('status').textContent =
    answers.length + ' of ' + IDS.length + ' answered and saved' +
    (answers.length < IDS.length ? ' (unanswered ads are outlined in red)' : '');
}};
</script></body></html>"""


def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval of a proportion (sound for small n and rates near 0 or 1)."""
    if n == 0:
        return (float("nan"), float("nan"))
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))  # clamp float rounding at 0 and 1


def match_rates(labels: pd.DataFrame) -> pd.DataFrame:
    """Match rate with a 95% Wilson interval and the count of each answer, per method and round.

    ``labels`` has one row per judged item: ``method``, ``round`` and ``answer`` (one of ``ANSWERS``).
    """
    out = []
    for (method, rnd), group in labels.groupby(["method", "round"], sort=True):
        k, n = int((group["answer"] == "match").sum()), len(group)
        lo, hi = wilson_interval(k, n)
        counts = {a: int((group["answer"] == a).sum()) for a in ANSWERS}
        out.append(
            {"method": method, "round": int(rnd), "n": n, "match_rate": k / n, "ci_low": lo, "ci_high": hi}
            | counts
        )
    return pd.DataFrame(out)
