"""The online creative selector: Thompson sampling per (product, segment) over the product's creatives.

Priors come from the RM (through the candidate provider); counts from the shared state store. Serving never
calls the world oracle: it only sees candidates, priors and the feedback the ad server reports.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from caig.bandit.config import BanditConfig
from caig.bandit.policy import BetaSampler, PropensityCache
from caig.bandit.providers import CandidateProvider, parquet_provider
from caig.bandit.snapshot import CountsSnapshot
from caig.bandit.state import RedisStore, SQLiteStore, StateStore
from caig.bandit.types import Arm, Feedback, InvalidRequest, Selection
from caig.data.values import check_id, check_probability, parse_clicked
from caig.errors import UserError

POLICY_RM_PRIOR = "thompson-rm-prior"
POLICY_UNIFORM_PRIOR = "thompson-beta11"


class CreativeSelector:
    """Select a creative for (product, segment) and count feedback, idempotently by event id."""

    def __init__(self, provider: CandidateProvider, store: StateStore, config: BanditConfig):
        self.provider = provider
        self.store = store
        self.config = config
        self.segments = frozenset(config.segments)
        self.rng = np.random.default_rng(config.seed)
        self.sampler = BetaSampler(self.rng)
        self.propensities = PropensityCache(config.propensity_samples, config.propensity_cache, self.rng)
        self._arms: dict[str, CandidateArms] = {}

    def select(self, product_id: Any, segment: Any) -> Selection:
        """Thompson-sample one creative; its propensity is P(TS picks it) under the current posterior."""
        _check_text("product_id", product_id)
        self._check_segment(segment)
        arms = self._candidates(self.provider.candidates(product_id), product_id)
        return self._draw(arms, self.store.counts(product_id, segment))

    def select_cached(self, product_id: Any, segment: Any) -> Selection | None:
        """``select`` without any I/O, or None where it would need some: the candidates from the provider's
        memory and the counts from the store's snapshot (``bandit.refresh_ms``). What the server answers on
        its event loop, skipping the worker-thread hop; on None it calls ``select`` in a worker thread. The
        work left is CPU only: a Thompson draw, and on a new posterior state a propensity estimate."""
        store_cached = getattr(self.store, "cached", None)
        provider_cached = getattr(self.provider, "cached", None)
        if store_cached is None or provider_cached is None:
            return None
        _check_text("product_id", product_id)
        self._check_segment(segment)
        candidates = provider_cached(product_id)
        counts = store_cached(product_id, segment)
        if candidates is None or counts is None:
            return None
        return self._draw(self._candidates(candidates, product_id), counts)

    def _draw(self, arms: CandidateArms, counts: dict[str, tuple[int, int]]) -> Selection:
        alpha, beta = arms.posterior(counts) if counts else (arms.prior_alpha, arms.prior_beta)
        index = self.sampler.choice(alpha, beta)
        propensity = self.propensities.probabilities(alpha, beta)[index]
        return Selection(arms.creative_ids[index], propensity, arms.policy)

    def _candidates(self, arms: list[Arm], product_id: str) -> CandidateArms:
        """The provider's candidates as columns, rebuilt only when the provider answers a new list."""
        known = self._arms.get(product_id)
        if known is None or known.arms is not arms:
            known = self._arms[product_id] = CandidateArms(arms)
        return known

    def feedback(self, events: Sequence[dict[str, Any]]) -> list[str]:
        """Validate every event first (a bad one rejects the batch), then record: ``recorded`` or ``duplicate``."""
        return _statuses(self.store.record(self._parse_all(events, self.provider.candidates)))

    async def feedback_async(self, events: Sequence[dict[str, Any]]) -> list[str] | None:
        """``feedback`` awaited on the event loop, or None where it cannot be: a store without an async
        writer (SQLite), or a product whose candidates the provider does not hold in memory (Feast, cache
        expired). What the server awaits first; on None it calls ``feedback`` in a worker thread."""
        record_async = getattr(self.store, "record_async", None)
        cached = getattr(self.provider, "cached", None)
        if record_async is None or cached is None:
            return None

        def candidates(product_id: str) -> list[Arm]:
            arms = cached(product_id)
            if arms is None:
                raise _NotCached()
            return arms

        try:
            parsed = self._parse_all(events, candidates)
        except _NotCached:
            return None
        return _statuses(await record_async(parsed))

    def _parse_all(self, events: Sequence[dict[str, Any]], candidates: Any) -> list[Feedback]:
        """Every event parsed, or ``InvalidRequest`` naming the first bad one as ``instances[i].field``."""
        parsed = []
        for i, event in enumerate(events):
            try:
                parsed.append(self.parse_feedback(event, candidates=candidates))
            except InvalidRequest as err:
                field = f"instances[{i}]" if err.field == "instance" else f"instances[{i}].{err.field}"
                raise InvalidRequest(field, err.message) from None
        return parsed

    def parse_feedback(self, event: Any, where: str = "instance", candidates: Any = None) -> Feedback:
        """A feedback event from a request mapping; ``InvalidRequest`` names the bad field. ``candidates``
        looks up a product's arms (the provider's ``candidates`` by default)."""
        if not isinstance(event, dict):
            raise InvalidRequest(
                where,
                f"must be an object with event_id, product_id, segment, creative_id, "
                f"clicked; got {type(event).__name__}",
            )
        for name in ("event_id", "product_id", "segment", "creative_id"):
            _check_text(name, event.get(name, _MISSING))
        self._check_segment(event["segment"])
        clicked = event.get("clicked", _MISSING)
        if clicked is _MISSING:
            raise InvalidRequest("clicked", "missing; send true or false")
        try:
            clicked = parse_clicked(clicked)
        except ValueError as err:
            raise InvalidRequest("clicked", str(err)) from None
        arms = (candidates or self.provider.candidates)(event["product_id"])
        if event["creative_id"] not in {a.creative_id for a in arms}:
            raise InvalidRequest(
                "creative_id",
                f"'{event['creative_id']}' is not a creative of product '{event['product_id']}'",
            )
        propensity = event.get("propensity")
        if propensity is not None:
            try:
                propensity = check_probability(propensity)
            except ValueError as err:
                raise InvalidRequest("propensity", str(err)) from None
        return Feedback(
            event["event_id"],
            event["product_id"],
            event["segment"],
            event["creative_id"],
            clicked,
            propensity,
        )

    def _check_segment(self, segment: Any) -> None:
        if type(segment) is str and segment in self.segments:
            return
        _check_text("segment", segment)
        if self.segments and segment not in self.segments:
            raise InvalidRequest(
                "segment", f"unknown segment '{segment}'; known: {', '.join(sorted(self.segments))}"
            )

    def close(self) -> None:
        self.store.close()


_MISSING = object()
_NO_COUNTS = (0, 0)


class _NotCached(Exception):
    """A product's candidates are not in the provider's memory: the feedback goes to a worker thread."""


def _statuses(counted: list[bool]) -> list[str]:
    return ["recorded" if new else "duplicate" for new in counted]


class CandidateArms:
    """A product's candidates as the per-request work reads them: ids, prior columns, and the policy name."""

    __slots__ = ("arms", "creative_ids", "policy", "prior_alpha", "prior_beta")

    def __init__(self, arms: list[Arm]):
        self.arms = arms
        self.creative_ids = tuple(a.creative_id for a in arms)
        self.prior_alpha = tuple(a.prior_alpha for a in arms)
        self.prior_beta = tuple(a.prior_beta for a in arms)
        uniform = all(a.prior_alpha == 1.0 and a.prior_beta == 1.0 for a in arms)
        self.policy = POLICY_UNIFORM_PRIOR if uniform else POLICY_RM_PRIOR

    def posterior(self, counts: dict[str, tuple[int, int]]) -> tuple[list[float], list[float]]:
        """Beta posterior parameters per arm from its prior and ``{creative_id: (impressions, clicks)}``."""
        alpha, beta = [], []
        for creative_id, a, b in zip(self.creative_ids, self.prior_alpha, self.prior_beta, strict=True):
            n, k = counts.get(creative_id, _NO_COUNTS)
            alpha.append(a + k)
            beta.append(b + (n - k))
        return alpha, beta


def _check_text(name: str, value: Any) -> None:
    if value is _MISSING or value is None:
        raise InvalidRequest(name, "missing; it is a required string field")
    try:
        check_id(value)
    except ValueError as err:
        raise InvalidRequest(name, str(err)) from None


def resolve(run_dir: Path, path: str) -> Path:
    """A config path, relative to the run directory unless absolute."""
    p = Path(path)
    return p if p.is_absolute() else run_dir / p


def open_store(config: BanditConfig, run_dir: Path) -> StateStore:
    """The configured state store: a SQLite file under the run directory, or Redis, read through a counts
    snapshot refreshed every ``bandit.refresh_ms`` (``caig.bandit.snapshot``) unless that is 0."""
    if config.store == "redis":
        import redis

        try:
            store = RedisStore.from_config(config)
        except redis.RedisError as err:
            raise UserError(
                f"bandit.redis_url {config.redis_url}: cannot reach Redis ({err}); start it or "
                "set bandit.store=sqlite"
            ) from None
        return CountsSnapshot(store, config.refresh_ms / 1000) if config.refresh_ms else store
    return SQLiteStore(resolve(run_dir, config.sqlite_path))


def open_provider(config: BanditConfig, run_dir: Path, features_config: Any = None) -> CandidateProvider:
    """The configured candidate provider (parquet files under the run directory, or Feast online)."""
    if config.provider == "feast":
        from caig.bandit.feast_provider import FeastProvider

        if features_config is None:
            raise UserError("bandit.provider is 'feast' but no features config was given")
        return FeastProvider(features_config, run_dir, config.feast_cache_seconds)
    return parquet_provider(
        resolve(run_dir, config.catalog_path),
        resolve(run_dir, config.creatives_path),
        resolve(run_dir, config.priors_path),
    )


def build_selector(config: BanditConfig, run_dir: Path, features_config: Any = None) -> CreativeSelector:
    """The selector of a run directory, as configured: what ``caig serve selector`` serves.

    ``features_config`` (the profile's ``features`` section) locates the Feast store for provider ``feast``.
    """
    return CreativeSelector(
        open_provider(config, run_dir, features_config), open_store(config, run_dir), config
    )
