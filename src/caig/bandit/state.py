"""The selector's shared state: impressions and clicks per (product, segment, creative), and seen event ids.

Two stores with one interface: SQLite (embedded default; WAL, so several processes on one host share it) and
Redis (production; feedback goes through one Lua script, atomic on the server, so any number of replicas
share it). Every counted event is also appended to a feedback log that off-policy evaluation reads.

Feedback is idempotent by ``event_id``; the contract is exactly-once **within a dedupe window**
(``bandit.dedupe_window_s``, 7 days by default, wider than any feedback delay): the first report is counted,
a repeat within the window is a duplicate. The stores honour it differently:

- Redis keeps a seen id only for the window (a key with a TTL) and the newest ~``bandit.feedback_log_maxlen``
  log entries, so its memory is bounded (rate x window + the log cap + the counts); a repeat after the window
  counts again.
- SQLite (one host, on disk) keeps every id and every log row: a duplicate is caught whenever it comes,
  which meets the contract and more; its file grows with the traffic (it is not the production store).

A store that cannot answer (Redis down, hung past ``timeout_s``, full, SQLite locked) raises
``StoreUnavailable``, never a client library's error: the server answers 503 and the caller retries; a
retried feedback is counted once (within the window), whatever part of the first attempt reached the store.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import math
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

import pandas as pd

from caig.bandit.config import BanditConfig
from caig.bandit.types import Feedback, StoreFull, StoreUnavailable
from caig.errors import UserError

logger = logging.getLogger("caig.bandit")

LOG_COLUMNS = ["event_id", "ts", "product_id", "segment", "creative_id", "clicked", "propensity"]


class StateStore(Protocol):
    """Counts per arm and idempotent feedback."""

    def counts(self, product_id: str, segment: str) -> dict[str, tuple[int, int]]:
        """``{creative_id: (impressions, clicks)}`` of one (product, segment); absent arms have none."""
        ...

    def record(self, events: Sequence[Feedback]) -> list[bool]:
        """Count each event unless its id was counted before within the dedupe window (exactly-once within
        the window); True where it was counted."""
        ...

    def feedback_log(self) -> pd.DataFrame:
        """The counted events the store keeps (``LOG_COLUMNS``), oldest first."""
        ...

    def ping(self) -> None:
        """Return if the store answers; ``StoreUnavailable`` otherwise."""
        ...

    def close(self) -> None: ...


class SQLiteStore:
    """State in one SQLite file; a transaction per batch of feedback makes each batch atomic.

    Every event id and log row is kept (no window, no trim): duplicates are caught forever, which satisfies
    the exactly-once-within-the-window contract; the file grows with the traffic, on disk, on one host."""

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


# KEYS: the feedback log stream, then per event: its id's seen-marker and the counts hash of its
#       (product, segment).
# ARGV: dedupe window in ms, log length to keep (approximate), ts, then per event: event_id, creative_id,
#       clicked (0|1), product_id, segment, propensity ('' if none).
# Returns 1 (counted) or 0 (duplicate) per event. A script runs alone on the server, so a chunk of events is
# recorded as a whole. Under maxmemory (noeviction) Redis refuses a script's FIRST write, before anything was
# written: a refused chunk leaves no trace; once a chunk has written, it completes.
_RECORD_LUA = """
local counted = {}
for i = 1, (#KEYS - 1) / 2 do
  local a = 3 + (i - 1) * 6
  if redis.call('SET', KEYS[2 * i], '1', 'NX', 'PX', ARGV[1]) then
    redis.call('HINCRBY', KEYS[2 * i + 1], ARGV[a + 2] .. '|n', 1)
    redis.call('HINCRBY', KEYS[2 * i + 1], ARGV[a + 2] .. '|c', tonumber(ARGV[a + 3]))
    redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], '*', 'event_id', ARGV[a + 1], 'ts', ARGV[3],
               'product_id', ARGV[a + 4], 'segment', ARGV[a + 5], 'creative_id', ARGV[a + 2],
               'clicked', ARGV[a + 3], 'propensity', ARGV[a + 6])
    counted[i] = 1
  else
    counted[i] = 0
  end
end
return counted
"""
CHUNK = 500  # events per script call: Redis runs nothing else meanwhile (~1-3 ms a chunk)


DEFAULT_DEDUPE_WINDOW_S = 7 * 86400.0
DEFAULT_LOG_MAXLEN = 1_000_000


class RedisStore:
    """State in Redis under ``prefix``, bounded in memory; feedback is recorded by one server-side Lua script
    per chunk of up to ``CHUNK`` events (atomic), so any number of replicas share it.

    Keys under ``prefix``:

    - ``counts:<product>:<segment>``: a hash ``<creative>|n`` / ``<creative>|c`` of impressions and clicks.
      Kept forever; its size follows the catalog, not the traffic.
    - ``seen:<event_id>``: one small string per event id counted in the last ``dedupe_window_s`` seconds,
      written with ``SET NX PX`` and deleted by Redis when the window has passed.
    - ``log``: the feedback log stream, trimmed to about the newest ``log_maxlen`` entries by
      ``XADD MAXLEN ~`` (trimming whole stream nodes, so a few dozen more may stay).

    Contract: exactly-once **within the window**. A repeated ``event_id`` less than ``dedupe_window_s``
    after its first report is a duplicate (not counted); later it counts again, so the window must be
    wider than any feedback delay and client retry (default 7 days). Memory is then bounded by
    (feedback rate x window) seen-markers (~150 bytes each on Redis 7) + ``log_maxlen`` log entries
    (~80 bytes) + the counts; size Redis's ``maxmemory`` for that (docs/redis.md). With
    ``maxmemory-policy noeviction`` a full Redis refuses writes (``StoreFull``, a 503, the caller retries)
    rather than evicting counts or seen ids.

    Why a key per id with a TTL rather than time-bucketed sets with EXPIRE: ``SET NX PX`` checks and
    marks in one atomic command inside the one script; the window is exact and runs on the server's
    clock (no bucket keys computed from each replica's clock, so no skew between replicas, and no id
    remembered up to a bucket longer); Redis reclaims each expired id on its own (lazily on access,
    actively in the background), with no bucket to find and delete. The price: a key costs about twice
    the memory of a set member, which ``maxmemory`` sizing accounts for.
    """

    def __init__(
        self,
        url: str,
        prefix: str,
        timeout_s: float = 0.5,
        *,
        username: str | None = None,
        password: str | None = None,
        dedupe_window_s: float = DEFAULT_DEDUPE_WINDOW_S,
        log_maxlen: int = DEFAULT_LOG_MAXLEN,
    ):
        """Connect to ``url`` (``redis://``, or ``rediss://`` for TLS, options such as ``ssl_ca_certs`` in
        its query string) as ``username``/``password`` when given; fails if Redis does not answer."""
        import redis
        import redis.asyncio.retry
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        if not 0 < dedupe_window_s < float("inf") or log_maxlen < 1:
            raise ValueError("dedupe_window_s must be finite and > 0, and log_maxlen >= 1")
        self.prefix = prefix
        self.window_ms = max(1, math.ceil(dedupe_window_s * 1000))
        self.log_maxlen = log_maxlen
        credentials = {"username": username, "password": password}
        settings = {  # of both clients, blocking and redis.asyncio
            "decode_responses": True,
            "socket_timeout": timeout_s,
            "socket_connect_timeout": timeout_s,
            "health_check_interval": 30,
            **{k: v for k, v in credentials.items() if v is not None},
        }
        # one quick retry on a dropped connection, then 503
        self._redis = redis.Redis.from_url(url, retry=Retry(NoBackoff(), 1), **settings)
        # Redis down or hung, or a read-only replica during a failover: retry shortly. Full: StoreFull.
        self._errors = (
            redis.exceptions.ConnectionError,
            redis.exceptions.TimeoutError,
            redis.exceptions.ReadOnlyError,
        )
        self._full = redis.exceptions.OutOfMemoryError
        self._redis.ping()
        self._record = self._redis.register_script(_RECORD_LUA)
        self._async_client = functools.partial(
            redis.asyncio.Redis.from_url, url, retry=redis.asyncio.retry.Retry(NoBackoff(), 1), **settings
        )
        self._async: tuple[asyncio.AbstractEventLoop, Any, Any] | None = None  # (loop, client, script)

    @classmethod
    def from_config(cls, config: BanditConfig) -> RedisStore:
        """The store ``config`` (``bandit.*``) describes; the password is read from the environment variable
        that ``bandit.redis_password_env`` names (a Secret mounted as env), never from the profile."""
        password = redis_password(config)
        if password is not None or config.redis_username:
            url_credentials = urlsplit(config.redis_url)
            if url_credentials.password or (config.redis_username and url_credentials.username):
                raise UserError(
                    "bandit.redis_url carries a user or password and bandit.redis_username / "
                    "bandit.redis_password_env set them too; keep credentials out of redis_url"
                )
        return cls(
            config.redis_url,
            config.redis_prefix,
            config.store_timeout_s,
            username=config.redis_username or None,
            password=password,
            dedupe_window_s=config.dedupe_window_s,
            log_maxlen=config.feedback_log_maxlen,
        )

    def ping(self) -> None:
        with self._unavailable():
            self._redis.ping()

    @contextmanager
    def _unavailable(self) -> Iterator[None]:
        """Redis down, refusing or past the socket timeout: ``StoreUnavailable`` without its address; at
        ``maxmemory`` (noeviction refuses writes): ``StoreFull``."""
        try:
            yield
        except self._full:
            logger.warning("Redis state store is at maxmemory and refuses writes; see docs/redis.md")
            raise StoreFull() from None
        except self._errors as err:
            logger.warning("Redis state store unavailable: %s", type(err).__name__)
            raise StoreUnavailable() from None

    def _counts_key(self, product_id: str, segment: str) -> str:
        return f"{self.prefix}counts:{product_id}:{segment}"

    def counts(self, product_id: str, segment: str) -> dict[str, tuple[int, int]]:
        with self._unavailable():
            raw = self._redis.hgetall(self._counts_key(product_id, segment))
        return _parse_counts(raw)

    def counts_many(self, keys: Sequence[tuple[str, str]]) -> tuple[str, list[dict[str, tuple[int, int]]]]:
        """The feedback log's newest entry id (``0-0`` if empty), then ``counts`` of each (product, segment)
        in ``keys``, in one pipelined round trip on one connection, in that order: every event after that
        id may be missing from the counts, none before it is."""
        pipe = self._redis.pipeline(transaction=False)
        pipe.xrevrange(f"{self.prefix}log", count=1)
        for product_id, segment in keys:
            pipe.hgetall(self._counts_key(product_id, segment))
        with self._unavailable():
            newest, *hashes = pipe.execute()
        return (newest[0][0] if newest else "0-0"), [_parse_counts(raw) for raw in hashes]

    def changed_since(self, log_id: str, limit: int) -> tuple[str, set[tuple[str, str]]] | None:
        """The (product, segment)s of the feedback-log entries after ``log_id``, and the newest id read; None
        when the log cannot say (more than ``limit`` entries, or entries after ``log_id`` trimmed, or the log
        gone, as after a Redis that lost its data): then the caller reads every count again."""
        pipe = self._redis.pipeline(transaction=False)
        pipe.xrange(f"{self.prefix}log", count=1)
        pipe.xrange(f"{self.prefix}log", min=f"({log_id}", count=limit)
        with self._unavailable():
            oldest, entries = pipe.execute()
        if len(entries) >= limit or (log_id != "0-0" and (not oldest or _id(oldest[0][0]) > _id(log_id))):
            return None
        newest = entries[-1][0] if entries else log_id
        return newest, {(fields["product_id"], fields["segment"]) for _, fields in entries}

    def record(self, events: Sequence[Feedback]) -> list[bool]:
        """Count each event unless its id was counted within the dedupe window; True where it was counted.

        One script call per chunk of ``CHUNK`` events: each chunk is recorded whole or not at all; a batch
        partly recorded before a failure is safe to retry whole, because what did reach Redis is then a
        duplicate (within the window). A batch of one chunk (every feedback request of up to ``CHUNK``
        events) is one ``EVALSHA`` round trip; more chunks go in one pipeline, which costs a ``SCRIPT
        EXISTS`` round trip first (redis-py checks its scripts before every pipeline)."""
        now = repr(time.time())
        chunks = [self._script_call(events[i : i + CHUNK], now) for i in range(0, len(events), CHUNK)]
        with self._unavailable():
            if len(chunks) == 1:
                return [bool(flag) for flag in self._record(*chunks[0])]
            pipe = self._redis.pipeline(transaction=False)
            for keys, args in chunks:
                self._record(keys, args, client=pipe)
            return [bool(flag) for chunk in pipe.execute() for flag in chunk]

    async def record_async(self, events: Sequence[Feedback]) -> list[bool]:
        """``record`` on the caller's event loop through ``redis.asyncio``: the same script, chunks and
        errors, without a worker thread. Why: a round trip through redis-py from the server's thread pool
        cost a replica about three times the CPU of one awaited on the loop (0.46 against 0.16 ms per request
        in the benchmark's no-ops: the thread hop, and the worker and the loop taking the GIL from each
        other; docs/results/selector-throughput.md). The chunks
        of a batch go one after the other (each whole or not at all; a retried batch is safe, as for
        ``record``)."""
        script = self._async_script()
        now = repr(time.time())
        counted: list[bool] = []
        with self._unavailable():
            for i in range(0, len(events), CHUNK):
                keys, args = self._script_call(events[i : i + CHUNK], now)
                counted += [bool(flag) for flag in await script(keys, args)]
        return counted

    def _async_script(self) -> Any:
        """The record script on a ``redis.asyncio`` client of the running loop (made on first use; a client
        is bound to the loop that opened its connections, so another loop gets its own)."""
        loop = asyncio.get_running_loop()
        if self._async is None or self._async[0] is not loop:
            client = self._async_client()
            self._async = (loop, client, client.register_script(_RECORD_LUA))
        return self._async[2]

    def _script_call(self, events: Sequence[Feedback], now: str) -> tuple[list[str], list]:
        """KEYS and ARGV of ``_RECORD_LUA`` for one chunk of events."""
        keys, args = [f"{self.prefix}log"], [self.window_ms, self.log_maxlen, now]
        for e in events:
            keys += [f"{self.prefix}seen:{e.event_id}", self._counts_key(e.product_id, e.segment)]
            args += [e.event_id, e.creative_id, int(e.clicked), e.product_id, e.segment]
            args.append("" if e.propensity is None else repr(e.propensity))
        return keys, args

    def feedback_log(self) -> pd.DataFrame:
        """The newest ~``log_maxlen`` counted events, oldest first (older ones were trimmed)."""
        with self._unavailable():
            entries = self._redis.xrange(f"{self.prefix}log")
        log = pd.DataFrame([fields for _, fields in entries], columns=LOG_COLUMNS)
        log["ts"] = log["ts"].astype(float)
        log["clicked"] = log["clicked"].astype(int).astype(bool)
        log["propensity"] = pd.to_numeric(log["propensity"].replace("", None))
        return log

    def clear(self) -> int:
        """Delete every key under this store's prefix (tests, resets); return how many were deleted."""
        deleted = 0
        keys = self._redis.scan_iter(match=f"{_glob_escape(self.prefix)}*", count=1000)
        for chunk in _chunks(keys, 1000):
            deleted += self._redis.delete(*chunk)
        return deleted

    def close(self) -> None:
        self._redis.close()
        if self._async is not None:  # its connections belong to their loop: closed there, if it still runs
            loop, client, _ = self._async
            self._async = None
            if loop.is_running():
                asyncio.run_coroutine_threadsafe(client.aclose(), loop)
            elif not loop.is_closed():
                loop.run_until_complete(client.aclose())


def _id(stream_id: str) -> tuple[int, int]:
    """A stream entry id ``<ms>-<seq>`` as a comparable pair."""
    ms, _, seq = stream_id.partition("-")
    return int(ms), int(seq or 0)


def _parse_counts(raw: dict[str, str]) -> dict[str, tuple[int, int]]:
    """A counts hash (``<creative>|n`` / ``<creative>|c``) as ``{creative_id: (impressions, clicks)}``."""
    out: dict[str, tuple[int, int]] = {}
    for key, value in raw.items():
        creative, _, kind = key.rpartition("|")
        n, c = out.get(creative, (0, 0))
        out[creative] = (int(value), c) if kind == "n" else (n, int(value))
    return out


def redis_password(config: BanditConfig) -> str | None:
    """The Redis password from the environment variable ``bandit.redis_password_env`` names; None when it
    names none. A named variable that is unset or empty is an error (a Secret not mounted), not "no
    password", so a misconfigured pod fails at start with the field to fix."""
    name = config.redis_password_env
    if not name:
        return None
    value = os.environ.get(name)
    if not value:
        raise UserError(
            f"bandit.redis_password_env: the environment variable {name} is "
            f"{'empty' if value == '' else 'not set'}; mount the Redis password Secret (caig-redis-auth, "
            f"key password) as {name}, or set bandit.redis_password_env to '' for a Redis without one"
        )
    return value


def _glob_escape(text: str) -> str:
    """``text`` as a literal in a Redis MATCH pattern."""
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)


def _chunks(items: Iterable[str], size: int) -> Iterator[list[str]]:
    chunk: list[str] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
