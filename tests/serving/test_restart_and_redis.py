"""State outlives the server: restarts keep counts and seen ids (SQLite and the real Redis); replicas share Redis."""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx

from caig.bandit.state import RedisStore, SQLiteStore
from caig.cli import main

from .conftest import REDIS_URL

PRODUCT, SEGMENT, CREATIVE = "P00002", "senior", "C000010"


def _feedback(url: str, event_id: str, clicked: bool = True) -> str:
    body = {
        "instances": [
            {
                "event_id": event_id,
                "product_id": PRODUCT,
                "segment": SEGMENT,
                "creative_id": CREATIVE,
                "clicked": clicked,
            }
        ]
    }
    r = httpx.post(f"{url}/v1/models/creative-feedback:predict", json=body, timeout=30)
    assert r.status_code == 200, r.text
    return r.json()["predictions"][0]


def test_sqlite_restart_keeps_counts_and_duplicates(start_server, tmp_path: Path):
    state = tmp_path / "state.sqlite"
    first = start_server(f"bandit.sqlite_path={state}")
    ids = [f"ev-{i}" for i in range(5)]
    assert [_feedback(first.url, e, clicked=i < 2) for i, e in enumerate(ids)] == ["recorded"] * 5
    first.stop()
    second = start_server(f"bandit.sqlite_path={state}")
    assert _feedback(second.url, ids[0]) == "duplicate"
    assert _feedback(second.url, "ev-new") == "recorded"
    second.stop()
    store = SQLiteStore(state)
    assert store.counts(PRODUCT, SEGMENT) == {CREATIVE: (6, 3)}
    store.close()


def test_redis_replicas_share_state_and_survive_a_restart(start_server, redis_prefix: str):
    settings = (
        "bandit.store=redis",
        f"bandit.redis_url={REDIS_URL}",
        f"bandit.redis_prefix='{redis_prefix}'",
    )
    a, b = start_server(*settings), start_server(*settings)
    event = f"ev-{uuid.uuid4()}"
    assert _feedback(a.url, event) == "recorded"
    assert _feedback(b.url, event) == "duplicate"  # the other replica knows it
    assert _feedback(b.url, event + "-2", clicked=False) == "recorded"
    a.stop()
    b.stop()
    c = start_server(*settings)
    assert _feedback(c.url, event) == "duplicate"
    store = RedisStore(REDIS_URL, redis_prefix)
    assert store.counts(PRODUCT, SEGMENT) == {CREATIVE: (2, 1)}
    assert store.feedback_log().event_id.tolist() == [event, event + "-2"]
    store.close()


def test_caig_client_select_and_feedback(sqlite_server, capsys):
    main(["client", "select", "--url", sqlite_server.url, "--product", PRODUCT, "--segment", SEGMENT])
    assert '"creative_id": "C0000' in capsys.readouterr().out
    args = [
        "client",
        "feedback",
        "--url",
        sqlite_server.url,
        "--event-id",
        f"cli-{uuid.uuid4()}",
        "--product",
        PRODUCT,
        "--segment",
        SEGMENT,
        "--creative",
        CREATIVE,
        "--clicked",
        "--propensity",
        "0.2",
    ]
    main(args)
    assert '"status": "recorded"' in capsys.readouterr().out
    main(args)
    assert '"status": "duplicate"' in capsys.readouterr().out


def test_caig_client_reports_a_4xx_as_one_line(sqlite_server, capsys):
    import pytest

    with pytest.raises(SystemExit) as done:
        main(["client", "select", "--url", sqlite_server.url, "--product", "NOPE", "--segment", SEGMENT])
    err = capsys.readouterr().err
    assert done.value.code == 2 and "400" in err and "product_id" in err
