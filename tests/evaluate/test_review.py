"""The human review loop: export a page, answer it as a reviewer would, import match rates with CIs."""

import json

import pytest
from PIL import Image

from caig.errors import UserError
from caig.evaluate.review import ReviewItem, export_review, import_answers, match_rates, wilson_interval


def _items():
    img = Image.new("RGB", (32, 32), (200, 0, 0))
    return [
        ReviewItem(f"i{k}", "P1", "red sofa", "in a living room", "pcpo" if k % 2 else "dpo", 1, img, img)
        for k in range(6)
    ]


def test_export_writes_a_self_contained_page(tmp_path):
    page = export_review(_items(), tmp_path / "review.html", "b1").read_text()
    assert page.count('type="radio"') == 6 * 4
    assert "data:image/png;base64," in page and "http" not in page.replace("http-equiv", "")
    assert "b1-answers.json" in page


def test_import_gives_match_rate_per_method_with_interval(tmp_path):
    answers = [
        {
            "item_id": f"i{k}",
            "method": "pcpo" if k % 2 else "dpo",
            "round": 1,
            "answer": "match" if k in (1, 3, 0) else "scene",
        }
        for k in range(6)
    ]
    path = tmp_path / "a.json"
    path.write_text(json.dumps({"batch_id": "b1", "reviewer": "ann", "answers": answers}))
    rates = match_rates(import_answers([path])).set_index("method")
    assert rates.loc["pcpo", "match_rate"] == pytest.approx(2 / 3)
    assert rates.loc["dpo", "match_rate"] == pytest.approx(1 / 3)
    assert rates.loc["pcpo", "ci_low"] < 2 / 3 < rates.loc["pcpo", "ci_high"]


def test_unknown_answer_is_rejected_with_file_and_item(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text(
        json.dumps({"answers": [{"item_id": "i9", "method": "pcpo", "round": 1, "answer": "maybe"}]})
    )
    with pytest.raises(UserError, match=r"bad\.json: item 'i9'"):
        import_answers([path])


def test_wilson_interval_known_value():
    lo, hi = wilson_interval(8, 10)
    assert lo == pytest.approx(0.4902, abs=1e-3) and hi == pytest.approx(0.9433, abs=1e-3)
