"""The state stores, against a real SQLite file and the real Redis: counts, idempotency, restarts, replicas."""

from __future__ import annotations

import threading

from tests.bandit.conftest import REDIS_URL, loopback_client
from tests.serving.conftest import free_port

from caig.bandit.state import CHUNK, RedisStore
from caig.bandit.types import Feedback


def _event(i: int, clicked: bool = False, creative: str = "C1", propensity: float | None = None) -> Feedback:
    return Feedback(f"ev-{i}", "P1", "young", creative, clicked, propensity)


def test_feedback_is_counted_once_by_event_id(store_factory):
    store = store_factory()
    assert store.record([_event(1, True), _event(2), _event(1, True)]) == [True, True, False]
    assert store.record([_event(2)]) == [False]
    assert store.counts("P1", "young") == {"C1": (2, 1)}
    assert store.counts("P1", "senior") == {}


def test_counts_and_seen_ids_survive_a_restart(store_factory):
    store = store_factory()
    store.record([_event(1, True, "C1"), _event(2, False, "C2")])
    store.close()
    reopened = store_factory()
    assert reopened.counts("P1", "young") == {"C1": (1, 1), "C2": (1, 0)}
    assert reopened.record([_event(1, True, "C1")]) == [False]
    assert reopened.counts("P1", "young")["C1"] == (1, 1)


def test_feedback_log_keeps_every_counted_event_with_its_propensity(store_factory):
    store = store_factory()
    store.record([_event(1, True, propensity=0.25), _event(2), _event(1, True, propensity=0.25)])
    log = store.feedback_log()
    assert log.event_id.tolist() == ["ev-1", "ev-2"]
    assert log.clicked.tolist() == [True, False]
    assert log.propensity.iloc[0] == 0.25 and log.propensity.isna().iloc[1]


def test_replicas_racing_on_the_same_events_count_each_once(store_factory):
    replicas = [store_factory() for _ in range(4)]
    results: list[list[bool]] = []
    lock = threading.Lock()

    def report(store):
        counted = store.record([_event(i, i % 3 == 0) for i in range(200)])
        with lock:
            results.append(counted)

    threads = [threading.Thread(target=report, args=(s,)) for s in replicas]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(sum(r) for r in results) == 200
    assert replicas[0].counts("P1", "young") == {"C1": (200, 67)}


def test_single_events_from_many_threads_on_one_store_are_each_counted_once(store_factory):
    """The server's shape: one store shared by its worker threads, one event per feedback request (each a
    single script call on Redis), every event sent twice."""
    store = store_factory()
    events = [_event(i, i % 4 == 0) for i in range(300)] * 2
    counted: list[bool] = []
    lock = threading.Lock()

    def report(part):
        for event in part:
            flag = store.record([event])
            with lock:
                counted.extend(flag)

    threads = [threading.Thread(target=report, args=(events[k::6],)) for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(counted) == 300 and len(counted) == 600
    assert store.counts("P1", "young") == {"C1": (300, 75)}


def test_a_batch_over_several_chunks_counts_each_event_once(store_factory):
    store = store_factory()
    batch = [_event(i, i % 2 == 0) for i in range(CHUNK + 7)] + [_event(3, False), _event(CHUNK + 1)]
    counted = store.record(batch)
    assert counted == [True] * (CHUNK + 7) + [False, False]
    assert store.counts("P1", "young") == {"C1": (CHUNK + 7, (CHUNK + 8) // 2)}
    assert store.record(batch[:2]) == [False, False]


def test_redis_that_forgot_the_script_gets_it_again(spawn_redis, tmp_path):
    """A Redis restarted (or failed over) loses its script cache: the next feedback loads the script again
    (a private server: flushing the shared one's scripts would touch other users)."""
    port = free_port()
    argv = ["redis-server", "--port", str(port), "--save", "", "--appendonly", "no", "--dir", str(tmp_path)]
    spawn_redis(argv, loopback_client(port).ping)
    store = RedisStore(f"redis://127.0.0.1:{port}/0", "caig:bandit:")
    assert store.record([_event(1, True)]) == [True]
    loopback_client(port).script_flush()
    assert store.record([_event(2), _event(1, True)]) == [True, False]
    assert store.counts("P1", "young") == {"C1": (2, 1)}
    store.close()


def test_the_async_writer_shares_exactly_once_with_the_blocking_one(redis_prefix):
    """``record_async`` (awaited on the server's loop) over several chunks, then both writers on the same
    ids: every event counted once whichever writer saw it first."""
    import asyncio

    store = RedisStore(REDIS_URL, redis_prefix)
    batch = [_event(i, i % 2 == 0) for i in range(CHUNK + 7)]
    assert asyncio.run(store.record_async(batch)) == [True] * (CHUNK + 7)
    assert store.record(batch[:3]) == [False] * 3
    assert asyncio.run(store.record_async([_event(CHUNK + 7), _event(0, True)])) == [True, False]
    assert store.counts("P1", "young") == {"C1": (CHUNK + 8, (CHUNK + 8) // 2)}
    store.close()
