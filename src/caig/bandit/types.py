"""The selector's values: a candidate arm, a selection, a feedback event, and the request error."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from caig.errors import UserError


class InvalidRequest(UserError):
    """A request the selector cannot serve; ``field`` names the offending field (the server answers 4xx)."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class StoreUnavailable(Exception):
    """The selector's state store did not answer in time or refused the connection (the server answers 503
    and the caller retries); the message names no address or internal detail."""

    def __init__(self, what: str = "the selector's state store is unavailable; retry shortly"):
        super().__init__(what)


class StoreFull(StoreUnavailable):
    """Redis is at ``maxmemory`` and refuses writes (``noeviction``): feedback cannot be recorded now, while
    reads still work. A 503 like any ``StoreUnavailable``; nothing of a refused chunk was written."""


@dataclass(frozen=True)
class Arm:
    """A candidate creative and its Beta prior (from the RM's score; Beta(1, 1) when there is none)."""

    creative_id: str
    prior_alpha: float = 1.0
    prior_beta: float = 1.0


class Selection(NamedTuple):
    """What the selector answers: the creative to show, P(TS picks it), and which policy picked it.

    A NamedTuple, not a frozen dataclass: one is built per request, at a third of the cost."""

    creative_id: str
    propensity: float
    policy: str


@dataclass(frozen=True)
class Feedback:
    """One impression of ``creative_id``, clicked or not; ``event_id`` makes it count once, ever.

    ``propensity`` is optional: the ad server echoes the selection's propensity so the feedback log can feed
    off-policy evaluation.
    """

    event_id: str
    product_id: str
    segment: str
    creative_id: str
    clicked: bool
    propensity: float | None = None
