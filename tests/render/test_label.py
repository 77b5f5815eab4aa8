"""The AI-generated label: in memory, in the PNG, and no unlabelled image saved."""

from __future__ import annotations

import pytest
from PIL import Image

from caig.render.label import IPTC_SOURCE_TYPE, is_labelled, label_image, read_label, save_png


def test_label_survives_png_round_trip(tmp_path):
    img = label_image(Image.new("RGB", (8, 8)), "procedural", "on marble", {"seed": 3, "box": [1, 2, 3, 4]})
    assert is_labelled(img)
    path = save_png(img, tmp_path / "ad.png")
    label = read_label(path)
    assert label["AI-Generated"] == "true"
    assert label["Description"] == "on marble"
    assert label["caig:render"] == {"backend": "procedural", "seed": 3, "box": [1, 2, 3, 4]}
    assert IPTC_SOURCE_TYPE in label["XML:com.adobe.xmp"]


def test_unlabelled_image_is_not_saved(tmp_path):
    with pytest.raises(ValueError, match="AI-generated label"):
        save_png(Image.new("RGB", (8, 8)), tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()
