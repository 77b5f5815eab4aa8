"""The selector: RM priors steer the choice, bad requests name the field, feedback is idempotent."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pandas as pd
import pytest
from tests.bandit.conftest import REDIS_URL

from caig.bandit.config import BanditConfig
from caig.bandit.providers import TableProvider, parquet_provider
from caig.bandit.selector import (
    POLICY_RM_PRIOR,
    POLICY_UNIFORM_PRIOR,
    CreativeSelector,
    build_selector,
    open_store,
)
from caig.bandit.state import SQLiteStore
from caig.bandit.types import InvalidRequest

CREATIVES = pd.DataFrame({"creative_id": ["A", "B", "C", "D"], "product_id": ["P1", "P1", "P1", "P2"]})
PRIORS = pd.DataFrame(
    {"creative_id": ["A", "B", "C"], "prior_alpha": [40.0, 2.0, 2.0], "prior_beta": [60.0, 98.0, 98.0]}
)


@pytest.fixture
def selector(tmp_path: Path) -> CreativeSelector:
    sel = CreativeSelector(
        TableProvider(CREATIVES, PRIORS, ["P1", "P2", "P3"]),
        SQLiteStore(tmp_path / "s.db"),
        BanditConfig(seed=0),
    )
    yield sel
    sel.close()


def _feedback(event_id="e1", **kw):
    event = {
        "event_id": event_id,
        "product_id": "P1",
        "segment": "young",
        "creative_id": "B",
        "clicked": True,
    }
    event.update(kw)
    return event


def test_a_strong_rm_prior_wins_most_selections_with_its_propensity(selector):
    picks = [selector.select("P1", "young") for _ in range(300)]
    share_a = sum(p.creative_id == "A" for p in picks) / len(picks)
    assert share_a > 0.95
    a = next(p for p in picks if p.creative_id == "A")
    assert a.policy == POLICY_RM_PRIOR and a.propensity > 0.95


def test_a_product_without_priors_starts_from_beta_one_one(selector):
    pick = selector.select("P2", "family")
    assert pick.creative_id == "D" and pick.propensity == 1.0 and pick.policy == POLICY_UNIFORM_PRIOR


def test_feedback_moves_the_posterior_of_its_segment_only(selector):
    events = [_feedback(f"e{i}", creative_id="B", clicked=True) for i in range(300)]
    assert set(selector.feedback(events)) == {"recorded"}
    assert sum(selector.select("P1", "young").creative_id == "B" for _ in range(100)) > 90
    assert sum(selector.select("P1", "senior").creative_id == "A" for _ in range(100)) > 90


def test_feedback_answers_recorded_then_duplicate(selector):
    assert selector.feedback([_feedback("x"), _feedback("x")]) == ["recorded", "duplicate"]
    assert selector.feedback([_feedback("x")]) == ["duplicate"]
    assert selector.store.counts("P1", "young") == {"B": (1, 1)}


@pytest.mark.parametrize(
    ("product", "segment", "field", "words"),
    [
        ("P9", "young", "product_id", "unknown product"),
        ("P3", "young", "product_id", "no creatives"),
        (7, "young", "product_id", "must be a string"),
        (None, "young", "product_id", "missing"),
        ("P1", "martian", "segment", "unknown segment"),
        ("P1", "", "segment", "must not be blank"),
        ("P1", "  ", "segment", "must not be blank"),
    ],
)
def test_bad_selection_requests_name_the_field(selector, product, segment, field, words):
    with pytest.raises(InvalidRequest, match=words) as err:
        selector.select(product, segment)
    assert err.value.field == field


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"clicked": "yes"}, "instances[0].clicked"),
        ({"creative_id": "D"}, "instances[0].creative_id"),
        ({"event_id": 12}, "instances[0].event_id"),
        ({"propensity": 1.5}, "instances[0].propensity"),
        ({"product_id": "P9"}, "instances[0].product_id"),
    ],
)
def test_bad_feedback_names_the_field_and_records_nothing(selector, change, field):
    with pytest.raises(InvalidRequest) as err:
        selector.feedback([_feedback("ok"), {**_feedback("bad"), **change}])
    assert err.value.field == field.replace("[0]", "[1]")
    assert selector.store.counts("P1", "young") == {}


def test_a_missing_clicked_field_is_named(selector):
    event = _feedback()
    del event["clicked"]
    with pytest.raises(InvalidRequest, match="clicked: missing"):
        selector.feedback([event])


def test_parquet_provider_reads_the_latest_valid_prior_and_counts_rejects(tmp_path: Path, caplog):
    CREATIVES.to_parquet(tmp_path / "creatives.parquet")
    pd.DataFrame({"product_id": ["P1", "P2"]}).to_parquet(tmp_path / "catalog.parquet")
    stamp = pd.Timestamp("2026-10-01", tz="UTC")
    pd.DataFrame(
        {
            "creative_id": ["A", "A", "B"],
            "product_id": ["P1"] * 3,
            "rm_score": [0.1, 0.4, 0.2],
            "prior_alpha": [1.0, 4.0, -1.0],
            "prior_beta": [9.0, 6.0, 9.0],
            "event_timestamp": [stamp, stamp + pd.Timedelta(days=1), stamp],
        }
    ).to_parquet(tmp_path / "rm_priors.parquet")
    provider = parquet_provider(
        tmp_path / "catalog.parquet", tmp_path / "creatives.parquet", tmp_path / "rm_priors.parquet"
    )
    arms = {a.creative_id: (a.prior_alpha, a.prior_beta) for a in provider.candidates("P1")}
    assert arms == {"A": (4.0, 6.0), "B": (1.0, 1.0), "C": (1.0, 1.0)}
    assert provider.rejected_priors == 1
    assert "1 priors rejected" in caplog.text


def test_build_selector_from_a_run_directory_without_priors(tmp_path: Path, small_world_dir: Path):
    (tmp_path / "world").symlink_to(small_world_dir)
    sel = build_selector(BanditConfig(seed=0), tmp_path)
    try:
        pick = sel.select("P00000", "young")
        assert pick.policy == POLICY_UNIFORM_PRIOR and pick.creative_id.startswith("C")
        assert (tmp_path / "bandit" / "state.sqlite").is_file()
    finally:
        sel.close()


def test_reported_propensities_are_the_policys_choice_probabilities(tmp_path: Path):
    """Off-policy evaluation reweights by the logged propensity: it must be P(TS picks that arm), not 1.

    Four arms with identical priors: each picked about 1/4 of the time, each reported near 1/4. An arm far
    behind (prior mean 0.02 against 0.4): picked almost never, and reported below 0.05 when it is."""
    creatives = pd.DataFrame({"creative_id": list("WXYZ") + ["S", "L"], "product_id": ["Q"] * 4 + ["R"] * 2})
    priors = pd.DataFrame({"creative_id": list("WXYZ") + ["S", "L"],
                           "prior_alpha": [5.0] * 4 + [40.0, 1.0], "prior_beta": [95.0] * 4 + [60.0, 49.0]})  # fmt: skip
    sel = CreativeSelector(TableProvider(creatives, priors, ["Q", "R"]), SQLiteStore(tmp_path / "s.db"),
                           BanditConfig(seed=1, propensity_samples=4000))  # fmt: skip
    try:
        picks = [sel.select("Q", "young") for _ in range(2000)]
        shares = pd.Series([p.creative_id for p in picks]).value_counts(normalize=True)
        assert set(shares.index) == set("WXYZ") and shares.between(0.2, 0.3).all()
        reported = pd.Series([p.propensity for p in picks])
        assert reported.between(0.25 - 0.04, 0.25 + 0.04).all()  # Monte Carlo error of 4000 draws
        far = [sel.select("R", "young") for _ in range(400)]
        assert all(p.propensity > 0.9 for p in far if p.creative_id == "S")
        assert all(p.propensity < 0.05 for p in far if p.creative_id == "L")
        assert sum(p.creative_id == "L" for p in far) < 20
    finally:
        sel.close()


@pytest.fixture
def redis_selector(redis_prefix: str) -> CreativeSelector:
    config = BanditConfig(seed=0, store="redis", redis_url=REDIS_URL, redis_prefix=redis_prefix)
    sel = CreativeSelector(
        TableProvider(CREATIVES, PRIORS, ["P1", "P2", "P3"]), open_store(config, Path()), config
    )
    yield sel
    sel.close()


def test_feedback_on_the_event_loop_counts_as_the_threaded_path_does(redis_selector):
    """Redis feedback awaited on a loop (what the server does) and the blocking call share one exactly-once
    state; each new loop gets its own async client."""
    first = asyncio.run(redis_selector.feedback_async([_feedback("e1"), _feedback("e2", clicked=False)]))
    assert first == ["recorded", "recorded"]
    assert redis_selector.feedback([_feedback("e1"), _feedback("e3")]) == ["duplicate", "recorded"]
    again = asyncio.run(redis_selector.feedback_async([_feedback("e3"), _feedback("e4")]))
    assert again == ["duplicate", "recorded"]
    assert redis_selector.store.store.counts("P1", "young") == {"B": (4, 3)}


def test_bad_feedback_on_the_event_loop_names_the_field_and_records_nothing(redis_selector):
    with pytest.raises(InvalidRequest) as err:
        asyncio.run(redis_selector.feedback_async([_feedback("ok"), _feedback("bad", creative_id="D")]))
    assert err.value.field == "instances[1].creative_id"
    assert redis_selector.store.store.counts("P1", "young") == {}


def test_feedback_that_needs_a_blocking_call_is_left_to_a_thread(selector, redis_selector):
    """None (the server then calls ``feedback`` in a worker thread) for a SQLite store, and for a provider that
    does not hold the product's candidates in memory."""
    assert asyncio.run(selector.feedback_async([_feedback()])) is None
    redis_selector.provider.cached = lambda product_id: None  # as a Feast provider whose cache expired
    assert asyncio.run(redis_selector.feedback_async([_feedback()])) is None
    assert redis_selector.store.store.counts("P1", "young") == {}
