"""The review page (blind, self-contained) and the match-rate statistics of the human review loop."""

import re

import pandas as pd
import pytest
from PIL import Image

from caig.errors import UserError
from caig.evaluate.review import ANSWERS, ReviewItem, export_review, match_rates, wilson_interval


def _items():
    img = Image.new("RGB", (32, 32), (200, 0, 0))
    return [
        ReviewItem(f"i{k}", "P1", "red sofa", "in a living room", "pcpo" if k % 2 else "dpo", 1, img, img)
        for k in range(6)
    ]


def test_export_writes_a_self_contained_blind_page(tmp_path):
    page = export_review(_items(), tmp_path / "review.html", "b1").read_text()
    assert page.count('type="radio"') == 6 * len(ANSWERS)
    assert page.count("data:image/png;base64,") == 12
    assert "http" not in page.replace("http-equiv", "")  # nothing fetched from elsewhere
    text = re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "", page)
    assert "pcpo" not in text and "dpo" not in text
    assert "new Blob(" in page and "a.download" in page


def test_an_empty_batch_is_an_error(tmp_path):
    with pytest.raises(UserError, match="no items"):
        export_review([], tmp_path / "review.html", "b1")


def test_match_rate_per_method_with_interval_and_kind_counts():
    labels = pd.DataFrame(
        {
            "method": ["pcpo", "pcpo", "pcpo", "dpo", "dpo", "dpo"],
            "round": [1] * 6,
            "answer": ["match", "match", "scale", "match", "scene", "scene"],
        }
    )
    rates = match_rates(labels).set_index("method")
    assert rates.loc["pcpo", "match_rate"] == pytest.approx(2 / 3)
    assert rates.loc["dpo", "match_rate"] == pytest.approx(1 / 3)
    assert rates.loc["pcpo", "ci_low"] < 2 / 3 < rates.loc["pcpo", "ci_high"]
    assert (rates.loc["dpo", "scene"], rates.loc["dpo", "scale"], rates.loc["pcpo", "scale"]) == (2, 0, 1)


def test_wilson_interval_known_value():
    lo, hi = wilson_interval(8, 10)
    assert lo == pytest.approx(0.4902, abs=1e-3) and hi == pytest.approx(0.9433, abs=1e-3)
    lo, hi = wilson_interval(0, 20)
    assert lo == 0.0 and hi == pytest.approx(0.1611, abs=1e-3)  # clamped, never a rounding -0.000
    assert wilson_interval(20, 20)[1] <= 1.0
