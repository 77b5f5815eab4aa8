"""The selector's shared state: impressions and clicks per (product, segment, creative), and seen event ids.

Two stores with one interface: SQLite (embedded default; WAL, so several processes on one host share it) and
Redis (production; each feedback is one Lua script, atomic on the server, so any number of replicas share
it). Feedback is idempotent by ``event_id``: the first report is counted, every later one is a duplicate,
forever (seen ids are never expired). Every recorded event is also appended to a feedback log that
off-policy evaluation reads.

A store that cannot answer (Redis down, hung past ``timeout_s``, SQLite locked) raises ``StoreUnavailable``,
never a client library's error: the server answers 503 and the caller retries; a retried feedback is counted
once, whatever part of the first attempt reached the store.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Protocol

import pandas as pd

from caig.bandit.types import Feedback, StoreUnavailable

LOG_COLUMNS = ["event_id", "ts", "product_id", "segment", "creative_id", "clicked", "propensity"]


class StateStore(Protocol):
    """Counts per arm and idempotent feedback."""

    def counts(self, product_id: str, segment: str) -> dict[str, tuple[int, int]]:
        """``{creative_id: (impressions, clicks)}`` of one (product, segment); absent arms have none."""
        ...

    def record(self, events: Sequence[Feedback]) -> list[bool]:
        """Count each event unless its id was seen before; True where it was counted."""
        ...

    def feedback_log(self) -> pd.DataFrame:
        """Every counted event (``LOG_COLUMNS``), oldest first."""
        ...

    def ping(self) -> None:
        """Return if the store answers; ``StoreUnavailable`` otherwise."""
        ...

    def close(self) -> None: ...


class SQLiteStore:
    """State in one SQLite file; a transaction per batch of feedback makes each batch atomic."""

    SCHEMA = """
    CREATE TABLE IF NOT EXISTS counts (product_id TEXT, segment TEXT, creative_id TEXT,
        impressions INTEGER NOT NULL, clicks INTEGER NOT NULL, PRIMARY KEY (product_id, segment, creative_id));
    CREATE TABLE IF NOT EXISTS events (event_id TEXT PRIMARY KEY, ts REAL, product_id TEXT, segment TEXT,
        creative_id TEXT, clicked INTEGER, propensity REAL);
    """

    def __init__(self, path: Path | str):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(self.SCHEMA)
        self._lock = threading.Lock()

    def ping(self) -> None:
        with self._lock, _sqlite_errors():
            self._db.execute("SELECT 1").fetchone()

    def counts(self, product_id: str, segment: str) -> dict[str, tuple[int, int]]:
        with self._lock, _sqlite_errors():
            rows = self._db.execute(
                "SELECT creative_id, impressions, clicks FROM counts WHERE product_id=? AND segment=?",
                (product_id, segment),
            ).fetchall()
        return {c: (n, k) for c, n, k in rows}

    def record(self, events: Sequence[Feedback]) -> list[bool]:
        counted = []
        now = time.time()
        with self._lock, _sqlite_errors():
            self._db.execute("BEGIN IMMEDIATE")
            try:
                for e in events:
                    cur = self._db.execute(
                        "INSERT OR IGNORE INTO events VALUES (?, ?, ?, ?, ?, ?, ?)",
                        (
                            e.event_id,
                            now,
                            e.product_id,
                            e.segment,
                            e.creative_id,
                            int(e.clicked),
                            e.propensity,
                        ),
                    )
                    new = cur.rowcount == 1
                    if new:
                        self._db.execute(
                            "INSERT INTO counts VALUES (?, ?, ?, 1, ?) ON CONFLICT DO UPDATE SET "
                            "impressions = impressions + 1, clicks = clicks + excluded.clicks",
                            (e.product_id, e.segment, e.creative_id, int(e.clicked)),
                        )
                    counted.append(new)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return counted

    def feedback_log(self) -> pd.DataFrame:
        with self._lock:
            rows = self._db.execute(f"SELECT {', '.join(LOG_COLUMNS)} FROM events ORDER BY rowid").fetchall()
        log = pd.DataFrame(rows, columns=LOG_COLUMNS)
        log["clicked"] = log["clicked"].astype(bool)
        return log

    def close(self) -> None:
        with self._lock:
            self._db.close()


@contextmanager
def _sqlite_errors() -> Iterator[None]:
    """A locked or unreadable database file as ``StoreUnavailable`` (programming errors pass through)."""
    try:
        yield
    except sqlite3.OperationalError:
        raise StoreUnavailable() from None


# KEYS: seen-ids set, counts hash of the (product, segment), feedback log stream.
# ARGV: event_id, creative_id, clicked (0|1), product_id, segment, propensity ('' if none), ts.
_RECORD_LUA = """
if redis.call('SADD', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('HINCRBY', KEYS[2], ARGV[2] .. '|n', 1)
redis.call('HINCRBY', KEYS[2], ARGV[2] .. '|c', tonumber(ARGV[3]))
redis.call('XADD', KEYS[3], '*', 'event_id', ARGV[1], 'ts', ARGV[7], 'product_id', ARGV[4],
           'segment', ARGV[5], 'creative_id', ARGV[2], 'clicked', ARGV[3], 'propensity', ARGV[6])
return 1
"""


class RedisStore:
    """State in Redis under ``prefix``: one hash of counts per (product, segment), a set of seen event ids
    and a stream as the feedback log. Each event is recorded by one server-side Lua script (atomic)."""

    def __init__(self, url: str, prefix: str, timeout_s: float = 0.5):
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        self.prefix = prefix
        self._redis = redis.Redis.from_url(
            url,
            decode_responses=True,
            socket_timeout=timeout_s,
            socket_connect_timeout=timeout_s,
            retry=Retry(NoBackoff(), 1),  # one quick retry on a dropped connection, then 503
            health_check_interval=30,
        )
        self._errors = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)
        self._redis.ping()
        self._record = self._redis.register_script(_RECORD_LUA)

    def ping(self) -> None:
        with self._unavailable():
            self._redis.ping()

    @contextmanager
    def _unavailable(self) -> Iterator[None]:
        """Redis down, refusing or past the socket timeout: ``StoreUnavailable`` without its address."""
        try:
            yield
        except self._errors:
            raise StoreUnavailable() from None

    def _counts_key(self, product_id: str, segment: str) -> str:
        return f"{self.prefix}counts:{product_id}:{segment}"

    def counts(self, product_id: str, segment: str) -> dict[str, tuple[int, int]]:
        with self._unavailable():
            raw = self._redis.hgetall(self._counts_key(product_id, segment))
        out: dict[str, tuple[int, int]] = {}
        for key, value in raw.items():
            creative, _, kind = key.rpartition("|")
            n, c = out.get(creative, (0, 0))
            out[creative] = (int(value), c) if kind == "n" else (n, int(value))
        return out

    def record(self, events: Sequence[Feedback]) -> list[bool]:
        pipe = self._redis.pipeline(transaction=False)
        now = repr(time.time())
        for e in events:
            keys = [f"{self.prefix}seen", self._counts_key(e.product_id, e.segment), f"{self.prefix}log"]
            args = [
                e.event_id,
                e.creative_id,
                int(e.clicked),
                e.product_id,
                e.segment,
                "" if e.propensity is None else repr(e.propensity),
                now,
            ]
            self._record(keys=keys, args=args, client=pipe)
        with self._unavailable():
            return [bool(r) for r in pipe.execute()]

    def feedback_log(self) -> pd.DataFrame:
        entries = self._redis.xrange(f"{self.prefix}log")
        log = pd.DataFrame([fields for _, fields in entries], columns=LOG_COLUMNS)
        log["ts"] = log["ts"].astype(float)
        log["clicked"] = log["clicked"].astype(int).astype(bool)
        log["propensity"] = pd.to_numeric(log["propensity"].replace("", None))
        return log

    def clear(self) -> int:
        """Delete every key under this store's prefix (tests, resets); return how many were deleted."""
        keys = list(self._redis.scan_iter(match=f"{self.prefix}*", count=1000))
        return self._redis.delete(*keys) if keys else 0

    def close(self) -> None:
        self._redis.close()
