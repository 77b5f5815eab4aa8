"""The replica's counts snapshot (``bandit.refresh_ms``), against the real Redis under a private prefix: it
shows every replica's feedback within about one refresh, exactly; reads an unknown (product, segment) on
demand; goes stale (and so to Redis, which answers 503s) when Redis is down; refresh_ms 0 keeps no snapshot."""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd
import pytest
from tests.bandit.conftest import REDIS_URL, loopback_client
from tests.serving.conftest import free_port

from caig.bandit.config import BanditConfig
from caig.bandit.providers import TableProvider
from caig.bandit.selector import CreativeSelector, open_store
from caig.bandit.snapshot import STALE_REFRESHES, CountsSnapshot
from caig.bandit.state import RedisStore
from caig.bandit.types import Feedback, StoreUnavailable

REFRESH_S = 0.05


def _event(i: int, clicked: bool = False, creative: str = "C1", segment: str = "young") -> Feedback:
    return Feedback(f"ev-{i}", "P1", segment, creative, clicked, None)


def wait_until(condition, seconds: float = 10.0) -> bool:
    """Poll ``condition`` until it holds or ``seconds`` pass (a deadline, not a timing assert)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return condition()


@pytest.fixture
def snapshot(redis_prefix: str):
    snap = CountsSnapshot(RedisStore(REDIS_URL, redis_prefix), REFRESH_S)
    yield snap
    snap.close()


def test_the_snapshot_shows_another_replicas_feedback_exactly_after_a_refresh(snapshot, redis_prefix):
    other = RedisStore(REDIS_URL, redis_prefix)  # another replica writing to the same Redis
    assert snapshot.counts("P1", "young") == {}  # read on demand, then kept
    other.record([_event(i, clicked=i % 3 == 0) for i in range(10)])
    other.record([_event(i) for i in range(5)])  # duplicates: not counted
    expected = {"C1": (10, 4)}
    assert wait_until(lambda: snapshot.cached("P1", "young") == expected)
    assert snapshot.counts("P1", "young") == expected == other.counts("P1", "young")
    other.close()


def test_selections_between_refreshes_do_not_read_redis(snapshot, redis_prefix):
    snapshot.counts("P1", "young")
    calls = []
    real = snapshot.store.counts
    snapshot.store.counts = lambda *key: calls.append(key) or real(*key)
    for _ in range(100):
        assert snapshot.counts("P1", "young") == {}
    assert calls == []  # only the background refresh (counts_many) asks Redis for a known key


def test_an_unknown_product_is_read_from_redis_on_demand_then_kept_fresh(snapshot, redis_prefix):
    snapshot.store.record([_event(1, True, segment="senior"), _event(2, segment="senior")])
    assert snapshot.cached("P1", "senior") is None  # never asked: not in the snapshot
    assert snapshot.counts("P1", "senior") == {"C1": (2, 1)}  # read at once, not after a refresh
    assert snapshot.cached("P1", "senior") == {"C1": (2, 1)}
    snapshot.store.record([_event(3, segment="senior")])
    assert wait_until(lambda: snapshot.cached("P1", "senior") == {"C1": (3, 1)})


def test_refresh_ms_zero_keeps_no_snapshot_and_reads_redis_each_time(redis_prefix, tmp_path: Path):
    config = BanditConfig(store="redis", redis_url=REDIS_URL, redis_prefix=redis_prefix, refresh_ms=0)
    store = open_store(config, tmp_path)
    assert type(store) is RedisStore
    writer = RedisStore(REDIS_URL, redis_prefix)
    writer.record([_event(1, True)])
    assert store.counts("P1", "young") == {"C1": (1, 1)}  # the very next read sees it
    store.close()
    writer.close()
    snapshotted = open_store(
        BanditConfig(store="redis", redis_url=REDIS_URL, redis_prefix=redis_prefix), tmp_path
    )
    assert isinstance(snapshotted, CountsSnapshot) and snapshotted.refresh_s == 0.2  # the default, 200 ms
    snapshotted.close()


def test_refresh_ms_must_be_finite_and_not_negative():
    for bad in (-1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="refresh_ms"):
            BanditConfig(refresh_ms=bad)


def test_redis_down_makes_the_snapshot_stale_and_selections_unavailable(spawn_redis, tmp_path: Path):
    port = free_port()
    argv = ["redis-server", "--port", str(port), "--save", "", "--appendonly", "no", "--dir", str(tmp_path)]
    proc = spawn_redis(argv, loopback_client(port).ping)
    store = RedisStore(f"redis://127.0.0.1:{port}/0", "caig:test:snap:", timeout_s=0.3)
    snap = CountsSnapshot(store, REFRESH_S)
    store.record([_event(1, True)])
    assert snap.counts("P1", "young") == {"C1": (1, 1)}
    proc.kill()
    proc.wait()
    assert wait_until(lambda: not snap.fresh)  # the next refresh fails
    assert snap.cached("P1", "young") is None
    with pytest.raises(StoreUnavailable):
        snap.counts("P1", "young")  # as without a snapshot: a 503 to the caller
    spawn_redis(argv, loopback_client(port).ping)  # back, empty (no persistence)
    assert snap.counts("P1", "young") == {}  # read from Redis again, not the old snapshot
    assert wait_until(lambda: snap.fresh)
    snap.close()


def test_a_refresh_that_stops_succeeding_is_not_used_after_stale_refreshes(snapshot):
    snapshot.counts("P1", "young")
    snapshot._fresh_at = time.monotonic() - (STALE_REFRESHES + 1) * REFRESH_S  # as if refreshes hung
    snapshot._stop.set()  # no refresh makes it fresh again
    snapshot._thread.join(timeout=5)
    assert not snapshot.fresh and snapshot.cached("P1", "young") is None


def test_select_cached_answers_from_memory_and_none_for_an_unknown_key(redis_prefix):
    creatives = pd.DataFrame({"creative_id": ["A", "B"], "product_id": ["P1", "P1"]})
    config = BanditConfig(store="redis", redis_url=REDIS_URL, redis_prefix=redis_prefix, seed=0)
    snap = CountsSnapshot(RedisStore(REDIS_URL, redis_prefix), REFRESH_S)
    selector = CreativeSelector(TableProvider(creatives, None, ["P1"]), snap, config)
    assert selector.select_cached("P1", "young") is None  # not in the snapshot: needs Redis
    assert selector.select("P1", "young").creative_id in {"A", "B"}
    assert selector.select_cached("P1", "young").creative_id in {"A", "B"}
    selector.feedback([{"event_id": f"e{i}", "product_id": "P1", "segment": "young", "creative_id": "B",
                        "clicked": True} for i in range(200)])  # fmt: skip
    assert wait_until(lambda: snap.cached("P1", "young") == {"B": (200, 200)})
    assert sum(selector.select_cached("P1", "young").creative_id == "B" for _ in range(50)) > 45
    selector.close()


def test_the_snapshot_thread_stops_on_close(redis_prefix):
    snap = CountsSnapshot(RedisStore(REDIS_URL, redis_prefix), REFRESH_S)
    snap.close()
    assert not snap._thread.is_alive()


def test_a_refresh_reads_again_only_what_the_feedback_log_shows_changed(snapshot, redis_prefix):
    for segment in ("young", "senior", "family"):
        snapshot.counts("P1", segment)
    assert wait_until(lambda: snapshot._log_id is not None)  # a first, full refresh happened
    read = []
    real = snapshot.store.counts_many
    snapshot.store.counts_many = lambda keys: read.append(list(keys)) or real(keys)
    snapshot.store.record([_event(1, True, segment="senior")])
    assert wait_until(lambda: snapshot.cached("P1", "senior") == {"C1": (1, 1)})
    assert [("P1", "senior")] in read and all(keys == [("P1", "senior")] for keys in read if keys)


def test_a_redis_that_lost_its_data_is_read_again_whole(snapshot, redis_prefix):
    snapshot.store.record([_event(1, True), _event(2, segment="senior")])
    assert snapshot.counts("P1", "young") == {"C1": (1, 1)}
    assert wait_until(lambda: snapshot._log_id not in (None, "0-0"))
    RedisStore(REDIS_URL, redis_prefix).clear()  # counts and log gone, as after a restart without persistence
    assert wait_until(lambda: snapshot.cached("P1", "young") == {}, 5)  # before the FULL_REFRESH_S net
