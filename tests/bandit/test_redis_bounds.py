"""Redis holds the selector's state in bounded memory: 10^5 feedback events leave behind no more than the
dedupe window and the feedback-log cap hold, while a duplicate within the window is still counted once.

Real Redis: the shared server (127.0.0.1:6379) under a private prefix, and a small server of the test's own
for the full-Redis case. The window is one second so the events age past it within the test; expiry is
Redis's own (server clock), nothing is simulated.
"""

from __future__ import annotations

import time
from typing import NamedTuple

import pytest
import redis
from tests.bandit.conftest import REDIS_URL, loopback_client
from tests.serving.conftest import free_port

from caig.bandit.state import RedisStore
from caig.bandit.types import Feedback, StoreFull

WINDOW_S = 1.0
PHASES = 4  # each: write, then let every id of it age past the window
BATCHES = 10  # record() calls per phase
UNIQUE = 2_000  # distinct event ids per batch ...
REPEATS = 500  # ... and this many of them sent again in the same batch (within the window)
LOG_MAXLEN = 2_000
PRODUCTS, SEGMENTS, CREATIVES = 10, ("young", "senior"), 5


class Footprint(NamedTuple):
    keys: int  # live keys under the prefix
    seen: int  # of which seen-id markers
    bytes: int  # their MEMORY USAGE, summed


def footprint(client: redis.Redis, prefix: str) -> Footprint:
    """What the store holds now. SCAN skips (and deletes) expired keys, so only live state is measured."""
    keys = list(client.scan_iter(match=f"{prefix}*", count=5000))
    pipe = client.pipeline(transaction=False)
    for key in keys:
        pipe.memory_usage(key, samples=0)  # samples 0: every element of the stream and hashes, exactly
    sizes = dict(zip(keys, pipe.execute()))
    live = [k for k, size in sizes.items() if size is not None]  # none expired in between
    seen = sum(k.startswith(f"{prefix}seen:") for k in live)
    return Footprint(len(live), seen, sum(sizes[k] for k in live))


def batch(phase: int, number: int) -> list[Feedback]:
    """UNIQUE new events, then REPEATS of them again: one ``record`` call, so the repeats are milliseconds
    after their first report, well within the window."""
    first = (phase * BATCHES + number) * UNIQUE
    events = [
        Feedback(
            f"ev-{i:07d}",
            f"P{i % PRODUCTS}",
            SEGMENTS[i // PRODUCTS % len(SEGMENTS)],
            f"C{i // 20 % CREATIVES}",
            i % 7 == 0,
            0.2,
        )
        for i in range(first, first + UNIQUE)
    ]
    return events + events[::4][:REPEATS]


def impressions_and_clicks(client: redis.Redis, prefix: str) -> tuple[int, int]:
    n = c = 0
    for p in range(PRODUCTS):
        for segment in SEGMENTS:
            for field, value in client.hgetall(f"{prefix}counts:P{p}:{segment}").items():
                if field.endswith("|n"):
                    n += int(value)
                else:
                    c += int(value)
    return n, c


def test_memory_stops_growing_once_events_age_past_the_window(redis_prefix):
    store = RedisStore(REDIS_URL, redis_prefix, dedupe_window_s=WINDOW_S, log_maxlen=LOG_MAXLEN)
    client = redis.Redis.from_url(REDIS_URL, decode_responses=True)
    peak: list[Footprint] = []
    aged: list[Footprint] = []
    sent = 0
    for phase in range(PHASES):
        for number in range(BATCHES):
            events = batch(phase, number)
            sent += len(events)
            assert store.record(events) == [True] * UNIQUE + [False] * REPEATS, (phase, number)
        written = time.monotonic()  # every seen-id of this phase expires by written + WINDOW_S
        peak.append(footprint(client, redis_prefix))
        time.sleep(max(0.0, written + WINDOW_S + 0.2 - time.monotonic()))
        aged.append(footprint(client, redis_prefix))
    assert sent == 100_000
    series = f"after writing: {peak}; aged past the window: {aged}"
    print(series)  # the measured series, shown by pytest -rP

    # duplicates within the window counted once: the counts hold the distinct events, clicks included
    distinct = PHASES * BATCHES * UNIQUE
    assert impressions_and_clicks(client, redis_prefix) == (distinct, len(range(0, distinct, 7)))
    # while a phase is in its window, at most its own ids are remembered, never the earlier phases'
    assert all(p.seen <= BATCHES * UNIQUE for p in peak), series
    # once aged: no id left, the same keys (the counts hashes and the log) and no more memory than after
    # the first phase; an ever-growing seen set or log would hold 4x by the last phase
    counts_hashes = PRODUCTS * len(SEGMENTS)
    assert [a.seen for a in aged] == [0] * PHASES, series
    assert [a.keys for a in aged] == [counts_hashes + 1] * PHASES, series
    assert max(a.bytes for a in aged) <= 1.2 * aged[0].bytes, series
    assert LOG_MAXLEN <= client.xlen(f"{redis_prefix}log") < 2 * LOG_MAXLEN
    # the other side of the window: an id seen more than a window ago counts again
    assert store.record(batch(0, 0)[:1]) == [True]
    store.close()


def test_a_full_redis_refuses_whole_events_and_recovers_when_ids_expire(spawn_redis, tmp_path):
    """noeviction: at maxmemory feedback is refused (503, retry) rather than counts evicted; a refused batch
    leaves no trace; once the seen ids expire, writes are accepted again and the retry counts once."""
    port = free_port()
    client = loopback_client(port, decode_responses=True)
    argv = ["redis-server", "--port", str(port), "--save", "", "--appendonly", "no", "--dir", str(tmp_path)]
    spawn_redis([*argv, "--maxmemory-policy", "noeviction"], client.ping)
    client.config_set("maxmemory", client.info("memory")["used_memory"] + 500_000)
    store = RedisStore(
        f"redis://127.0.0.1:{port}/0", "caig:bandit:", dedupe_window_s=WINDOW_S, log_maxlen=100
    )
    with pytest.raises(StoreFull):
        for number in range(200):  # ~150 bytes an id: full after a few thousand
            store.record(batch(0, number)[:REPEATS])
    impressions, _ = impressions_and_clicks(client, "caig:bandit:")
    assert impressions < 200 * REPEATS  # it did fill up
    log_entries = client.xlen("caig:bandit:log")
    retry = batch(1, 0)[:REPEATS]
    with pytest.raises(StoreFull):
        store.record(retry)  # still full: refused, nothing counted, logged or marked seen
    assert impressions_and_clicks(client, "caig:bandit:")[0] == impressions
    assert client.xlen("caig:bandit:log") == log_entries
    assert client.exists(f"caig:bandit:seen:{retry[0].event_id}") == 0
    assert store.counts("P0", "young")  # reads still answer
    for _ in range(100):  # Redis frees the expired ids by itself (active expiry), a window later
        time.sleep(WINDOW_S / 4)
        try:
            counted = store.record(retry)
            break
        except StoreFull:
            continue
    else:
        pytest.fail("Redis stayed full after its seen ids expired")
    assert counted == [True] * REPEATS  # the refused attempts left nothing: the retry counts once
    assert impressions_and_clicks(client, "caig:bandit:")[0] == impressions + REPEATS
    store.close()
