"""f_instruct (paper Eq. 1): join a task question and a product's attributes into one instruct prompt.

``C = f_instruct(Q, i_1, ..., i_n)``; e.g. "Generate a suitable product background description based on the
following attributes. Product Title: 'classic red sneakers', Product Category: 'sneakers', Tags: 'sport, red',
Colour: 'red', Price: '$49.99'". The product caption that fills a Table 4 template's slot is the title.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from caig.mllm.config import INSTRUCT_ATTRIBUTES
from caig.mllm.templates import pm_question, rm_question

log = logging.getLogger("caig.mllm")
_REPORTED: set[tuple[str, ...]] = set()

ATTRIBUTE_LABELS = {
    "title": "Product Title",
    "category": "Product Category",
    "tags": "Tags",
    "colour": "Colour",
    "price": "Price",
}


def format_attribute(name: str, value: Any) -> str:
    """One attribute as ``Label: 'value'`` (tags joined by commas, price as dollars)."""
    if name not in ATTRIBUTE_LABELS:
        raise ValueError(f"unknown product attribute '{name}'; choose from {list(ATTRIBUTE_LABELS)}")
    if name == "tags":
        text = ", ".join(str(t) for t in (value if not isinstance(value, str) else [value]))
    elif name == "price":
        text = f"${float(value):.2f}"
    else:
        text = str(value)
    return f"{ATTRIBUTE_LABELS[name]}: '{text}'"


def catalog_attributes(configured: Sequence[str], columns: Iterable[str]) -> list[str]:
    """The configured attributes a catalog has, in their order.

    Imported real logs often carry only the title (the release's caption); the prompts then join the
    attributes there are, and the ones left out are logged once per process, so no prompt changes silently.
    """
    present = set(columns)
    missing = tuple(a for a in configured if a not in present)
    if missing and missing not in _REPORTED:
        _REPORTED.add(missing)
        log.warning("the catalog has no %s: prompts carry the other attributes only", ", ".join(missing))
    return [a for a in configured if a in present]


def f_instruct(
    question: str, product: Mapping[str, Any], attributes: Sequence[str] = INSTRUCT_ATTRIBUTES
) -> str:
    """The instruct prompt: the question, then the named product attributes in one line.

    Args:
        question: the task question (a Table 4 template already filled, or a task question).
        product: a catalog row (mapping with title, category, tags, colour, price).
        attributes: which attributes to join, in order; an empty sequence returns the question alone.
    """
    missing = [a for a in attributes if a not in product]
    if missing:
        raise ValueError(f"product is missing attribute(s) {missing}; catalog rows need {list(attributes)}")
    parts = [format_attribute(a, product[a]) for a in attributes]
    return f"{question} {', '.join(parts)}" if parts else question


def caption(product: Mapping[str, Any]) -> str:
    """The product caption that fills a template's slot: the title."""
    return str(product["title"])


def pm_prompt(
    product: Mapping[str, Any],
    attributes: Sequence[str] = INSTRUCT_ATTRIBUTES,
    rng: random.Random | None = None,
    index: int | None = None,
) -> str:
    """The prompt model's instruct prompt: a Table 4 PM template with the caption, plus the attributes."""
    return f_instruct(pm_question(caption(product), rng, index), product, attributes)


def rm_prompt(
    product: Mapping[str, Any],
    attributes: Sequence[str] = INSTRUCT_ATTRIBUTES,
    rng: random.Random | None = None,
    index: int | None = None,
) -> str:
    """The reward model's instruct prompt: a Table 4 RM template with the caption, plus the attributes."""
    return f_instruct(rm_question(caption(product), rng, index), product, attributes)
