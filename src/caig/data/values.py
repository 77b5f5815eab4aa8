"""The rules for the values an event carries, one place for every door: ingestion, V1 and V2 feedback.

A click is a boolean: ``true``/``false``, or ``1``/``0`` where the format has no booleans (integers in a
parquet column or a JSON body, the texts "true"/"false"/"1"/"0" in a text column, any case, spaces trimmed).
Anything else (``"yes"``, ``2``, ``-1``, ``1.5``) is an error that names the field: a click is never guessed.
An id is a non-blank string of at most ``MAX_ID_LENGTH`` characters.
"""

from __future__ import annotations

import math
from typing import Any

CLICKED_TRUE_TEXT = ("true", "1")
CLICKED_FALSE_TEXT = ("false", "0")
CLICKED_RULE = "true or false (or 1 / 0)"
MAX_ID_LENGTH = 256
MAX_ECHO = 100  # characters of a caller's value quoted back in an error


def echo(value: Any) -> str:
    """``repr`` of a caller's value for an error message: cut to ``MAX_ECHO`` characters and ASCII-safe
    (a lone surrogate or a megabyte string is quoted, not reflected)."""
    text = ascii(value)
    return text if len(text) <= MAX_ECHO else f"{text[:MAX_ECHO]}... ({len(text)} characters)"


def parse_clicked(value: Any, text: bool = False) -> bool:
    """A click flag as a bool; ``ValueError`` (its message says what is allowed) for anything else.

    ``text``: also the words of ``CLICKED_TRUE_TEXT`` / ``CLICKED_FALSE_TEXT`` (a text column of logs); a
    JSON body has real booleans, so there a string is an error."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if text and isinstance(value, str) and value.strip().lower() in CLICKED_TRUE_TEXT + CLICKED_FALSE_TEXT:
        return value.strip().lower() in CLICKED_TRUE_TEXT
    if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:  # a numpy scalar
        return parse_clicked(value.item(), text)
    raise ValueError(f"must be {CLICKED_RULE}, got {echo(value)}")


def check_id(value: Any) -> str:
    """A non-blank id string; ``ValueError`` saying why not."""
    if type(value) is str and value.strip() and len(value) <= MAX_ID_LENGTH:
        return value
    if not isinstance(value, str):
        raise ValueError(f"must be a string, got {type(value).__name__} {echo(value)}")
    if not value.strip():
        raise ValueError(f"must not be blank, got {echo(value)}")
    raise ValueError(f"must be at most {MAX_ID_LENGTH} characters, got {len(value)}")


def check_probability(value: Any) -> float:
    """A propensity in (0, 1]; ``ValueError`` for anything else (NaN and booleans included)."""
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or math.isnan(value)
        or not 0 < value <= 1
    ):
        raise ValueError(f"must be a number in (0, 1] when given, got {echo(value)}")
    return float(value)
