"""Input checks shared by every backend: prompt clean-up, product size, batches."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from caig.errors import UserError
from caig.render.prompt import check_batch, check_description, check_product_size, clean_prompt


def test_clean_prompt_strips_quotes_newlines_and_periods():
    assert (
        clean_prompt('"On white marble."\nsoft daylight. \u201cglow\u201d')
        == "On white marble soft daylight glow"
    )


@pytest.mark.parametrize("bad", ["", "   ", '"."\n..', None, 3])
def test_empty_or_non_text_description_is_rejected(bad):
    with pytest.raises(UserError, match="description"):
        check_description(bad)


@pytest.mark.parametrize("size", [(8, 64), (64, 10), (5000, 64)])
def test_product_of_wrong_size_is_rejected(size):
    with pytest.raises(UserError, match=r"between 16 and 4096 pixels"):
        check_product_size(Image.new("RGBA", size))


def test_batch_needs_one_seed_per_description():
    with pytest.raises(UserError, match="2 descriptions but 1 seeds"):
        check_batch(["a", "b"], [1])
    with pytest.raises(UserError, match=r"seeds\[0\]"):
        check_batch(["a"], [-1])
    with pytest.raises(UserError, match="wrap it in a list"):
        check_batch("a forest", [1])
    with pytest.raises(UserError, match=r"descriptions\[1\] is empty"):
        check_batch(["a", " "], [1, 2])
    assert check_batch(["a."], [np.int64(7)]) == (["a"], [7])
