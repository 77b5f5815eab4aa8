"""Fixtures of the bandit tests: real stores (a SQLite file, the real Redis under a private prefix)."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

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
