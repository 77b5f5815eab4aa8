"""Generated creatives reach a running selector (Feast provider) without a restart, as caig-generate does it:
register into the data, re-apply and materialize the run's Feast store, and the next request sees them."""

from __future__ import annotations

import shutil
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
import redis
from tests.conftest import GENERATE, SMALL_WORLD
from tests.serving.conftest import Server

from caig.bandit.arena import read_logged_events
from caig.bandit.config import SimulateConfig
from caig.bandit.simulate import empirical_priors
from caig.features.config import FeaturesConfig
from caig.features.online import materialize
from caig.features.store import apply, open_store, store_dir
from caig.generate.register import GENERATED
from caig.generate.run import generate_creatives
from caig.profile import load_profile

NEW_PRODUCT = "P00005"  # stripped of its logged creatives: a product new to the catalog
SELECT = "/v1/models/creative-selector:predict"
FEEDBACK = "/v1/models/creative-feedback:predict"


REDIS_DB = 12  # this test's Redis database; keys are further namespaced by a per-test project name


def refresh_features(run: Path, config: FeaturesConfig) -> None:
    """What the features step does after generation: restate the sources, apply, materialize, into the same
    store (production: one store on a shared volume, one Redis); "now" is the run's as_of, before the
    creatives were registered, as in a run on logs that end in the past."""
    apply(config, run)
    materialize(open_store(config, store_dir(config, run)), datetime(2026, 11, 1, tzinfo=UTC))


@pytest.fixture(params=["sqlite", "redis"])
def features(request) -> FeaturesConfig:
    """The local profile's SQLite online store, and production's Redis (own database and project)."""
    if request.param == "sqlite":
        yield FeaturesConfig()
        return
    project = f"caig_test_{uuid.uuid4().hex[:10]}"
    yield FeaturesConfig(
        project=project, online_store="redis", redis_connection_string=f"127.0.0.1:6379,db={REDIS_DB}"
    )
    client = redis.Redis(host="127.0.0.1", port=6379, db=REDIS_DB)
    leftover = list(client.scan_iter(match=f"*{project}", count=1000))
    if leftover:
        client.delete(*leftover)


def settings(config: FeaturesConfig) -> list[str]:
    """The server's --set overrides for ``config``'s store."""
    keys = ("project", "online_store", "redis_connection_string")
    return [f"features.{k}={getattr(config, k)}" for k in keys]


@pytest.fixture
def feast_run(tmp_path: Path, small_world_dir: Path, features: FeaturesConfig) -> Path:
    """A run whose selector reads Feast: the world (without the new product's creatives), daily stats from
    its logs, RM-like priors, and the store applied and materialized."""
    run = tmp_path / "run"
    world = Path(shutil.copytree(small_world_dir, run / "world"))
    creatives = pd.read_parquet(world / "creatives.parquet")
    creatives[creatives["product_id"] != NEW_PRODUCT].to_parquet(world / "creatives.parquet", index=False)
    events = read_logged_events(world, ("product_id", "creative_id", "segment", "clicked", "ts"))
    events = events[events["product_id"] != NEW_PRODUCT]
    stats = (
        events.assign(date=events["ts"].dt.date)
        .groupby(["creative_id", "product_id", "date", "segment"])["clicked"]
        .agg(impressions="size", clicks="sum")
        .reset_index()
    )
    (run / "data").mkdir()
    stats.to_parquet(run / "data" / "creative_stats.parquet", index=False)
    (run / "features").mkdir()
    priors = empirical_priors(events, SimulateConfig(), np.random.default_rng(0))
    priors.to_parquet(run / "features" / "rm_priors.parquet")
    refresh_features(run, features)
    return run


def test_a_running_selector_serves_creatives_generated_after_it_started(
    feast_run, features, models, tmp_path
):
    pm, rm = models
    selector = [
        "bandit.provider=feast",
        "bandit.feast_cache_seconds=0",
        f"bandit.sqlite_path={tmp_path / 's.db'}",
    ]
    server = Server(feast_run, [*selector, *settings(features)], tmp_path / "selector.log")
    try:
        ask = {"instances": [{"product_id": NEW_PRODUCT, "segment": "young"}]}
        before = httpx.post(server.url + SELECT, json=ask, timeout=30)
        assert before.status_code == 400 and "no creatives" in before.text

        profile = load_profile("local", [*SMALL_WORLD, *GENERATE, "generate.products=listed",
                                         f"generate.product_ids=[{NEW_PRODUCT}]"])  # fmt: skip
        report = generate_creatives(profile, feast_run / "world", pm, rm)
        assert report["registered"] == 2
        refresh_features(feast_run, features)

        after = httpx.post(server.url + SELECT, json=ask, timeout=30)
        assert after.status_code == 200, after.text
        pick = after.json()["predictions"][0]
        generated = pd.read_parquet(feast_run / "world" / GENERATED).set_index("creative_id")
        assert pick["creative_id"] in generated.index  # the same process, no restart
        event = {"event_id": "gen-1", "product_id": NEW_PRODUCT, "segment": "young",
                 "creative_id": pick["creative_id"], "clicked": True}  # fmt: skip
        logged = httpx.post(server.url + FEEDBACK, json={"instances": [event]}, timeout=30)
        assert logged.status_code == 200, logged.text  # feedback on a generated creative, by its id

        logged_product = {"instances": [{"product_id": "P00003", "segment": "young"}]}
        assert httpx.post(server.url + SELECT, json=logged_product, timeout=30).status_code == 200
    finally:
        server.stop()
