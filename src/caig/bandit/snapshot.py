"""A replica's in-memory snapshot of the Redis counts, refreshed in the background (``bandit.refresh_ms``).

Why: reading a (product, segment)'s counts hash from Redis on every selection (a round trip through redis-py,
in a worker thread) cost a selector replica more than half its requests/s (docs/results/selector-throughput.md).
Thompson sampling does not need the counts of this very moment: its standard setting in ad serving is
batched, delayed feedback (posteriors updated every few hundred impressions, as ``caig bandit simulate``
runs it), and its regret grows only by about the number of impressions served between updates. So a replica
selects on counts at most about ``refresh_ms`` old (every replica's feedback included), and reads Redis once
per refresh instead of once per selection: the feedback log's new entries, then the counts of the (product,
segment)s they changed, in two pipelined round trips whose cost follows the feedback rate, not the catalog
(every entry is read again every ``FULL_REFRESH_S`` as a safety net).

What stays as it was: feedback is written to Redis at once, by the same atomic script, exactly-once within
the dedupe window; counts in Redis are the truth, and a snapshot entry is replaced by Redis's value at every
refresh (never incremented locally, so it is exact as of its refresh and never counts an event twice). A
(product, segment) not in the snapshot yet is read from Redis on demand, once, then kept fresh. Faults: a
refresh that fails (Redis down, hung past ``store_timeout_s``, read-only) marks the snapshot stale, and so
does a refresh that has not succeeded for ``STALE_REFRESHES`` intervals; a stale snapshot is not used, every
selection reads Redis as with ``refresh_ms`` 0, so it answers ``StoreUnavailable`` (a 503) while Redis is
down, within about ``refresh_ms`` of Redis going down, and recovers by itself.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence

import pandas as pd

from caig.bandit.state import RedisStore
from caig.bandit.types import Feedback, StoreUnavailable

logger = logging.getLogger("caig.bandit")

Key = tuple[str, str]
Counts = dict[str, tuple[int, int]]

STALE_REFRESHES = 3  # a snapshot whose last good refresh is older than this many intervals is not used
IDLE_S = 60.0  # a (product, segment) not selected for about this long leaves the snapshot (till read again)
REFRESH_CHUNK = 1000  # hashes per pipelined round trip of a refresh
FULL_REFRESH_S = 10.0  # every entry is read again this often whatever the log says (a safety net)
LOG_READ_LIMIT = 10_000  # more new log entries than this since the last refresh: read every entry instead
FAILED_BACKOFF_S = 1.0  # a failed refresh waits at least this long before the next (a log line a second)


class CountsSnapshot:
    """A ``StateStore`` that answers ``counts`` from memory, refreshed from a ``RedisStore`` every
    ``refresh_s`` by a daemon thread; ``record``, ``feedback_log`` and ``ping`` go to Redis as before."""

    def __init__(self, store: RedisStore, refresh_s: float, idle_s: float = IDLE_S):
        if refresh_s <= 0:
            raise ValueError("refresh_s must be > 0; without a snapshot use the RedisStore itself")
        self.store = store
        self.refresh_s = refresh_s
        self.idle_s = idle_s
        self._counts: dict[Key, Counts] = {}
        self._used: set[Key] = set()  # keys selected since the last idle sweep
        self._fresh_at = time.monotonic()  # start of the last good refresh (nothing to refresh yet)
        self._full_at = float("-inf")  # start of the last refresh that read every entry
        self._log_id: str | None = None  # the feedback log's newest id that the snapshot includes
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="caig-counts-snapshot", daemon=True)
        self._thread.start()

    @property
    def fresh(self) -> bool:
        """Whether the last good refresh began within ``STALE_REFRESHES`` intervals."""
        return time.monotonic() - self._fresh_at <= STALE_REFRESHES * self.refresh_s

    def cached(self, product_id: str, segment: str) -> Counts | None:
        """The snapshot's counts of (product, segment) without asking Redis; None if it has none or is stale."""
        if not self.fresh:
            return None
        key = (product_id, segment)
        counts = self._counts.get(key)
        if counts is not None:
            self._used.add(key)
        return counts

    def counts(self, product_id: str, segment: str) -> Counts:
        """From the snapshot; a (product, segment) it lacks, or any while it is stale, from Redis (then kept)."""
        counts = self.cached(product_id, segment)
        if counts is None:
            counts = self.store.counts(product_id, segment)  # StoreUnavailable while Redis is down
            key = (product_id, segment)
            self._counts[key] = counts
            self._used.add(key)
        return counts

    def record(self, events: Sequence[Feedback]) -> list[bool]:
        """Straight to Redis (the snapshot shows it after the next refresh, on every replica alike)."""
        return self.store.record(events)

    async def record_async(self, events: Sequence[Feedback]) -> list[bool]:
        """``record`` awaited on the caller's event loop (``RedisStore.record_async``)."""
        return await self.store.record_async(events)

    def feedback_log(self) -> pd.DataFrame:
        return self.store.feedback_log()

    def ping(self) -> None:
        self.store.ping()

    def clear(self) -> int:
        self._counts.clear()
        return self.store.clear()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.store.close()

    def refresh(self) -> None:
        """Bring every entry up to Redis's counts now; ``StoreUnavailable`` marks the snapshot stale.

        Reads again only the (product, segment)s that the feedback log (every counted event, in order) shows
        changed since the last refresh: two round trips, cost following the feedback rate, not the catalog.
        Every ``FULL_REFRESH_S``, after a failure, or when the log cannot say (trimmed past the last id read,
        gone), it reads every entry (one pipelined round trip per ``REFRESH_CHUNK``)."""
        started = time.monotonic()
        try:
            changed = None
            if self._log_id is not None and started - self._full_at < FULL_REFRESH_S:
                changed = self.store.changed_since(self._log_id, LOG_READ_LIMIT)
            if changed is None:
                self._read(list(self._counts))
                self._full_at = started
            else:
                log_id, keys = changed
                self._read([k for k in keys if k in self._counts], log_id)
        except StoreUnavailable:
            self._fresh_at = float("-inf")
            self._log_id = None
            raise
        self._fresh_at = started

    def _read(self, keys: list[Key], log_id: str | None = None) -> None:
        """Replace the entries of ``keys`` by Redis's counts; remember the log id they include."""
        if not keys and log_id is not None:
            self._log_id = log_id
            return
        first_log_id = log_id
        for i in range(0, max(len(keys), 1), REFRESH_CHUNK):
            chunk = keys[i : i + REFRESH_CHUNK]
            chunk_log_id, counts = self.store.counts_many(chunk)
            first_log_id = first_log_id or chunk_log_id
            for key, value in zip(chunk, counts, strict=True):
                self._counts[key] = value
        self._log_id = first_log_id

    def _sweep_idle(self) -> None:
        used, self._used = self._used, set()
        # list(): one C-level copy, so selections adding keys meanwhile cannot resize the dict under the loop
        for key in [k for k in list(self._counts) if k not in used]:
            self._counts.pop(key, None)

    def _run(self) -> None:
        wait, swept = self.refresh_s, time.monotonic()
        while not self._stop.wait(wait):
            try:
                self.refresh()
                wait = self.refresh_s
            except StoreUnavailable:
                wait = max(self.refresh_s, FAILED_BACKOFF_S)
            except Exception:  # a bug must not stop the refreshes silently: log it, stay stale, go on
                logger.exception("refreshing the counts snapshot failed")
                self._fresh_at = float("-inf")
                wait = max(self.refresh_s, FAILED_BACKOFF_S)
            if time.monotonic() - swept >= self.idle_s:
                self._sweep_idle()
                swept = time.monotonic()
