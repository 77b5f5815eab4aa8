"""Fixtures of the bandit tests: real stores (a SQLite file, the real Redis under a private prefix)."""

from __future__ import annotations

import shutil
import subprocess
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
import redis

from caig.bandit.state import RedisStore, SQLiteStore

REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture
def redis_prefix() -> str:
    """A key prefix no other test or engineer uses; every key under it is deleted afterwards."""
    prefix = f"caig:test:bandit:{uuid.uuid4().hex[:12]}:"
    yield prefix
    RedisStore(REDIS_URL, prefix).clear()


@pytest.fixture(params=["sqlite", "redis"])
def store_factory(request: pytest.FixtureRequest, tmp_path: Path, redis_prefix: str):
    """Opens the same store again on each call (a restart, or another replica)."""
    opened = []

    def open_store():
        store = (
            SQLiteStore(tmp_path / "state.sqlite")
            if request.param == "sqlite"
            else RedisStore(REDIS_URL, redis_prefix)
        )
        opened.append(store)
        return store

    yield open_store
    for store in opened:
        store.close()


def loopback_client(port: int, **options) -> redis.Redis:
    """A client of a test's own server on 127.0.0.1 that fails at once (no retries with back-off)."""
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    return redis.Redis("127.0.0.1", port, retry=Retry(NoBackoff(), 0), **options)


@pytest.fixture
def spawn_redis():
    """Starts redis-server processes of the test's own (``argv`` runs it, ``ping`` says when it is up) and
    kills each afterwards."""
    if shutil.which("redis-server") is None:
        pytest.fail("redis-server is not installed; these tests need it (apt install redis-server)")
    procs: list[subprocess.Popen] = []

    def spawn(argv: list[str], ping: Callable[[], object]) -> subprocess.Popen:
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(proc)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                pytest.fail(f"{argv[0]} exited with {proc.returncode} before answering")
            try:
                ping()
                return proc
            except redis.AuthenticationError:
                raise
            except redis.ConnectionError:
                time.sleep(0.05)
        pytest.fail(f"{argv[0]} did not answer within 10 s")

    yield spawn
    for proc in procs:
        proc.kill()
        proc.wait()
