"""Human review of match rate where there is no oracle (paper A.2): an annotation batch as one
self-contained HTML page that saves the reviewer's answers to a JSON file, and the import of those answers
into match rates with confidence intervals per method and round.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd
from PIL import Image

from caig.errors import UserError

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


def _data_uri(image: Image.Image) -> str:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def export_review(items: Iterable[ReviewItem], out: Path, batch_id: str) -> Path:
    """Write ``out`` (HTML): each item's product and ad side by side, the A.2 question, and a button that
    downloads the answers as ``<batch_id>-answers.json``. Items are shown blind (no method or round)."""
    items = list(items)
    if not items:
        raise UserError("nothing to review: the batch has no items")
    meta = {
        i.item_id: {k: v for k, v in asdict(i).items() if k not in ("product_image", "ad_image")}
        for i in items
    }
    cards = "\n".join(_card(i) for i in items)
    page = _PAGE.format(
        batch=html.escape(batch_id),
        question=html.escape(QUESTION),
        cards=cards,
        meta=json.dumps(meta),
        n=len(items),
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page)
    return out


def _card(item: ReviewItem) -> str:
    options = "".join(
        f'<label><input type="radio" name="{html.escape(item.item_id)}" value="{a}"> {a}</label> '
        for a in ANSWERS
    )
    return (
        f'<div class="card"><div class="pics"><img alt="product" src="{_data_uri(item.product_image)}">'
        f'<img alt="ad" src="{_data_uri(item.ad_image)}"></div><p><b>{html.escape(item.title)}</b><br>'
        f"<i>{html.escape(item.description)}</i></p><p>{options}</p></div>"
    )


_PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>caig review {batch}</title>
<style>body{{font-family:sans-serif;margin:2em}}.card{{border:1px solid #ccc;padding:8px;margin:8px 0}}
.pics img{{width:192px;height:192px;image-rendering:pixelated;margin-right:8px}}</style></head><body>
<h1>Ad review: batch {batch}</h1><p>{question}</p><p>{n} ads. Answer each, then press <b>Save answers</b>.</p>
{cards}
<p>Reviewer: <input id="reviewer" placeholder="your name"> <button id="save">Save answers</button>
<span id="status"></span></p>
<script>
const META = {meta};
document.getElementById('save').onclick = () => {{
  const answers = [];
  for (const id of Object.keys(META)) {{
    const picked = document.querySelector('input[name="' + CSS.escape(id) + '"]:checked');
    if (picked) answers.push(Object.assign({{}}, META[id], {{answer: picked.value}}));
  }}
  const doc = {{batch_id: "{batch}", reviewer: document.getElementById('reviewer').value, answers: answers}};
  const blob = new Blob([JSON.stringify(doc, null, 1)], {{type: 'application/json'}});
  const a = document.createElement('a');
  a.href = URL.createObjectURL(blob); a.download = "{batch}-answers.json"; a.click();
  document.getElementById('status').textContent = answers.length + ' of {n} answered and saved';
}};
</script></body></html>"""


def import_answers(paths: Iterable[Path]) -> pd.DataFrame:
    """Read answer files; reject unknown answers naming the file and item. One row per answer."""
    rows = []
    for path in paths:
        try:
            doc = json.loads(Path(path).read_text())
        except (OSError, json.JSONDecodeError) as err:
            raise UserError(
                f"{path}: not a readable answers file ({err}); export one from the review page"
            ) from None
        for answer in doc.get("answers", []):
            if answer.get("answer") not in ANSWERS:
                raise UserError(
                    f"{path}: item {answer.get('item_id')!r} has answer {answer.get('answer')!r}; "
                    f"expected one of {', '.join(ANSWERS)}"
                )
            rows.append({**answer, "reviewer": doc.get("reviewer", ""), "file": str(path)})
    return pd.DataFrame(rows)


def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval of a proportion (sound for small n and rates near 0 or 1)."""
    if n == 0:
        return (float("nan"), float("nan"))
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (centre - half, centre + half)


def match_rates(answers: pd.DataFrame) -> pd.DataFrame:
    """Match rate with a 95% Wilson interval per method and round."""
    out = []
    for (method, rnd), group in answers.groupby(["method", "round"], sort=True):
        k, n = int((group["answer"] == "match").sum()), len(group)
        lo, hi = wilson_interval(k, n)
        out.append(
            {"method": method, "round": int(rnd), "n": n, "match_rate": k / n, "ci_low": lo, "ci_high": hi}
        )
    return pd.DataFrame(out)
